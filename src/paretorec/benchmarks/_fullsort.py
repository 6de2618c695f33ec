"""Full-catalogue scoring speed on MovieLens-1M: every user x every item, top-10, metrics."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._threads import thread_limit
from ..data import load_dataset, random_split
from ..evaluation import evaluate_ranking
from ..models import create_model
from ._harness import make_result, print_rows, write_result

SPEED_COLUMNS = (
    "full_sort_seconds",
    "users_ranked",
    "items",
    "ndcg@10",
    "recall@10",
    "coverage@10",
)
MODELS: dict[str, dict[str, Any]] = {
    "ease": {"regularization": 500.0},
    "bpr": {"seed": 0},
}


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    repeats: int = 5,
    threads: int = 2,
    quick: bool = False,
) -> dict[str, Any]:
    """Run the benchmark with ``threads`` threads in torch and every BLAS / OpenMP pool
    (restored afterwards)."""
    with thread_limit(threads):
        return _run(output_dir, data_dir=data_dir, repeats=repeats, threads=threads, quick=quick)


def _run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    repeats: int = 5,
    threads: int = 2,
    quick: bool = False,
) -> dict[str, Any]:
    dataset = load_dataset("movielens-1m", data_dir)
    split = random_split(dataset, ratio=0.8, seed=0)
    rows: list[dict[str, Any]] = []
    for name, params in MODELS.items():
        if quick and name == "bpr":
            params = {**params, "epochs": 1}
        started = time.perf_counter()
        model = create_model(name, **params).fit(split.train)
        fit_seconds = time.perf_counter() - started
        every_user = np.arange(dataset.n_users)  # users without test items are ranked too
        evaluate_ranking(model, split.test, k=10, users=every_user)  # warm-up
        runs = [evaluate_ranking(model, split.test, k=10, users=every_user) for _ in range(repeats)]
        timings = [run.seconds for run in runs]
        result = runs[-1]
        rows.append(
            {
                "name": name,
                "params": model.get_params(),
                "fit_seconds": round(fit_seconds, 3),
                "full_sort_seconds_runs": [round(t, 4) for t in timings],
                "metrics": {
                    "full_sort_seconds": round(statistics.median(timings), 4),
                    "users_ranked": len(result.users),
                    "users_with_test_items": int(np.isfinite(result.per_user["ndcg@10"]).sum()),
                    "items": model.n_items,
                    "ndcg@10": round(result["ndcg@10"], 6),
                    "recall@10": round(result["recall@10"], 6),
                    "coverage@10": round(result["coverage@10"], 6),
                },
            }
        )
    slowest = max(rows, key=lambda r: r["metrics"]["full_sort_seconds"])
    summary = {
        "full_sort_seconds_ml1m": slowest["metrics"]["full_sort_seconds"],
        "slowest_model": slowest["name"],
    }
    protocol = {
        "dataset": "movielens-1m (all 1,000,209 user-item pairs, implicit)",
        "split": "global random 80/20, seed 0",
        "timed": "score every item for every one of the 6,040 users (batches of 1024), "
        "exclude training items, top-10, accuracy and beyond-accuracy metrics (users without "
        "test items skipped in the means); fit excluded",
        "repeats": repeats,
        "statistic": "median of repeats after one warm-up run",
        "threads": threads,
        "users_x_items": f"{dataset.n_users} x {dataset.n_items}",
    }
    output = make_result("fullsort", protocol=protocol, rows=rows, summary=summary)
    print_rows(
        "Full-catalogue ranking, MovieLens-1M (median of repeats)",
        rows,
        SPEED_COLUMNS,
    )
    print("summary:", summary)
    path = write_result(output, output_dir)
    print(f"wrote {path}")
    return output
