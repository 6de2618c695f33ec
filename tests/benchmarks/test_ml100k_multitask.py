"""The ml100k_multitask benchmark: its summary rules, and a quick run on real data with the peers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from paretorec.benchmarks import BENCHMARKS
from paretorec.benchmarks._ml100k_multitask import (
    Candidates,
    peer_options,
    summarise,
)
from paretorec.benchmarks._peers import peers_python
from paretorec.ranking import CandidateSet


def _row(name: str, library: str, kind: str, **metrics: float) -> dict:
    return {"name": name, "library": library, "kind": kind, "metrics": metrics}


def test_summary_takes_the_best_of_each_group() -> None:
    rows = [
        _row("candidates", "paretorec", "candidates", **{"ndcg@10": 0.48}),
        _row("single-task like", "paretorec", "single-task", like_auc=0.78),
        _row("single-task rating", "paretorec", "single-task", rating_rmse=0.93),
        _row("mmoe", "paretorec", "multi-task", like_auc=0.79, rating_rmse=0.905),
        _row("ple", "paretorec", "multi-task", like_auc=0.80, rating_rmse=0.907),
        _row("torch-rechub mmoe", "torch-rechub", "multi-task", like_auc=0.75, rating_rmse=1.0),
        _row("torch-rechub esmm", "torch-rechub", "multi-task", like_auc=0.76),
        _row(
            "throughput: paretorec MMoE (Trainer)",
            "paretorec",
            "throughput",
            samples_per_second=30000,
        ),
        _row(
            "throughput: torch-rechub MMoE (MTLTrainer + DataGenerator)",
            "torch-rechub",
            "throughput",
            samples_per_second=12000,
        ),
    ]
    summary = summarise(rows)
    assert summary["rating_rmse"] == 0.905  # ours only, single-task rows included
    assert summary["best_mtl_like_auc"] == 0.80
    assert summary["best_single_task_like_auc"] == 0.78
    assert summary["torchrechub_best_like_auc"] == 0.76
    assert summary["throughput_ratio_vs_torchrechub"] == 2.5
    assert summary["ease_ndcg@10"] == 0.48


def test_summary_without_peers_is_none_not_an_error() -> None:
    summary = summarise([_row("mmoe", "paretorec", "multi-task", like_auc=0.79)])
    assert summary["torchrechub_best_like_auc"] is None
    assert summary["throughput_ratio_vs_torchrechub"] is None


def test_blend_weight_zero_keeps_the_candidate_order() -> None:
    rng = np.random.default_rng(0)
    items = np.vstack([rng.permutation(50)[:20] for _ in range(6)])
    scores = np.sort(rng.random((6, 20)), axis=1)[:, ::-1].astype(np.float32)
    relevant = sp.csr_matrix(
        (np.ones(12), (np.repeat(np.arange(6), 2), items[:, [3, 15]].ravel())), shape=(6, 50)
    )
    candidates = Candidates(
        set=CandidateSet(users=np.arange(6), items=items, scores=scores),
        relevant=relevant,
        liked=relevant,
        seconds=0.0,
    )
    own = candidates.ndcg(scores)
    ranker = rng.random((6, 20))
    assert candidates.ndcg(candidates.blend(ranker, 0.0)) == own
    assert candidates.ndcg(candidates.blend(ranker, 1.0)) == candidates.ndcg(ranker)
    # the two relevant items at ranks 4 and 16: DCG 1/log2(5) against IDCG 1 + 1/log2(3)
    assert own["ndcg@10"] == pytest.approx((1 / np.log2(5)) / (1 + 1 / np.log2(3)))


@pytest.mark.parametrize("model", ["mmoe", "ple", "esmm"])
def test_peers_get_our_sizes(model: str) -> None:
    options = peer_options(model, epochs=40, patience=3)
    assert options["embed_dim"] == 32 and options["tower_dims"] == [32]
    assert options["lr"] == 2e-3 and options["batch_size"] == 1024 and options["patience"] == 3
    assert options["mask_mode"] == "masked" and options["loader"] == "rechub"
    assert options["earlystop_label"] == ("engage" if model == "esmm" else "rating")
    assert "threads" not in options  # run_peer passes --threads itself
    if model == "esmm":
        assert options["dense_cols"] == []  # torch-rechub's ESMM takes sparse fields only


@pytest.mark.slow
@pytest.mark.skipif(
    peers_python(required=False) is None,
    reason="no peers environment (.venv-peers with torch-rechub; see benchmarks/peers/README.md)",
)
def test_quick_run_on_movielens(ml100k_dir: Path, tmp_path: Path) -> None:
    result = BENCHMARKS["ml100k_multitask"](tmp_path, data_dir=ml100k_dir.parent, quick=True)
    written = json.loads((tmp_path / "ml100k_multitask.json").read_text())
    assert written["summary"] == json.loads(json.dumps(result["summary"]))
    kinds = {row["name"]: row["kind"] for row in result["rows"]}
    assert kinds["single-task like"] == "single-task"
    assert kinds["mmoe / uncertainty"] == "multi-task"
    assert kinds["torch-rechub mmoe"] == "multi-task"
    assert sum(kind == "throughput" for kind in kinds.values()) == 2
    for row in result["rows"]:
        for key in ("engage_auc", "like_auc"):
            if key in row["metrics"]:
                assert 0.5 < row["metrics"][key] <= 1.0, (row["name"], key)
    summary = result["summary"]
    for key in (
        "rating_rmse",
        "best_mtl_like_auc",
        "best_single_task_like_auc",
        "torchrechub_best_like_auc",
        "throughput_ratio_vs_torchrechub",
    ):
        assert isinstance(summary[key], float) and math.isfinite(summary[key]), key
    assert 0.5 < summary["rating_rmse"] < 2.0
    assert summary["throughput_ratio_vs_torchrechub"] > 0
