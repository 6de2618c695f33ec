"""Benchmark results keep the shape later benchmarks reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from paretorec.benchmarks._harness import make_result, write_result

KEYS = {"benchmark", "command", "commit", "date", "protocol", "rows", "summary"}


def test_result_shape_and_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # outside a repository: no commit, nothing to refuse
    result = make_result(
        "toy",
        protocol={"split": "x"},
        rows=[{"name": "m", "metrics": {"ndcg@10": 0.5}}],
        summary={"best": 0.5},
    )
    assert set(result) >= KEYS
    path = write_result(result, tmp_path)
    assert path.name == "toy.json" and not list(tmp_path.glob("*.tmp"))
    assert json.loads(path.read_text())["rows"][0]["metrics"]["ndcg@10"] == 0.5


def test_committed_results_have_the_shape() -> None:
    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    for path in results.glob("*.json"):
        data = json.loads(path.read_text())
        assert set(data) >= KEYS, path.name
        for row in data["rows"]:
            assert {"name", "metrics"} <= set(row), path.name


def test_benchmarks_md_is_rendered_from_the_results() -> None:
    from paretorec.benchmarks._render import render_markdown

    root = Path(__file__).resolve().parents[2]
    expected = render_markdown(root / "benchmarks" / "results")
    assert (root / "BENCHMARKS.md").read_text() == expected, (
        "BENCHMARKS.md is stale: run `python benchmarks/render.py`"
    )


def test_amazon_ranking_metrics_match_a_loop() -> None:
    from paretorec.benchmarks._amazon_scientific import ranking_metrics

    rng = np.random.default_rng(0)
    top = np.vstack([rng.permutation(100)[:50] for _ in range(40)])
    targets = rng.integers(0, 100, size=40)
    got = ranking_metrics(top, targets)
    for k in (10, 50):
        ranks = [
            list(row[:k]).index(t) if t in row[:k] else None
            for row, t in zip(top, targets, strict=True)
        ]
        ndcg = np.mean([0.0 if r is None else 1 / np.log2(r + 2) for r in ranks])
        recall = np.mean([r is not None for r in ranks])
        assert got[f"ndcg@{k}"] == pytest.approx(ndcg)
        assert got[f"recall@{k}"] == pytest.approx(recall)
