"""``summarize``: headline figures chosen on validation, reported on test."""

from __future__ import annotations

import numpy as np
import pytest

from paretorec.config import ParetoConfig
from paretorec.pareto import Normalization, ParetoFront
from paretorec.pareto._pipeline import ParetoRun, summarize
from paretorec.pareto._search import HoldoutCheck, SearchResult
from paretorec.ranking import Policy

OBJECTIVES = ("ndcg", "ild", "coverage", "novelty")
DIRECTIONS = ["maximize"] * 4

#: (policy, validation vector, test vector); row 0 is the plain ranking (evaluation 0).
#: Validation floor for the plain reference: 0.95 x 0.40 = 0.38, so "wide" (validation nDCG
#: 0.37) is out on validation although on test it keeps 0.375 / 0.38 of the plain nDCG and
#: has the best test ILD, coverage and novelty: the test oracle picks it, validation does
#: not. Against the top-nDCG policy ("sharp", 0.41 on validation, floor 0.3895) only the
#: plain ranking, "sharp" and "mild" are eligible.
ROWS = [
    (Policy(k=10), (0.40, 0.50, 0.10, 2.00), (0.38, 0.50, 0.10, 2.00)),
    (Policy(k=10, novelty_boost=0.1), (0.41, 0.45, 0.09, 1.90), (0.39, 0.45, 0.09, 1.90)),
    (Policy(k=10, novelty_boost=0.2), (0.39, 0.55, 0.15, 2.10), (0.37, 0.56, 0.16, 2.10)),
    (Policy(k=10, novelty_boost=0.3), (0.385, 0.60, 0.20, 2.20), (0.365, 0.58, 0.18, 2.15)),
    (Policy(k=10, novelty_boost=0.4), (0.37, 0.70, 0.30, 2.50), (0.375, 0.75, 0.35, 2.60)),
]
PLAIN, SHARP, MILD, BOLD, WIDE = range(5)


def hand_made_run() -> ParetoRun:
    policies = [row[0] for row in ROWS]
    validation = np.array([row[1] for row in ROWS])
    test = np.array([row[2] for row in ROWS])
    search = SearchResult(
        objectives=OBJECTIVES,
        directions=DIRECTIONS,
        policies=policies,
        values=validation,
        feasible=np.ones(len(ROWS), dtype=bool),
        seconds=1.0,
        baseline=dict(zip(OBJECTIVES, validation[PLAIN].tolist(), strict=True)),
    )
    assert search.front_policies() == policies  # every row is on the validation front
    single = np.array([[0.385, 0.52, 0.12, 2.05], [0.375, 0.55, 0.13, 2.08]])
    return ParetoRun(
        config=ParetoConfig(),
        objectives=OBJECTIVES,
        directions=DIRECTIONS,
        searches={"full": search},
        holdout={
            "full": HoldoutCheck(OBJECTIVES, validation, test, spearman_ndcg=0.9),
            "mmr_only": HoldoutCheck(OBJECTIVES, single, single, spearman_ndcg=1.0),
        },
        baseline_test=dict(zip(OBJECTIVES, test[PLAIN].tolist(), strict=True)),
    )


