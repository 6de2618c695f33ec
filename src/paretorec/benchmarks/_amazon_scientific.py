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

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._validation import check_positive_int
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
) -> dict[str, Any]:
    from ..text import TextEncoder, encode_items
    from ._peers import run_recbole_sasrec

    seeds = check_positive_int(seeds, "seeds")
    torch.set_num_threads(threads)
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
    peer_future = None
    scratch = tempfile.TemporaryDirectory(prefix="recbole_")
    topk_file = Path(scratch.name) / "topk.csv"
    pool = ThreadPoolExecutor(max_workers=1)
    if peers:
        options = {**RECBOLE, "epochs": 2 if quick else RECBOLE["epochs"]}
        peer_future = pool.submit(
            run_recbole_sasrec, folder, save_topk=topk_file, threads=1, stream=False, **options
        )
        torch.set_num_threads(max(1, threads - 1))

    rows: list[dict[str, Any]] = []
    seed_list = list(range(1 if quick else seeds))
    per_mode: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in VARIANTS}
    for seed in seed_list:
        for mode, item_mode, layout in VARIANTS:
            model = SequentialTransformer(item_mode, seed=seed, show_progress=True, **params)  # type: ignore[arg-type]
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
            per_mode[mode].append(metrics)
            rows.append(
                {
                    "name": f"paretorec sequential {mode} (seed {seed})",
                    "kind": "seed",
                    "table": "seeds",
                    "mode": mode,
                    "text": None if item_mode == "id" else layout,
                    "seed": seed,
                    "metrics": metrics,
                }
            )
            print(f"{mode} seed {seed}: nDCG@10 {metrics['ndcg@10']:.4f} ({seconds:.0f}s)")
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

    peer_ndcg: float | None = None
    if peer_future is not None:
        print("waiting for RecBole SASRec ...")
        peer = peer_future.result()
        peer_top, peer_targets, peer_users = _read_topk(topk_file, dataset, folder)
        order = pd.Series(np.arange(len(peer_users)), index=peer_users).reindex(users).to_numpy()
        if np.isnan(order.astype(float)).any() or not np.array_equal(peer_targets[order], targets):
            raise RuntimeError("RecBole's test rows do not match the release's test file")
        metrics = split_metrics(peer_top[order], targets, cold)
        result = peer.result
        metrics["train_seconds"] = round(float(result.get("train_seconds", float("nan"))), 1)
        metrics["epochs"] = result.get("epochs_run")
        metrics["best_valid_ndcg@10"] = (result.get("best_valid_metrics") or {}).get("ndcg@10")
        metrics["best_epoch"] = result.get("best_epoch")
        metrics["recbole_reported"] = result.get("metrics")
        rows.append(
            {"name": "RecBole SASRec (peer)", "kind": "peer", "table": "main", "metrics": metrics}
        )
        peer_ndcg = metrics["ndcg@10"]
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
    if peer_ndcg is not None:
        summary["recbole_sasrec_ndcg@10"] = peer_ndcg
        summary["hybrid_vs_recbole_ratio"] = summary["hybrid_ndcg@10"] / peer_ndcg
        summary["hybrid_vs_recbole_ratio_by_seed"] = [
            m["ndcg@10"] / peer_ndcg for m in per_mode["hybrid"]
        ]
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
        "seeds": f"each paretorec model trained with seeds {seed_list}; the summary holds "
        "the mean over seeds (RecBole: one run, its default seed, for lack of CPU time)",
        "recbole": {**RECBOLE, "loss": "CE", "early stopping": "valid NDCG@10"},
        "threads": f"{threads} in all: RecBole on 1 thread in its own process while "
        "paretorec's models train on the rest",
    }
    output = make_result("amazon_scientific", protocol=protocol, rows=rows, summary=summary)
    print_rows("Amazon-Scientific next-item ranking (test)", rows, COLUMNS)
    print("summary:", summary)
    path = write_result(output, output_dir)
    print(f"wrote {path}")
    return output


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
