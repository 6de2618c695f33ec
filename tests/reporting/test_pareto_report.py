"""The static Pareto report on a small synthetic run (no data files, a few seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from paretorec.config import ParetoConfig
from paretorec.pareto import SearchSpace, holdout_check, run_search
from paretorec.pareto._pipeline import ParetoRun, summarize
from paretorec.ranking import Policy
from paretorec.reporting import write_pareto_report
from paretorec.reporting._pareto_report import (
    explain_policy,
    operating_points,
    preference_weights,
)

from ..pareto.test_search import tiny_evaluator


@pytest.fixture(scope="module")
def run() -> ParetoRun:
    validation = tiny_evaluator()
    test = tiny_evaluator()
    searches, holdout = {}, {}
    for name, space in {
        "full": SearchSpace(k=5),
        "mmr only": SearchSpace(k=5, rerankers=("mmr",), boosts=()),
    }.items():
        result = run_search(validation, space, n_trials=25, progress=False, seed=1)
        searches[name] = result
        holdout[name] = holdout_check(result.front_policies(), result.front.values, test)
    config = ParetoConfig.from_dict({"objectives": {"k": 5}, "search": {"storage": None}})
    pareto = ParetoRun(
        config=config,
        objectives=tuple(validation.objectives),
        directions=validation.directions,
        searches=searches,
        holdout=holdout,
        baseline_test=test.evaluate(Policy(k=5)),
    )
    pareto.summary = summarize(pareto)
    pareto.summary["ndcg_valsel"] = 0.1  # a key a newer pipeline may add: shown, not required
    return pareto


def test_report_marks_operating_points_in_every_plot(run: ParetoRun, tmp_path: Path) -> None:
    page = write_pareto_report(run, tmp_path).read_text()
    pairs = len(run.objectives) * (len(run.objectives) - 1) // 2
    assert len(list(tmp_path.glob("front_*_vs_*.png"))) == pairs == page.count('alt="front_')
    assert (tmp_path / "parallel.png").stat().st_size > 1000
    assert 'alt="parallel.png"' in page
    payload = json.loads((tmp_path / "front.json").read_text())
    keys = [p["key"] for p in payload["operating_points"]]
    assert keys == ["plain", "accuracy_max", "knee", "equal_preference", "accuracy_first"]
    assert all(p["explain"] for p in payload["operating_points"] + payload["front"])
    # the page says why 2-D projections look dominated and why validation nDCG is lower
    assert "look dominated" in page and "non-dominated subset" in page
    assert "Why validation ndcg is lower than test ndcg" in page and "0.60x" in page
    assert "ndcg_valsel" in page and "selected on validation and the figure measured" in page
    for label in ("plain ranking", "accuracy-max", "knee", "equal preference"):
        assert label in page


def test_operating_points_are_the_validation_picks(run: ParetoRun) -> None:
    points = {p.key: p for p in operating_points(run)}
    full = run.holdout["full"]
    policies = run.front_policies()
    # the preference pick is the weighted Chebyshev pick on the validation front
    from paretorec.pareto import ParetoFront

    front = ParetoFront(values=full.validation, directions=run.directions)
    weights = preference_weights(run.objectives)["equal_preference"]
    index = front.pick([weights[o] for o in run.objectives])
    assert points["equal_preference"].policy == policies[index]
    np.testing.assert_allclose(list(points["equal_preference"].test.values()), full.test[index])
    assert points["knee"].index == front.knee()
    assert points["plain"].policy == Policy(k=5)
    assert points["plain"].test == pytest.approx(run.baseline_test)
    accuracy = int(np.argmax(full.validation[:, 0]))
    assert points["accuracy_max"].index == accuracy


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        (Policy(k=10), "the plain ranking: the top 10 candidates"),
        (
            Policy(k=10, reranker="mmr", mmr_lambda=0.35, mmr_similarity="mean"),
            "MMR (mean similarity, lambda 0.35): trades relevance for intra-list diversity",
        ),
        (Policy(k=10, reranker="dpp", dpp_theta=0.6), "DPP (theta 0.6)"),
        (Policy(k=10, novelty_boost=0.2), "novelty boost +0.2: lifts rarely seen items"),
        (Policy(k=10, exposure_penalty=0.5), "spreading exposure over the catalogue"),
        (
            Policy(k=10, weights={"candidate": 0.75, "like": 0.25}),
            "weighted sum of per-user normalised scores (candidate 75%, like 25%)",
        ),
        (
            Policy(k=10, reranker="fair", fair_min_share=0.3),
            "at least 30% items of group 1 (1 = long tail)",
        ),
        (Policy(k=10, depth=40, long_tail_boost=0.1), "chosen among the 40 best candidates"),
    ],
)
def test_policies_in_words(policy: Policy, words: str) -> None:
    assert words in explain_policy(policy)
    assert explain_policy(policy.to_dict()) == explain_policy(policy)


def test_guarded_floor_picks_are_marked_when_measured(run: ParetoRun, tmp_path: Path) -> None:
    from dataclasses import replace

    full = run.holdout["full"]
    n = len(full.validation)
    guarded_run = replace(
        run,
        holdout={**run.holdout, "full": replace(full, validation_ndcg_share_se=np.full(n, 0.005))},
    )
    guarded_run.summary = summarize(guarded_run)
    points = {p.key: p for p in operating_points(guarded_run)}
    policies = guarded_run.front_policies()
    marked = [key for key in points if key.startswith("guarded_")]
    assert marked, "the tiny run should have policies above the guarded floor"
    for key in marked:
        objective = key.removeprefix("guarded_")
        pick = guarded_run.summary[f"{objective}_valsel_guarded_pick"]
        # the report marks the very policy the summary's guarded figure comes from
        assert points[key].policy == Policy.from_dict(pick["params"])
        assert points[key].test == pytest.approx(pick["test"])
        assert points[key].policy == policies[points[key].index]
    payload_keys = [
        p["key"]
        for p in json.loads(
            (write_pareto_report(guarded_run, tmp_path).parent / "front.json").read_text()
        )["operating_points"]
    ]
    assert payload_keys[:5] == [
        "plain",
        "accuracy_max",
        "knee",
        "equal_preference",
        "accuracy_first",
    ]
    assert set(payload_keys[5:]) == set(marked)
    # without measured standard errors there is nothing to guard with: no such points
    assert not [p for p in operating_points(run) if p.key.startswith("guarded_")]