def test_headlines_are_the_validation_pick_measured_on_test() -> None:
    summary = summarize(hand_made_run())
    plain = np.array(ROWS[PLAIN][2])
    bold = np.array(ROWS[BOLD][2])
    # validation picks "bold" for every objective; its test values, against the plain test
    assert summary["ild_gain_at_95pct_ndcg_valsel"] == pytest.approx(bold[1] / plain[1] - 1)
    assert summary["coverage_ratio_at_95pct_ndcg_valsel"] == pytest.approx(bold[2] / plain[2])
    assert summary["novelty_gain_at_95pct_ndcg_valsel"] == pytest.approx(bold[3] / plain[3] - 1)
    for objective in ("ild", "coverage", "novelty"):
        pick = summary[f"{objective}_valsel_pick"]
        assert Policy.from_dict(pick["params"]) == ROWS[BOLD][0]
        assert pick["test"] == dict(zip(OBJECTIVES, bold.tolist(), strict=True))
        assert pick["test_ndcg_share_of_plain"] == pytest.approx(0.365 / 0.38)
        assert summary[f"{objective}_valsel_ndcg_share"] == pytest.approx(0.365 / 0.38)
    # the test oracle picks "wide", which validation ruled out: a different, larger figure
    wide = np.array(ROWS[WIDE][2])
    assert summary["ild_gain_at_95pct_ndcg_test_oracle"] == pytest.approx(wide[1] / plain[1] - 1)
    assert summary["ild_gain_at_95pct_ndcg_test_oracle"] > summary["ild_gain_at_95pct_ndcg_valsel"]
    # second reference: the search's top-nDCG policy ("sharp"); "mild" is its pick
    sharp, mild = np.array(ROWS[SHARP][2]), np.array(ROWS[MILD][2])
    assert summary["top_ndcg_test"]["ndcg"] == pytest.approx(sharp[0])
    assert summary["ild_gain_at_95pct_ndcg_valsel_vs_top_ndcg"] == pytest.approx(
        mild[1] / sharp[1] - 1
    )


def test_no_test_selected_figure_is_left_unlabelled() -> None:
    summary = summarize(hand_made_run())
    headline = [key for key in summary if "95pct" in key]
    assert headline
    for key in headline:
        assert key.endswith(
            ("_valsel", "_valsel_vs_top_ndcg", "_valsel_guarded", "_test_oracle")
        ), key


def test_hypervolume_ratios_with_both_references() -> None:
    run = hand_made_run()
    summary = summarize(run)
    everything = np.vstack([check.test for check in run.holdout.values()])
    bounds = Normalization.from_values(everything, DIRECTIONS)
    for suffix, offset in (("", None), ("_offset_ref", 0.1)):
        volumes = {
            name: ParetoFront(check.test, DIRECTIONS).hypervolume(bounds, reference_offset=offset)
            for name, check in run.holdout.items()
        }
        assert summary[f"hypervolume_test{suffix}"] == pytest.approx(volumes)
        ratio = volumes["full"] / volumes["mmr_only"]
        assert summary[f"hv_ratio_vs_best_single_reranker{suffix}"] == pytest.approx(ratio)
    # the offset reference credits points at the nadir of some objective
    assert summary["hypervolume_test_offset_ref"]["full"] > summary["hypervolume_test"]["full"]


def test_no_policy_meets_the_floor() -> None:
    run = hand_made_run()
    run.searches["full"].baseline = {**run.searches["full"].baseline, "ndcg": 1.0}
    summary = summarize(run)
    assert "ild_gain_at_95pct_ndcg_valsel" not in summary
    assert "ild_valsel_pick" not in summary


def test_print_front_shows_the_validation_picks_and_labels_the_oracle() -> None:
    from rich.console import Console

    from paretorec.pareto import print_front

    run = hand_made_run()
    run.summary = summarize(run)
    console = Console(record=True, width=400)
    print_front(run, console=console)
    text = console.export_text()
    assert "best ild on validation at >= 95% of the plain ranking's validation nDCG" in text
    assert "ild_gain_at_95pct_ndcg_valsel=0.1600" in text
    summary_line = next(line for line in text.splitlines() if line.startswith("summary: "))
    assert "test_oracle" not in summary_line
    assert "test oracle (filtered and picked on test" in text


def _drift(row: int) -> float:
    return ROWS[row][2][0] / 0.38 - ROWS[row][1][0] / 0.40


def test_ndcg_share_drift_over_the_policies_validation_could_pick() -> None:
    summary = summarize(hand_made_run())
    # eligible on validation (share >= 0.95 of 0.40): plain, sharp, mild, bold; not wide
    drift = [_drift(row) for row in (PLAIN, SHARP, MILD, BOLD)]
    assert _drift(BOLD) < 0 < _drift(SHARP)
    assert summary["ndcg_share_drift_median"] == pytest.approx(float(np.median(drift)))
    assert summary["ndcg_share_drift_by_reranker"] == pytest.approx({"none": np.median(drift)})
    # fewer than ten eligible policies: every one of them counts for every objective
    for objective in ("ild", "coverage", "novelty"):
        assert summary[f"{objective}_valsel_top10_drift"] == pytest.approx(np.median(drift))


