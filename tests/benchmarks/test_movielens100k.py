"""The movielens100k benchmark: peer score re-indexing, the summary, a quick run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paretorec.benchmarks import _movielens100k as bench
from paretorec.benchmarks._peers import msr_python
from paretorec.data import Dataset, stratified_split
from paretorec.evaluation import evaluate_ranking


def small_dataset() -> Dataset:
    frame = pd.DataFrame({"user_id": [30, 10, 20, 10, 30, 20], "item_id": [7, 5, 9, 9, 5, 7]})
    return Dataset.from_frames("small", frame)


def test_peer_scores_are_reindexed_to_our_codes(tmp_path: Path) -> None:
    ds = small_dataset()
    # the peer writes rows and columns in ascending raw id order: users 10,20,30; items 5,7,9
    raw = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=np.float32)
    np.save(tmp_path / "s.npy", raw)
    ours = bench._peer_scores(tmp_path / "s.npy", ds)
    for u, raw_user in enumerate(ds.user_ids):
        for i, raw_item in enumerate(ds.item_ids):
            expected = raw[[10, 20, 30].index(raw_user), [5, 7, 9].index(raw_item)]
            assert ours[u, i] == expected


def test_precomputed_scores_rank_like_the_matrix() -> None:
    ds = small_dataset()
    rng = np.random.default_rng(0)
    scores = rng.random((ds.n_users, ds.n_items)).astype(np.float32)
    model = bench.PrecomputedScores(scores).fit(ds)
    result = evaluate_ranking(model, ds, k=1, beyond_accuracy=False, users=np.arange(ds.n_users))
    masked = np.where(model.seen.toarray() > 0, -np.inf, scores)
    assert np.array_equal(result.ranked[:, 0], masked.argmax(axis=1))


def _row(name: str, kind: str, ndcgs: list[float], valid: list[float]) -> dict:
    per_seed = [
        {"split_seed": s, "valid_ndcg@10": v, "metrics": {"ndcg@10": n},
         "split_matches_released": True}
        for s, n, v in zip((42, 1, 2), ndcgs, valid, strict=True)
    ]  # fmt: skip
    return {"name": name, "kind": kind, "per_seed": per_seed, "metrics": bench._aggregate(per_seed)}


def test_summary_chooses_on_validation_and_reports_spread() -> None:
    rows = [
        # ease is best on test but itemknn on validation: validation decides
        _row("ease", "ours", [0.48, 0.47, 0.49], [0.30, 0.30, 0.30]),
        _row("itemknn", "ours", [0.44, 0.43, 0.45], [0.31, 0.31, 0.31]),
        _row("bpr", "ours", [0.43, 0.42, 0.44], [0.29, 0.29, 0.29]),
        _row("cornac_bpr", "peer", [0.44, 0.44, 0.44], [0, 0, 0]),
        _row("cornac_bivae", "peer", [0.47, 0.46, 0.48], [0, 0, 0]),
    ]
    summary = bench.summarize(rows, (42, 1, 2))
    assert summary["best_model"] == "itemknn" and summary["best_ndcg@10"] == pytest.approx(0.44)
    assert summary["ease_ndcg@10_mean"] == pytest.approx(0.48)
    assert summary["ease_ndcg@10_sd"] == pytest.approx(0.01)
    assert summary["bpr_ndcg@10"] == pytest.approx(0.43)
    assert summary["cornac_bpr_ndcg@10"] == pytest.approx(0.44)
    assert summary["cornac_bivae_ndcg@10"] == pytest.approx(0.47)
    assert summary["cornac_bivae_ndcg@10_seed42"] == pytest.approx(0.47)
    assert summary["ease_minus_bivae_ndcg@10_mean"] == pytest.approx(0.01)
    assert summary["ease_minus_bivae_ndcg@10_sd"] == pytest.approx(0.0, abs=1e-9)
    assert summary["split_matches_released_splitter"] is True


def test_train_rows_are_the_split_rows(ml100k: Dataset) -> None:
    rows = bench._train_rows(ml100k, 42)
    split = stratified_split(ml100k, ratio=0.75, seed=42, filter_by="item")
    assert len(rows) == split.train.n_interactions
    picked = ml100k.interactions.iloc[rows]
    assert set(zip(picked["user"], picked["item"], strict=True)) == set(
        zip(split.train.interactions["user"], split.train.interactions["item"], strict=True)
    )


def test_quick_run_without_peers(ml100k_dir: Path, tmp_path: Path) -> None:
    result = bench.run(
        tmp_path, data_dir=ml100k_dir.parent, quick=True, models=("popularity", "ease"),
        peers=False,
    )  # fmt: skip
    summary = result["summary"]
    assert summary["cornac_peers"].startswith("skipped")
    assert summary["best_model"] == "ease"
    # a floor, and agreement with a direct computation of the same protocol
    assert summary["ease_ndcg@10_mean"] > 0.45
    split = stratified_split(
        bench.load_dataset("movielens-100k", ml100k_dir.parent), 0.75, 42, filter_by="item"
    )
    ease = result["rows"][1]["per_seed"][0]
    model = bench.create_model("ease", **ease["params"]).fit(split.train)
    direct = evaluate_ranking(model, split.test, k=10, beyond_accuracy=False)["ndcg@10"]
    assert summary["ease_ndcg@10_mean"] == pytest.approx(direct, abs=1e-6)
    assert result["protocol"]["n_train_test"]["42"] == [
        split.train.n_interactions,
        split.test.n_interactions,
    ]


@pytest.mark.slow
@pytest.mark.skipif(
    msr_python(required=False) is None,
    reason="no Microsoft Recommenders environment (.venv-msr or $PARETOREC_MSR_PYTHON)",
)
def test_quick_run_with_cornac_peers(ml100k_dir: Path, tmp_path: Path) -> None:
    result = bench.run(tmp_path, data_dir=ml100k_dir.parent, quick=True, models=("popularity",))
    summary = result["summary"]
    assert summary["split_matches_released_splitter"] is True
    peers = {r["name"]: r for r in result["rows"] if r["kind"] == "peer"}
    assert set(peers) == {"cornac_bpr", "cornac_bivae"}
    for row in peers.values():
        seed = row["per_seed"][0]
        # our metric code and recommenders' python_evaluation agree on the peer's lists
        assert seed["metrics"]["ndcg@10"] == pytest.approx(
            seed["referee_metrics"]["ndcg@10"], abs=2e-3
        )
        assert seed["metrics"]["ndcg@10"] > 0.1
