"""The ml100k_pareto benchmark end to end, quick (small ranker, few trials)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paretorec.benchmarks import BENCHMARKS


@pytest.mark.slow
def test_ml100k_pareto_quick_writes_the_summary(
    ml100k_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data_dir = ml100k_dir.parent
    result = BENCHMARKS["ml100k_pareto"](
        tmp_path / "results", data_dir=data_dir, quick=True, n_trials=30
    )
    summary = result["summary"]
    for key in (
        "hv_ratio_vs_best_single_reranker",
        "ild_gain_at_95pct_ndcg",
        "coverage_ratio_at_95pct_ndcg",
        "ild_gain_at_95pct_ndcg_vs_plain",
        "search_seconds_1000_evals",
        "val_test_spearman",
    ):
        assert key in summary, key
    assert summary["coverage_ratio_at_95pct_ndcg"] >= 1.0  # the anchor itself is eligible
    assert {row["name"] for row in result["rows"]} == {
        "full",
        "mmr_only",
        "dpp_only",
        "popularity_penalty_only",
    }
    protocol = result["protocol"]
    assert protocol["ranker_test"]["engage_auc"] > 0.6 and "constraint" in protocol
    saved = json.loads((tmp_path / "results" / "ml100k_pareto.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(summary))
    assert (tmp_path / "runs" / "ml100k_pareto" / "report.html").is_file()
