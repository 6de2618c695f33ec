"""Amazon-Scientific next-item benchmark: ID, text and hybrid item vectors vs RecBole SASRec.

The UniSRec release's own leave-one-out files (train / valid / test), full ranking over all
4,385 items, one target per test user. Our three sequential models and RecBole's SASRec
(run in the peers' environment on the very same files) are scored by the same code from
their top-50 lists, overall and separately for test targets never seen in training.

Item text is encoded field by field (title, category path, brand: :func:`paretorec.text.
item_fields`) and the three vectors concatenated; a hybrid model on one vector of the whole
text (``hybrid_one_text``) is trained beside it as the ablation.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._threads import thread_limit
from .._validation import ParetorecError, check_positive_int
from ..data import leave_one_out, load_dataset, locate_dataset
from ..evaluation import _metrics as M
from ..models import SequentialTransformer, top_k_indices
from ._harness import make_result, print_rows, write_result

KS = (10, 50)
#: (row label, item mode, text layout): "fields" = title, category, brand encoded apart.
VARIANTS: tuple[tuple[str, str, str], ...] = (
    ("id", "id", "fields"),
    ("text", "text", "fields"),
    ("hybrid", "hybrid", "fields"),
    ("hybrid_one_text", "hybrid", "one text"),
)
COLUMNS = (
    "ndcg@10",
    "recall@10",
    "ndcg@50",
    "recall@50",
    "cold_ndcg@10",
    "cold_recall@10",
    "warm_ndcg@10",
    "train_seconds",
    "epochs",
)
MEAN_COLUMNS = ("ndcg@10", "ndcg@10_sd", *COLUMNS[1:])
#: Same network size as the peer's SASRec (hidden 64, 2 layers, 2 heads, 50 items).
SEQUENTIAL = {
    "hidden": 64,
    "n_layers": 2,
    "n_heads": 2,
    "max_length": 50,
    "dropout": 0.3,
    "epochs": 40,
    "patience": 10,
    "batch_size": 128,
    "learning_rate": 1e-3,
}
RECBOLE = {
    "hidden_size": 64,
    "n_layers": 2,
    "n_heads": 2,
    "max_seq_len": 50,
    "epochs": 40,
    "stopping_step": 10,
}
#: The tuning budget, the same on both sides: our ID-only model and RecBole's SASRec each
#: train every point (first seed) and keep the one with the best validation nDCG@10. The
#: grid holds each side's former setting (ours: dropout 0.3, batch 128; RecBole's: 0.5, 2048).
TUNING_GRID: tuple[dict[str, Any], ...] = tuple(
    {"dropout": d, "batch_size": b} for d in (0.3, 0.5) for b in (128, 2048)
)
QUICK_TUNING_GRID: tuple[dict[str, Any], ...] = tuple(
    {"dropout": d, "batch_size": 2048} for d in (0.3, 0.5)
)
#: RecBole's seeds (its default first).
RECBOLE_SEEDS = (2020, 2021, 2022)


def ranking_metrics(top: np.ndarray, targets: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Recall and nDCG at 10 and 50 for one target per row (``top``: item codes, best first)."""
    hits_all = top == targets[:, None]
    n_relevant = np.ones(len(targets), dtype=np.int64)
    out: dict[str, float] = {}
    for k in KS:
        hits = hits_all[:, :k]
        out[f"{prefix}ndcg@{k}"] = float(np.mean(M.ndcg_from_hits(hits, n_relevant)))
        out[f"{prefix}recall@{k}"] = float(np.mean(M.recall_from_hits(hits, n_relevant)))
    return out


def split_metrics(top: np.ndarray, targets: np.ndarray, cold: np.ndarray) -> dict[str, Any]:
    metrics: dict[str, Any] = ranking_metrics(top, targets)
    metrics.update(ranking_metrics(top[cold], targets[cold], "cold_"))
    metrics.update(ranking_metrics(top[~cold], targets[~cold], "warm_"))
    metrics["test_users"] = len(targets)
    metrics["cold_test_users"] = int(cold.sum())
    return metrics


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    threads: int = 2,
    peers: bool = True,
    seeds: int = 3,
    recbole_seeds: int = 3,
) -> dict[str, Any]:
    """Run the benchmark with ``threads`` threads in torch and every BLAS / OpenMP pool
    (restored afterwards; one fewer while RecBole trains beside it)."""
    with thread_limit(threads), contextlib.ExitStack() as limits:
        return _run(
            output_dir,
            data_dir=data_dir,
            quick=quick,
            threads=threads,
            peers=peers,
            seeds=seeds,
            recbole_seeds=recbole_seeds,
            limits=limits,
        )