def test_ndcg_share_drift_near_the_pick_and_per_reranker() -> None:
    from paretorec.pareto._pipeline import _ndcg_share_drift

    run = hand_made_run()
    policies = [row[0] for row in ROWS]
    policies[BOLD] = Policy(k=10, reranker="mmr")
    out = _ndcg_share_drift(
        run.holdout["full"], policies, list(OBJECTIVES), 0.40, 0.38, runners_up=2
    )
    # the two eligible policies with the best validation ILD: bold (0.60), mild (0.55)
    assert out["ild_valsel_top10_drift"] == pytest.approx((_drift(BOLD) + _drift(MILD)) / 2)
    plain_drift = np.median([_drift(row) for row in (PLAIN, SHARP, MILD)])
    assert out["ndcg_share_drift_by_reranker"] == pytest.approx(
        {"mmr": _drift(BOLD), "none": plain_drift}
    )
    assert _ndcg_share_drift(run.holdout["full"], policies, list(OBJECTIVES), 0.0, 0.38) == {}
    nothing = _ndcg_share_drift(run.holdout["full"], policies, list(OBJECTIVES), 1.0, 0.38)
    assert nothing == {}  # no policy meets the floor


def test_guarded_picks_need_the_lower_bound_to_clear_the_floor() -> None:
    """With a standard error of 0.01 on every validation share, "bold" (share 0.9625, bound
    0.9625 - 1.645 x 0.01 = 0.946) is out and "mild" (0.975, bound 0.9586) is the best
    eligible ILD; the plain figures are unchanged."""
    from dataclasses import replace

    run = hand_made_run()
    plain_summary = summarize(run)
    assert not [k for k in plain_summary if "guarded" in k]  # not measured: no guarded keys
    run.holdout["full"] = replace(run.holdout["full"], validation_ndcg_share_se=np.full(5, 0.01))
    summary = summarize(run)
    assert (
        summary["ild_gain_at_95pct_ndcg_valsel"] == plain_summary["ild_gain_at_95pct_ndcg_valsel"]
    )
    plain, mild = np.array(ROWS[PLAIN][2]), np.array(ROWS[MILD][2])
    assert summary["ild_gain_at_95pct_ndcg_valsel_guarded"] == pytest.approx(mild[1] / plain[1] - 1)
    assert summary["coverage_ratio_at_95pct_ndcg_valsel_guarded"] == pytest.approx(
        mild[2] / plain[2]
    )
    pick = summary["ild_valsel_guarded_pick"]
    assert Policy.from_dict(pick["params"]) == ROWS[MILD][0]
    assert pick["validation_ndcg_share"] == pytest.approx(0.39 / 0.40)
    assert pick["validation_ndcg_share_lower_bound"] == pytest.approx(0.39 / 0.40 - 1.645 * 0.01)
    assert summary["ild_valsel_guarded_ndcg_share"] == pytest.approx(mild[0] / plain[0])
    # a large error leaves only policies well above the floor: the plain ranking itself
    run.holdout["full"] = replace(run.holdout["full"], validation_ndcg_share_se=np.full(5, 0.03))
    wide_error = summarize(run)
    # (bounds: plain 1 - 0.049, sharp 1.025 - 0.049; plain has the better ILD)
    assert Policy.from_dict(wide_error["ild_valsel_guarded_pick"]["params"]) == ROWS[PLAIN][0]
    from rich.console import Console

    from paretorec.pareto import print_front

    run.summary = summary
    console = Console(record=True, width=400)
    print_front(run, console=console)
    assert "guarded (validation share - 1.645 se >= 95%: 97.5% - 1.645 x 1.0%)" in (
        console.export_text()
    )
    # NaN errors (not measurable) make a policy ineligible
    run.holdout["full"] = replace(run.holdout["full"], validation_ndcg_share_se=np.full(5, np.nan))
    assert "ild_valsel_guarded_pick" not in summarize(run)
