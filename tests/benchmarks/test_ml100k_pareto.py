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
        "ild_gain_at_95pct_ndcg_valsel",
        "coverage_ratio_at_95pct_ndcg_valsel",
        "novelty_gain_at_95pct_ndcg_valsel",
        "hv_ratio_vs_best_single_reranker",
        "hv_ratio_vs_best_single_reranker_offset_ref",
        "search_seconds_1000_evals",
        "val_test_spearman",
    ):
        assert key in summary, key
    # nothing chosen on test is left unlabelled
    assert not [k for k in summary if k.endswith("_at_95pct_ndcg")]
    # each headline is its validation pick's test value against the plain ranking's
    plain = summary["plain_test"]
    for objective, key in (
        ("ild", "ild_gain_at_95pct_ndcg_valsel"),
        ("novelty", "novelty_gain_at_95pct_ndcg_valsel"),
    ):
        pick = summary[f"{objective}_valsel_pick"]
        assert summary[key] == pytest.approx(pick["test"][objective] / plain[objective] - 1)
        assert pick["validation"]["ndcg"] >= 0.95 * summary["plain_validation"]["ndcg"]
    pick = summary["coverage_valsel_pick"]
    assert summary["coverage_ratio_at_95pct_ndcg_valsel"] == pytest.approx(
        pick["test"]["coverage"] / plain["coverage"]
    )
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