def _run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    threads: int = 2,
    peers: bool = True,
    seeds: int = 3,
    recbole_seeds: int = 3,
    limits: contextlib.ExitStack | None = None,
) -> dict[str, Any]:
    from ..text import TextEncoder, encode_items

    seeds = check_positive_int(seeds, "seeds")
    recbole_seeds = check_positive_int(recbole_seeds, "recbole_seeds")
    if recbole_seeds > len(RECBOLE_SEEDS):
        raise ParetorecError(
            f"recbole_seeds must be at most {len(RECBOLE_SEEDS)}, got {recbole_seeds}"
        )
    dataset = load_dataset("amazon-scientific", data_dir)
    folder = locate_dataset("amazon-scientific", data_dir)
    split = leave_one_out(dataset, by="timestamp")
    assert split.valid is not None
    history = split.train.with_interactions(
        pd.concat([split.train.interactions, split.valid.interactions], ignore_index=True)
    )
    test = split.test.interactions
    users = test["user"].to_numpy().astype(np.int64)
    targets = test["item"].to_numpy().astype(np.int64)
    in_train = np.zeros(dataset.n_items, dtype=bool)
    in_train[split.train.interactions["item"].to_numpy()] = True
    cold = ~in_train[targets]
    print(f"{dataset}; test users {len(users):,}, cold targets {int(cold.sum())}")

    encoder = TextEncoder(threads=threads)
    started = time.perf_counter()
    vectors = {
        "fields": encode_items(dataset, encoder, fields=True),
        "one text": encode_items(dataset, encoder),
    }
    encode_seconds = time.perf_counter() - started
    params = {**SEQUENTIAL, "epochs": 3 if quick else SEQUENTIAL["epochs"]}

    # RecBole trains in its own process on one thread while ours train on the other
    # (quality is compared here, not speed): the wall time is the longer of the two.
    grid = QUICK_TUNING_GRID if quick else TUNING_GRID
    peer_seeds = list(RECBOLE_SEEDS[: min(recbole_seeds, 2) if quick else recbole_seeds])
    peer_future = None
    scratch = tempfile.TemporaryDirectory(prefix="recbole_")
    pool = ThreadPoolExecutor(max_workers=1)
    if peers:
        options = {**RECBOLE, "epochs": 1 if quick else RECBOLE["epochs"]}
        peer_future = pool.submit(
            recbole_tuned_runs, folder, Path(scratch.name), grid, peer_seeds, options
        )
        if limits is not None:  # RecBole takes one core for the rest of the run
            limits.enter_context(thread_limit(max(1, threads - 1)))

    def fit_and_score(item_mode: str, layout: str, seed: int, **settings: Any) -> dict[str, Any]:
        model = SequentialTransformer(
            item_mode,
            seed=seed,
            show_progress=True,
            **{**params, **settings},
        )
        started = time.perf_counter()
        model.fit(split.train, valid=split.valid, item_vectors=vectors[layout])
        seconds = time.perf_counter() - started
        model.set_history(history)
        top = np.vstack(
            [
                top_k_indices(scores, max(KS))
                for _, scores in model.score_batches(users, exclude_seen=False)
            ]
        )
        metrics = split_metrics(top, targets, cold)
        metrics["train_seconds"] = round(seconds, 1)
        metrics["epochs"] = len(model.history_)
        metrics["best_valid_ndcg@10"] = max(h["valid_ndcg@10"] for h in model.history_)
        return metrics

    rows: list[dict[str, Any]] = []
    seed_list = list(range(1 if quick else seeds))
    # The ID-only model's tuning: every grid point at the first seed; the chosen point's
    # fit is that seed's run (RecBole's side does the same).
    id_trials: list[dict[str, Any]] = []
    for point in grid:
        metrics = fit_and_score("id", "fields", seed_list[0], **point)
        id_trials.append({"params": dict(point), "metrics": metrics})
        print(f"id tuning {point}: valid nDCG@10 {metrics['best_valid_ndcg@10']:.4f}")
    id_best = max(id_trials, key=lambda t: t["metrics"]["best_valid_ndcg@10"])
    per_mode: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in VARIANTS}
    for seed in seed_list:
        for mode, item_mode, layout in VARIANTS:
            settings = id_best["params"] if mode == "id" else {}
            if mode == "id" and seed == seed_list[0]:
                metrics = id_best["metrics"]
            else:
                metrics = fit_and_score(item_mode, layout, seed, **settings)
            per_mode[mode].append(metrics)
            rows.append(
                {
                    "name": f"paretorec sequential {mode} (seed {seed})",
                    "kind": "seed",
                    "table": "seeds",
                    "mode": mode,
                    "text": None if item_mode == "id" else layout,
                    "seed": seed,
                    "params": {**params, **settings},
                    "metrics": metrics,
                }
            )
            print(f"{mode} seed {seed}: nDCG@10 {metrics['ndcg@10']:.4f}")
    means = {mode: _mean_metrics(runs) for mode, runs in per_mode.items()}
    seed_word = "seed" if len(seed_list) == 1 else "seeds"
    for mode in means:
        rows.append(
            {
                "name": f"paretorec sequential {mode} (mean of {len(seed_list)} {seed_word})",
                "kind": "mean",
                "table": "main",
                "mode": mode,
                "metrics": means[mode],
            }
        )

    peer_runs: list[dict[str, Any]] = []
    peer_trials: list[dict[str, Any]] = []
    if peer_future is not None:
        print("waiting for RecBole SASRec ...")
        peer_trials, peer_seed_runs = peer_future.result()
        for run_info in [*peer_trials, *peer_seed_runs]:
            run_info["metrics"] = _peer_metrics(run_info, dataset, folder, users, targets, cold)
        best_peer = max(peer_trials, key=lambda t: t["metrics"]["best_valid_ndcg@10"] or 0.0)
        peer_runs = [best_peer, *peer_seed_runs]
        for run_info in peer_runs:
            rows.append(
                {
                    "name": f"RecBole SASRec (peer, seed {run_info['seed']})",
                    "kind": "peer_seed",
                    "table": "seeds",
                    "seed": run_info["seed"],
                    "params": run_info["params"],
                    "metrics": run_info["metrics"],
                }
            )
        peer_word = "seed" if len(peer_runs) == 1 else "seeds"
        rows.append(
            {
                "name": f"RecBole SASRec (peer, mean of {len(peer_runs)} {peer_word})",
                "kind": "peer",
                "table": "main",
                "params": best_peer["params"],
                "metrics": _mean_metrics([r["metrics"] for r in peer_runs]),
            }
        )
    pool.shutdown()
    scratch.cleanup()

    summary: dict[str, Any] = {
        "hybrid_ndcg@10": means["hybrid"]["ndcg@10"],
        "hybrid_one_text_ndcg@10": means["hybrid_one_text"]["ndcg@10"],
        "text_only_ndcg@10": means["text"]["ndcg@10"],
        "id_only_ndcg@10": means["id"]["ndcg@10"],
        "cold_hybrid_ndcg@10": means["hybrid"]["cold_ndcg@10"],
        "cold_id_only_ndcg@10": means["id"]["cold_ndcg@10"],
        "cold_test_users": int(cold.sum()),
        "seeds": len(seed_list),
        "hybrid_ndcg@10_by_seed": [m["ndcg@10"] for m in per_mode["hybrid"]],
        "hybrid_ndcg@10_sd": means["hybrid"]["ndcg@10_sd"],
    }
    summary["id_only_ndcg@10_sd"] = means["id"]["ndcg@10_sd"]
    summary["id_only_chosen"] = id_best["params"]
    summary["paretorec_seeds_run"] = len(seed_list)
    if peer_runs:
        peer_ndcgs = [r["metrics"]["ndcg@10"] for r in peer_runs]
        summary["recbole_sasrec_ndcg@10"] = float(np.mean(peer_ndcgs))
        summary["recbole_sasrec_ndcg@10_by_seed"] = peer_ndcgs
        summary["recbole_sasrec_ndcg@10_sd"] = _sd(peer_ndcgs)
        summary["recbole_chosen"] = peer_runs[0]["params"]
        summary["recbole_seeds_run"] = len(peer_runs)
        summary["recbole_fits_reused_from_cache"] = sum(
            bool(r["cache"]["cached"]) for r in [*peer_trials, *peer_runs[1:]]
        )
        for mode, key in (("hybrid", "hybrid_vs_recbole_ratio"), ("id", "id_vs_recbole_ratio")):
            ours = [m["ndcg@10"] for m in per_mode[mode]]
            by_seed = seed_ratios(ours, peer_ndcgs)
            summary[key] = float(np.mean(ours)) / float(np.mean(peer_ndcgs))
            summary[f"{key}_by_seed"] = by_seed
            summary[f"{key}_sd"] = _sd(by_seed)
    protocol = {
        "dataset": "amazon-scientific (UniSRec release: Industrial & Scientific 2018)",
        "split": "the release's own leave-one-out train / valid / test files; test histories "
        "= train + valid items",
        "ranking": "full ranking over all 4,385 items, history items not masked (RecBole's "
        "sequential protocol), one target per test user; metrics computed by paretorec from "
        "every model's top-50 list",
        "cold": "test targets that never occur in the training part",
        "text": f"{encoder.model_name} vectors of the release's item text: title, category "
        "path and brand encoded apart and concatenated (1,152-d; text and hybrid rows), or "
        f"the whole text as one vector (384-d; hybrid_one_text); encoding "
        f"{encode_seconds:.1f}s (cached after the first run)",
        "paretorec": {k: v for k, v in params.items()},
        "seeds": f"each paretorec model trained with seeds {seed_list}; RecBole with seeds "
        f"{peer_seeds if peers else []}; the summary holds means over seeds, and each ratio "
        "beside its per-seed values (ours seed i over RecBole seed i, RecBole's seeds reused "
        "in turn when it ran fewer) and their sd",
        "tuning": {
            "grid": list(grid),
            "rule": "the ID-only model and RecBole's SASRec each train every grid point at "
            "their first seed and keep the best validation nDCG@10 (early-stopping score); "
            "the other seeds run at the chosen point; text and hybrid models keep the "
            "paretorec settings above",
            "id_trials": [
                {"params": t["params"], "valid_ndcg@10": t["metrics"]["best_valid_ndcg@10"]}
                for t in id_trials
            ],
            "recbole_trials": [
                {"params": t["params"], "valid_ndcg@10": t["metrics"]["best_valid_ndcg@10"]}
                for t in peer_trials
            ],
            "recbole_runs_provenance": [
                {"seed": r["seed"], "params": r["params"], **r["cache"]}
                for r in [*peer_trials, *peer_runs[1:]]
            ],
        },
        "recbole": {**RECBOLE, "loss": "CE", "early stopping": "valid NDCG@10"},
        "peer_cache": "each RecBole fit is kept in the peer-run cache, keyed by the peer "
        "script's bytes, its options and seed, the release files' bytes and the peers' "
        "package versions; tuning.recbole_runs_provenance says for each fit whether this run "
        "computed it or reused it, and the commit and date of the run that computed it",
        "threads": f"{threads} in all: RecBole on 1 thread in its own process while "
        "paretorec's models train on the rest",
    }
    output = make_result("amazon_scientific", protocol=protocol, rows=rows, summary=summary)
    print_rows("Amazon-Scientific next-item ranking (test)", rows, COLUMNS)
    print("summary:", summary)
    path = write_result(output, output_dir)
    print(f"wrote {path}")
    return output


