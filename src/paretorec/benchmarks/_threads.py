"""Threads on a busy machine: MMoE seconds per epoch with one core taken by another process.

Each setting trains the same MMoE ranker on MovieLens-100k read as a funnel, in a fresh
process (so torch's thread pools start clean), while a burner process spins on one core.
"default" is what a user gets without saying anything (paretorec's setting: every core);
"--threads 1" is the helper's setting for a machine where a core is busy. A run without the
burner at the default setting is the quiet reference. Settings alternate over repeats and
each figure is the median epoch time over every epoch of every repeat.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .._threads import available_cores
from ._harness import make_result, print_rows, write_result


def _burn(stop: Any) -> None:  # pragma: no cover - runs in a child process
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _worker(threads: int | None, epochs: int, data_dir: str | None) -> dict[str, Any]:
    """One timed fit in this (fresh) process: ``threads`` None means paretorec's default."""
    from .._threads import configure_threads
    from ..data import load_dataset, stratified_split
    from ..multitask import ML100K_RANKER, funnel_rows

    applied = configure_threads(threads)
    dataset = load_dataset("movielens-100k", data_dir)
    train = stratified_split(dataset, ratio=0.75, seed=42).train
    rows = funnel_rows(train, negatives_per_positive=1, seed=0)
    # the shared MovieLens-100k ranker, for a fixed number of epochs (no early stopping):
    # every epoch then costs the same work
    trainer = ML100K_RANKER.trainer.model_copy(update={"epochs": epochs, "patience": None})
    ranker = ML100K_RANKER.model_copy(update={"trainer": trainer}).ranker(dataset)
    ranker.fit(rows, dataset=dataset)
    seconds = [record.seconds for record in ranker.history.epochs]
    return {"threads": applied, "epoch_seconds": seconds, "rows": len(rows)}


def _timed(threads: int | None, epochs: int, data_dir: str | None, burner: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "paretorec.benchmarks._threads", str(epochs)]
    command += [str(threads) if threads is not None else "default", data_dir or ""]
    env = {k: v for k, v in os.environ.items() if k != "PARETOREC_THREADS"}
    stop = multiprocessing.Event()
    burn = multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
    if burner:
        burn.start()
        time.sleep(0.5)
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    finally:
        if burner:
            stop.set()
            burn.join(timeout=10)
    if out.returncode != 0:
        raise RuntimeError(f"threads worker failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run(
    output_dir: str | Path = "benchmarks/results",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    repeats: int = 3,
    epochs: int = 3,
) -> dict[str, Any]:
    if quick:
        repeats, epochs = 1, 1
    cores = available_cores()
    settings = [
        ("default, quiet", None, False),
        ("default, one core busy", None, True),
        ("--threads 1, one core busy", 1, True),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in settings}
    applied: dict[str, int] = {}
    for repeat in range(repeats):
        for name, threads, burner in settings:
            result = _timed(threads, epochs, str(data_dir) if data_dir else None, burner)
            times[name] += result["epoch_seconds"]
            applied[name] = result["threads"]
            print(f"repeat {repeat + 1}/{repeats} {name}: {result['epoch_seconds']}", flush=True)
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "threads": applied[name],
            "burner": burner,
            "epoch_seconds_runs": [round(t, 3) for t in times[name]],
            "metrics": {"seconds_per_epoch": round(statistics.median(times[name]), 3)},
        }
        for name, _, burner in settings
    ]
    by_name = {row["name"]: row["metrics"]["seconds_per_epoch"] for row in rows}
    summary = {
        "mmoe_seconds_per_epoch_default_busy": by_name["default, one core busy"],
        "mmoe_seconds_per_epoch_threads1_busy": by_name["--threads 1, one core busy"],
        "mmoe_seconds_per_epoch_default_quiet": by_name["default, quiet"],
        "busy_speedup_threads1_vs_default": by_name["default, one core busy"]
        / by_name["--threads 1, one core busy"],
        "cores": cores,
    }
    protocol = {
        "model": "multitask.ML100K_RANKER (examples/train_ml100k_mmoe.toml: MMoE, uncertainty "
        "weighting, user-history field) for a fixed number of epochs, on the MovieLens-100k "
        "funnel rows of the 75/25 stratified training part (seed 42)",
        "busy": "a burner process spins on one core while the fit runs",
        "settings": "each fit in a fresh process; default = paretorec's setting (every core); "
        "--threads 1 = configure_threads(1) (torch intra/inter-op and BLAS/OpenMP pools)",
        "statistic": f"median over {epochs} epoch(s) x {repeats} alternating repeat(s)",
    }
    output = make_result("threads", protocol=protocol, rows=rows, summary=summary)
    print_rows("MMoE seconds per epoch on a busy machine", rows, ["seconds_per_epoch"])
    print("summary:", summary)
    write_result(output, output_dir)
    return output


if __name__ == "__main__":  # the timed worker: python -m ... EPOCHS THREADS|default DATA_DIR
    epochs_arg, threads_arg, data_arg = sys.argv[1], sys.argv[2], sys.argv[3]
    print(
        json.dumps(
            _worker(
                None if threads_arg == "default" else int(threads_arg),
                int(epochs_arg),
                data_arg or None,
            )
        )
    )
