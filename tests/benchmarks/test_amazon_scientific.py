"""The amazon_scientific benchmark end to end, quick (few epochs, one seed, no peer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paretorec._validation import ParetorecError
from paretorec.benchmarks import BENCHMARKS
from paretorec.benchmarks import _amazon_scientific as amazon


def test_mean_metrics_average_each_figure_and_report_the_spread() -> None:
    runs = [
        {"ndcg@10": 0.06, "recall@10": 0.1, "epochs": 10, "test_users": 5, "cold_test_users": 1},
        {"ndcg@10": 0.07, "recall@10": 0.2, "epochs": 20, "test_users": 5, "cold_test_users": 1},
    ]
    mean = amazon._mean_metrics(runs)
    assert mean["ndcg@10"] == pytest.approx(0.065)
    assert mean["recall@10"] == pytest.approx(0.15)
    assert mean["epochs"] == pytest.approx(15)
    assert mean["ndcg@10_sd"] == pytest.approx(0.00707107, rel=1e-5)
    assert mean["test_users"] == 5 and mean["cold_test_users"] == 1
    assert amazon._mean_metrics(runs[:1])["ndcg@10_sd"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seeds": 0}, "seeds must be a positive int, got 0"),
        ({"recbole_seeds": 0}, "recbole_seeds must be a positive int, got 0"),
        ({"recbole_seeds": 4}, "recbole_seeds must be at most 3, got 4"),
    ],
)
def test_seed_counts_are_checked(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        BENCHMARKS["amazon_scientific"](tmp_path, peers=False, **kwargs)


def test_seed_ratios_pair_seeds_and_reuse_the_peers_in_turn() -> None:
    assert amazon.seed_ratios([0.06, 0.08], [0.05, 0.04]) == pytest.approx([1.2, 2.0])
    assert amazon.seed_ratios([0.06, 0.08, 0.05], [0.05, 0.04]) == pytest.approx([1.2, 2.0, 1.0])
    assert amazon.seed_ratios([0.06, 0.08], [0.04]) == pytest.approx([1.5, 2.0])


def test_both_sides_tune_on_the_same_grid() -> None:
    keys = {frozenset(point) for point in amazon.TUNING_GRID}
    assert keys == {frozenset({"dropout", "batch_size"})}
    points = {(p["dropout"], p["batch_size"]) for p in amazon.TUNING_GRID}
    # each side's former setting is in the grid
    assert (amazon.SEQUENTIAL["dropout"], amazon.SEQUENTIAL["batch_size"]) in points
    assert (0.5, 2048) in points  # RecBole's SASRec defaults


@pytest.mark.filterwarnings("ignore::paretorec.models.ConvergenceWarning")  # short on purpose
@pytest.mark.slow
def test_amazon_scientific_quick_reports_every_mode(amazon_dir: Path, tmp_path: Path) -> None:
    result = BENCHMARKS["amazon_scientific"](
        tmp_path / "results", data_dir=amazon_dir.parent, quick=True, peers=False, threads=1
    )
    summary = result["summary"]
    assert summary["seeds"] == 1 and len(summary["hybrid_ndcg@10_by_seed"]) == 1
    assert summary["cold_test_users"] > 0
    assert summary["hybrid_ndcg@10"] > summary["id_only_ndcg@10"] > 0
    kinds = [row["kind"] for row in result["rows"]]
    assert kinds.count("seed") == 4 and kinds.count("mean") == 4 and "peer" not in kinds
    texts = {row["mode"]: row.get("text") for row in result["rows"] if row["kind"] == "seed"}
    assert texts == {
        "id": None,
        "text": "fields",
        "hybrid": "fields",
        "hybrid_one_text": "one text",
    }
    assert summary["hybrid_one_text_ndcg@10"] > 0
    assert "recbole_sasrec_ndcg@10" not in summary and "id_vs_recbole_ratio" not in summary
    assert summary["id_only_chosen"] in [dict(p) for p in amazon.QUICK_TUNING_GRID]
    assert len(result["protocol"]["tuning"]["id_trials"]) == len(amazon.QUICK_TUNING_GRID)
    assert (tmp_path / "results" / "amazon_scientific.json").is_file()


#: Validation nDCG@10 the fake RecBole fits report per grid point (dropout, batch size).
FAKE_VALID = {(0.3, 128): 0.05, (0.3, 2048): 0.07, (0.5, 128): 0.04, (0.5, 2048): 0.06}


def fake_recbole(monkeypatch: pytest.MonkeyPatch, cache: Path, before=None):  # type: ignore[no-untyped-def]
    """Replace RecBole fits with instant fakes scoring :data:`FAKE_VALID` (``before(options)``
    runs first in each), keyed by settings alone, cached under ``cache``."""
    from paretorec.benchmarks import _peers

    def fake_run(folder, **options):  # type: ignore[no-untyped-def]
        if before is not None:
            before(options)
        score = FAKE_VALID[options["dropout"], options["batch_size"]]
        Path(options["save_topk"]).write_text(f"{score}\n")
        return _peers.PeerRun(
            result={"best_valid_metrics": {"ndcg@10": score}}, command=[], returncode=0, seconds=1
        )

    def fake_key(script, options, data_files, *, threads, python=None):  # type: ignore[no-untyped-def]
        return {"script": script, "options": dict(options), "threads": threads}

    monkeypatch.setattr(_peers, "run_recbole_sasrec", fake_run)
    monkeypatch.setattr(_peers, "peer_cache_key", fake_key)
    monkeypatch.setenv(_peers.PEER_CACHE_ENV, str(cache))


def test_recbole_tunes_on_the_grid_then_runs_the_other_seeds_at_the_chosen_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict] = []
    valid = FAKE_VALID
    fake_recbole(monkeypatch, tmp_path / "cache", calls.append)
    trials, further = amazon.recbole_tuned_runs(
        tmp_path, tmp_path, amazon.TUNING_GRID, [2020, 2021, 2022], {"epochs": 3}
    )
    assert [c["seed"] for c in calls] == [2020] * 4 + [2021, 2022]
    assert all(c["epochs"] == 3 and c["threads"] == 1 for c in calls)
    assert [(t["params"]["dropout"], t["params"]["batch_size"]) for t in trials] == list(valid)
    assert [(r["seed"], r["params"]["dropout"], r["params"]["batch_size"]) for r in further] == [
        (2021, 0.3, 2048),
        (2022, 0.3, 2048),
    ]
    assert len({str(c["save_topk"]) for c in calls}) == 6  # one top-k file per fit
    assert not any(r["cache"]["cached"] for r in [*trials, *further])
    # a second run (another session) reuses every fit, top-k files included
    for path in tmp_path.glob("topk_*.csv"):
        path.unlink()
    again, again_further = amazon.recbole_tuned_runs(
        tmp_path, tmp_path, amazon.TUNING_GRID, [2020, 2021, 2022], {"epochs": 3}
    )
    assert len(calls) == 6 and all(r["cache"]["cached"] for r in [*again, *again_further])
    assert (tmp_path / "topk_seed2022.csv").read_text() == "0.07\n"


def test_recbole_fits_run_side_by_side_with_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``jobs=2``: two fits at a time (they overlap), the grid before the seeds, and the same
    trials, choice and cache entries as one at a time."""
    import threading
    import time

    valid = FAKE_VALID
    lock = threading.Lock()
    running = [0]
    peak = [0]
    order: list[int] = []
    both = threading.Barrier(2)  # the first two fits must be running at once

    def overlap(options):  # type: ignore[no-untyped-def]
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            order.append(options["seed"])
            first_two = len(order) <= 2
        if first_two:
            both.wait(timeout=30)  # BrokenBarrierError if the fits ran one at a time
        time.sleep(0.01)
        with lock:
            running[0] -= 1

    fake_recbole(monkeypatch, tmp_path / "cache", overlap)
    trials, further = amazon.recbole_tuned_runs(
        tmp_path, tmp_path, amazon.TUNING_GRID, [2020, 2021, 2022], {"epochs": 3}, jobs=2
    )
    assert peak[0] == 2
    assert order[:4] == [2020] * 4 and sorted(order[4:]) == [2021, 2022]  # grid, then seeds
    assert [(t["params"]["dropout"], t["params"]["batch_size"]) for t in trials] == list(valid)
    assert [(r["seed"], r["params"]["dropout"]) for r in further] == [(2021, 0.3), (2022, 0.3)]
    assert len(list((tmp_path / "cache" / "recbole_sasrec").iterdir())) == 6
    with pytest.raises(ParetorecError, match="jobs"):
        amazon.recbole_tuned_runs(tmp_path, tmp_path, amazon.TUNING_GRID, [2020], {}, jobs=0)