def seed_ratios(ours: list[float], peer: list[float]) -> list[float]:
    """Ours seed i over the peer's seed i (the peer's seeds reused in turn if it ran fewer)."""
    return [value / peer[i % len(peer)] for i, value in enumerate(ours)]


def _sd(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def recbole_tuned_runs(
    folder: Path,
    scratch: Path,
    grid: tuple[dict[str, Any], ...],
    seeds: list[int],
    options: dict[str, Any],
    *,
    use_cache: bool = True,
    jobs: int = 1,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """RecBole SASRec on every grid point at ``seeds[0]``, then the other seeds at the point
    with the best validation nDCG@10; each fit on one thread (peers' environment), ``jobs``
    fits at a time (each its own process: give it one core per job).

    Each fit (about 50 minutes here) is kept in the peer-run cache
    (:func:`paretorec.benchmarks._peers.cached_peer_run`, keyed by the script, its options,
    the release files and the peers' versions), so the fits can be spread over several runs
    or sessions; every run records where its fit came from (``cache``).

    Returns (the grid trials, the further seeds' runs), each run a dict with ``params``,
    ``seed``, ``result`` (the peer's JSON), ``topk`` (its saved top-50 file) and ``cache``.
    """
    from ._peers import cached_peer_run, peer_cache_key, run_recbole_sasrec

    data_files = sorted(Path(folder).glob("*.inter"))

    def fit(point: dict[str, Any], seed: int, tag: str) -> dict[str, Any]:
        topk = scratch / f"topk_{tag}.csv"
        settings = {**options, **point, "seed": seed}
        key = peer_cache_key("recbole_sasrec", settings, data_files, threads=1)
        run, cache = cached_peer_run(
            key,
            lambda _: run_recbole_sasrec(
                folder, save_topk=topk, threads=1, stream=False, **settings
            ),
            artifacts={"topk.csv": topk},
            use_cache=use_cache,
        )
        word = "reused from the cache" if cache["cached"] else "computed"
        print(f"RecBole SASRec {point} seed {seed}: {word} ({cache['seconds']} s)")
        return {
            "params": {**options, **point},
            "seed": seed,
            "result": run.result,
            "topk": topk,
            "cache": cache,
        }

    jobs = check_positive_int(jobs, "jobs")
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # the fits are subprocesses
        trials = list(pool.map(lambda i: fit(grid[i], seeds[0], f"grid{i}"), range(len(grid))))
        best = max(
            trials,
            key=lambda t: (t["result"].get("best_valid_metrics") or {}).get("ndcg@10", 0.0),
        )
        point = {k: best["params"][k] for k in grid[0]}
        further = list(pool.map(lambda seed: fit(point, seed, f"seed{seed}"), seeds[1:]))
    return trials, further


def fill_peer_cache(
    *,
    data_dir: str | Path | None = None,
    recbole_seeds: int = 3,
    quick: bool = False,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run (or find cached) every RecBole fit the full benchmark needs, without training
    ours: ``python benchmarks/amazon_scientific.py --peers-only [--jobs N]``. Lets the peer's
    hours of fitting run ahead (e.g. ``nice``-d in the background) of the benchmark itself;
    ``jobs`` fits run side by side (one thread each), the seeds after the grid."""
    recbole_seeds = check_positive_int(recbole_seeds, "recbole_seeds")
    jobs = check_positive_int(jobs, "jobs")
    folder = locate_dataset("amazon-scientific", data_dir)
    grid = QUICK_TUNING_GRID if quick else TUNING_GRID
    options = {**RECBOLE, "epochs": 1 if quick else RECBOLE["epochs"]}
    seeds = list(RECBOLE_SEEDS[: min(recbole_seeds, 2) if quick else recbole_seeds])
    with tempfile.TemporaryDirectory(prefix="recbole_") as scratch:
        trials, seed_runs = recbole_tuned_runs(
            folder, Path(scratch), grid, seeds, options, jobs=jobs
        )
    runs = [*trials, *seed_runs]
    return {
        "runs": len(runs),
        "computed": sum(not r["cache"]["cached"] for r in runs),
        "cached": sum(bool(r["cache"]["cached"]) for r in runs),
    }


def _peer_metrics(
    run_info: dict[str, Any],
    dataset: Any,
    folder: Path,
    users: np.ndarray,
    targets: np.ndarray,
    cold: np.ndarray,
) -> dict[str, Any]:
    """Our metrics from one RecBole run's top-50 file, in our test-row order."""
    peer_top, peer_targets, peer_users = _read_topk(run_info["topk"], dataset, folder)
    order = pd.Series(np.arange(len(peer_users)), index=peer_users).reindex(users).to_numpy()
    if np.isnan(order.astype(float)).any() or not np.array_equal(peer_targets[order], targets):
        raise RuntimeError("RecBole's test rows do not match the release's test file")
    metrics = split_metrics(peer_top[order], targets, cold)
    result = run_info["result"]
    metrics["train_seconds"] = round(float(result.get("train_seconds", float("nan"))), 1)
    metrics["epochs"] = result.get("epochs_run")
    metrics["best_valid_ndcg@10"] = (result.get("best_valid_metrics") or {}).get("ndcg@10")
    metrics["best_epoch"] = result.get("best_epoch")
    metrics["recbole_reported"] = result.get("metrics")
    return metrics


def _mean_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-metric mean over seed runs, with the standard deviation of nDCG@10 across seeds."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(np.mean([run[key] for run in runs]))
    out["test_users"] = runs[0]["test_users"]
    out["cold_test_users"] = runs[0]["cold_test_users"]
    out["ndcg@10_sd"] = (
        float(np.std([run["ndcg@10"] for run in runs], ddof=1)) if len(runs) > 1 else 0.0
    )
    return out


def _read_topk(path: Path, dataset: Any, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The peer's top-50 lists (release tokens) as our item and user codes."""
    frame = pd.read_csv(path, dtype=str)
    item_index = pd.read_csv(
        folder / "Scientific.item2index", sep="\t", header=None, dtype=str, keep_default_na=False
    )
    user_index = pd.read_csv(
        folder / "Scientific.user2index", sep="\t", header=None, dtype=str, keep_default_na=False
    )
    token_to_item = pd.Series(
        dataset.item_index(item_index[0].tolist()), index=item_index[1].to_numpy()
    )
    token_to_user = pd.Series(
        dataset.user_index(user_index[0].tolist()), index=user_index[1].to_numpy()
    )
    lists = frame["topk"].str.split(" ")
    top = np.vstack([token_to_item.reindex(row).to_numpy() for row in lists])
    targets = token_to_item.reindex(frame["target"]).to_numpy()
    peer_users = token_to_user.reindex(frame["user"]).to_numpy()
    return top.astype(np.int64), targets.astype(np.int64), peer_users.astype(np.int64)
