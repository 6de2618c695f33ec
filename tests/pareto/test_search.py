"""Objectives, the policy search, the held-out check, configs and the pareto command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paretorec import ParetorecError
from paretorec.cli import app
from paretorec.config import ParetoConfig
from paretorec.data import stratified_split
from paretorec.models import create_model
from paretorec.pareto import (
    Constraint,
    PolicyEvaluator,
    SearchSpace,
    holdout_check,
    run_search,
)
from paretorec.ranking import CandidateSet, ItemContext, Policy

from ..conftest import make_tiny


def tiny_evaluator(objectives: tuple[str, ...] = ("ndcg", "ild", "coverage", "novelty")):  # type: ignore[no-untyped-def]
    ds = make_tiny(n_users=40, n_items=60, per_user=14)
    split = stratified_split(ds, ratio=0.7, seed=0)
    model = create_model("ease", regularization=5.0).fit(split.train)
    users = np.arange(ds.n_users)
    candidates = CandidateSet.from_model(model, users, 30)
    vectors, _ = ds.item_multi_hot("genres")
    context = ItemContext.from_training(model.seen, vectors)
    return PolicyEvaluator(
        candidates=candidates,
        relevant=split.test.to_csr()[users],
        context=context,
        objectives=objectives,
        k=5,
        user_groups={"parity": users % 2},
    )


def test_default_policy_reproduces_the_model_ranking() -> None:
    evaluator = tiny_evaluator(("ndcg", "recall", "coverage", "gap[parity]", "latency_ms"))
    values = evaluator.evaluate(Policy(k=5))
    ranked, _ = evaluator.rank(Policy(k=5))
    np.testing.assert_array_equal(ranked, evaluator.candidates.items[:, :5])
    assert 0 < values["ndcg"] <= 1 and values["latency_ms"] > 0 and values["gap[parity]"] >= 0


def test_search_finds_a_front_and_resumes(tmp_path: Path) -> None:
    evaluator = tiny_evaluator()
    space = SearchSpace(k=5)
    storage = tmp_path / "study.db"
    first = run_search(evaluator, space, n_trials=12, storage=storage, progress=False)
    assert len(first.policies) == 12 and first.values.shape == (12, 4)
    assert first.policies[0] == Policy(k=5)  # the baseline is always on record
    front = first.front
    assert 1 <= len(front.values) <= 12
    resumed = run_search(evaluator, space, n_trials=20, storage=storage, progress=False)
    assert len(resumed.policies) == 20  # 8 more, not 20 more
    np.testing.assert_array_equal(resumed.values[:12], first.values)


def test_search_is_seeded() -> None:
    evaluator = tiny_evaluator()
    a = run_search(evaluator, SearchSpace(k=5), n_trials=10, progress=False, seed=3)
    b = run_search(evaluator, SearchSpace(k=5), n_trials=10, progress=False, seed=3)
    assert [p.to_dict() for p in a.policies] == [p.to_dict() for p in b.policies]


def test_constraints_mark_infeasible_policies() -> None:
    evaluator = tiny_evaluator()
    result = run_search(
        evaluator,
        SearchSpace(k=5),
        n_trials=15,
        progress=False,
        constraints=[Constraint("ndcg", min=0.999, relative=True)],
    )
    ndcg = result.values[:, 0]
    assert result.feasible[0]  # the baseline meets its own bound
    assert np.all(ndcg[result.feasible] >= 0.999 * result.baseline["ndcg"] - 1e-12)


def test_holdout_check_reports_spearman() -> None:
    evaluator = tiny_evaluator()
    result = run_search(evaluator, SearchSpace(k=5), n_trials=15, progress=False)
    policies = result.front_policies()
    check = holdout_check(policies, result.front.values, evaluator)
    np.testing.assert_allclose(check.test, check.validation)  # same data: same values
    if len(policies) >= 3:
        assert check.spearman_ndcg == pytest.approx(1.0) or np.isnan(check.spearman_ndcg)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SearchSpace(rerankers=()), r"rerankers must list at least one re-ranker"),
        (lambda: SearchSpace(rerankers=("mmr", "xyz")), r"rerankers must be one of .*; got 'xyz'"),
        (lambda: SearchSpace(boosts=("shiny",)), r"boosts must be one of .*; got 'shiny'"),
        (lambda: Constraint("ndcg"), r"needs exactly one of min or max"),
        (lambda: Constraint("speed", min=1.0), r"objective must be one of .*; got 'speed'"),
        (
            lambda: tiny_evaluator(("ndcg", "gap[age]")),
            r"objective 'gap\[age\]' needs user_groups\['age'\]",
        ),
        (
            lambda: run_search(tiny_evaluator(), SearchSpace(k=5), n_trials=0),
            r"n_trials must be a positive int, got 0",
        ),
        (
            lambda: run_search(tiny_evaluator(), SearchSpace(k=5), sampler="cmaes"),
            r"sampler must be one of 'nsga2', 'random', 'tpe'; got 'cmaes'",
        ),
        (
            lambda: run_search(tiny_evaluator(), SearchSpace(k=7)),
            r"space k \(7\) must equal the evaluator's k \(5\)",
        ),
    ],
)
def test_bad_search_input(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParetorecError, match=message):
        make()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"search": {"n_trials": 0}},
            r"field 'search.n_trials': Input should be greater than 0, got 0",
        ),
        ({"search": {"sampler": "grid"}}, r"field 'search.sampler'.*got 'grid'"),
        ({"serach": {}}, r"unknown field 'serach'"),
        ({"data": {"ratio": 1.2}}, r"field 'data.ratio'.*got 1.2"),
        ([1], r"^config: Input should be a valid dictionary.*got \[1\]$"),
        ({"search": {"space": {"rerankers": ["mmr", "xyz"]}}}, r"field 'search.space.rerankers.1'"),
    ],
)
def test_bad_configs_are_named(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        ParetoConfig.from_dict(raw)


def test_config_files(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "pareto_ml100k.toml"
    config = ParetoConfig.from_toml(example)
    assert config.search.compare and config.search.constraints
    (tmp_path / "bad.toml").write_text("[search\nn_trials = 3")
    with pytest.raises(ParetorecError, match=r"config: .*bad.toml is not valid TOML"):
        ParetoConfig.from_toml(tmp_path / "bad.toml")
    with pytest.raises(ParetorecError, match=r"config: file not found"):
        ParetoConfig.from_toml(tmp_path / "missing.toml")


@pytest.mark.slow
def test_pareto_command_writes_the_run_folder(ml100k_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f"""name = "t"
output_dir = "{tmp_path / "run"}"
[data]
data_dir = "{ml100k_dir}"
[search]
n_trials = 25
[search.compare.mmr_only]
rerankers = ["mmr"]
boosts = []
"""
    )
    result = CliRunner().invoke(app, ["pareto", str(config)])
    assert result.exit_code == 0, result.output
    assert "Pareto front on test" in result.output and "report:" in result.output
    run = tmp_path / "run"
    front = json.loads((run / "front.json").read_text())
    assert front["front"] and "mmr_only" in front["compared"]
    assert {"validation", "test", "policy"} <= set(front["front"][0])
    assert len(list(run.glob("front_*_vs_*.png"))) == 6
    assert (run / "study.journal").is_file() and (run / "report.html").stat().st_size > 10_000


def test_front_lists_each_policy_once() -> None:
    evaluator = tiny_evaluator()
    result = run_search(evaluator, SearchSpace(k=5), n_trials=30, progress=False)
    payloads = [str(sorted(p.items())) for p in result.front.payloads or []]
    assert len(payloads) == len(set(payloads))
    assert len(result.policies) == 30  # duplicates are still on record as trials


@pytest.mark.slow
def test_pareto_run_fuses_the_multi_task_ranker(ml100k_dir: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from paretorec.pareto import print_front, run_pareto

    config = ParetoConfig.from_dict(
        {
            "output_dir": str(tmp_path / "run"),
            "data": {"data_dir": str(ml100k_dir)},
            "search": {"n_trials": 30, "storage": None},
            "ranker": {
                "sources": ["like"],
                "model": {"architecture": "mmoe", "embedding_dim": 8, "tower_units": [8]},
                "trainer": {"epochs": 2, "batch_size": 4096, "progress": False},
            },
        }
    )
    console = Console(record=True, width=200)
    run = run_pareto(config, console=console, progress=False)
    test_metrics = run.ranker_metrics["test"]
    assert run.ranker_metrics["validation"].keys() == test_metrics.keys()
    assert 0.6 < test_metrics["engage_auc"] <= 1 and 0.5 < test_metrics["like_auc"] <= 1
    assert run.summary["ranker_test"] == test_metrics
    evaluator_sources = [p.weights for p in run.searches["full"].policies]
    assert any(w.get("like", 0) > 0 for w in evaluator_sources)  # fusion weights searched
    assert all(set(w) <= {"candidate", "like"} for w in evaluator_sources)
    print_front(run, console=console)
    assert "multi-task ranker on test: engage_auc=" in console.export_text()


def test_nsga2_evolves_every_parameter_of_the_space(tmp_path: Path) -> None:
    """No conditional or parameterless trials: Optuna's NSGA-II only evolves the parameters
    every trial shares (the rest is sampled at random), so they must all be shared."""
    import optuna
    from optuna.search_space import intersection_search_space

    evaluator = tiny_evaluator()
    storage = tmp_path / "s.db"
    space = SearchSpace(k=5)
    result = run_search(evaluator, space, n_trials=40, storage=storage, progress=False)
    study = optuna.load_study(study_name="paretorec", storage=f"sqlite:///{storage}")
    shared = set(intersection_search_space(study.get_trials(deepcopy=False)))
    expected = {"reranker", "mmr_lambda", "mmr_similarity", "dpp_theta", "fair_min_share"}
    assert expected | {"novelty_boost", "long_tail_boost", "popularity_penalty"} <= shared
    assert len(study.trials) == 39 and len(result.policies) == 40  # + the baseline
    # parameters a re-ranker ignores stay out of its policies
    for policy in result.policies:
        if policy.reranker == "dpp":
            assert policy.exposure_penalty == 0 and policy.mmr_lambda == Policy().mmr_lambda
    runs = [
        run_search(evaluator, space, n_trials=120, population_size=size, progress=False)
        for size in (10, 30)
    ]
    assert not np.array_equal(runs[0].values, runs[1].values)  # population size matters


def test_search_space_depth_bound_is_checked() -> None:
    with pytest.raises(ParetorecError, match=r"max_depth must be at least k \(10\) or None, got 5"):
        SearchSpace(k=10, max_depth=5)
    assert SearchSpace(k=10, max_depth=10).max_depth == 10


def test_ndcg_per_user_averages_to_the_evaluated_ndcg() -> None:
    evaluator = tiny_evaluator()
    for policy in (Policy(k=5), Policy(k=5, reranker="mmr", mmr_lambda=0.3)):
        per_user = evaluator.ndcg_per_user(policy)
        assert per_user.shape == (len(evaluator.candidates.users),)
        assert float(np.mean(per_user)) == pytest.approx(evaluator.evaluate(policy)["ndcg"])
    with pytest.raises(ParetorecError, match="policy k"):
        evaluator.ndcg_per_user(Policy(k=3))


def test_ndcg_share_standard_errors_match_a_paired_bootstrap() -> None:
    """The delta-method standard error of a policy's nDCG share of the plain ranking's,
    against the spread of the share over 4,000 paired bootstrap resamples of users."""
    from paretorec.pareto._objectives import ndcg_share_standard_errors

    evaluator = tiny_evaluator()
    policies = [
        Policy(k=5),
        Policy(k=5, reranker="mmr", mmr_lambda=0.3),
        Policy(k=5, novelty_boost=0.5),
    ]
    se = ndcg_share_standard_errors(evaluator, policies)
    assert se[0] == pytest.approx(0.0, abs=1e-12)  # the plain ranking against itself
    base = evaluator.ndcg_per_user(Policy(k=5))
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(base), size=(4000, len(base)))
    for i, policy in enumerate(policies[1:], start=1):
        x = evaluator.ndcg_per_user(policy)
        shares = x[draws].mean(axis=1) / base[draws].mean(axis=1)
        assert se[i] > 0
        assert se[i] == pytest.approx(float(np.std(shares)), rel=0.15)
