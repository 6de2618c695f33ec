"""The Pareto pipeline: data -> candidates -> policy search on validation -> test check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from ..config import ParetoConfig, SpaceConfig
from ..data import Dataset, carve_validation, load_dataset, stratified_split
from ..models import create_model
from ..ranking import CandidateSet, ItemContext, Policy
from ._front import Normalization, ParetoFront
from ._objectives import PolicyEvaluator
from ._search import Constraint, HoldoutCheck, SearchResult, SearchSpace, holdout_check, run_search


@dataclass
class ParetoRun:
    """Everything a Pareto run measured."""

    config: ParetoConfig
    objectives: tuple[str, ...]
    directions: list[str]
    searches: dict[str, SearchResult]
    holdout: dict[str, HoldoutCheck]
    summary: dict[str, Any] = field(default_factory=dict)
    output_dir: Path | None = None
    #: the ranker's task metrics on validation and test (empty without a ranker)
    ranker_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the plain candidate ranking (the default policy) on test
    baseline_test: dict[str, float] = field(default_factory=dict)

    def front_policies(self, space: str = "full") -> list[Policy]:
        return self.searches[space].front_policies()

    def test_front(self, space: str = "full") -> ParetoFront:
        check = self.holdout[space]
        return ParetoFront(
            values=check.test,
            directions=self.directions,
            names=list(self.objectives),
            payloads=[p.to_dict() for p in self.front_policies(space)],
        )


def _space(
    config: SpaceConfig, k: int, n_candidates: int, sources: tuple[str, ...] = ()
) -> SearchSpace:
    return SearchSpace(
        rerankers=tuple(config.rerankers),
        boosts=tuple(config.boosts),
        sources=sources,
        max_boost=config.max_boost,
        k=k,
        max_depth=n_candidates if config.depth else None,
    )


def _evaluator(
    dataset: Dataset,
    train: Dataset,
    target: Dataset,
    config: ParetoConfig,
    vectors: Any,
    console: Console,
) -> tuple[PolicyEvaluator, dict[str, float] | None]:
    """The evaluator of policies on ``target``, everything fitted on ``train`` alone; with a
    ranker configured, also its task metrics on ``target``."""
    model = create_model(config.candidates.model, **config.candidates.params).fit(train)
    relevant_all = target.to_csr()
    users = np.flatnonzero((np.diff(relevant_all.indptr) > 0) & (np.diff(model.seen.indptr) > 0))
    candidates = CandidateSet.from_model(model, users, config.candidates.n_candidates)
    ranker_metrics = None
    if config.ranker is not None:
        from ..multitask import evaluate_ranker, fit_ranker

        started = time.perf_counter()
        ranker = fit_ranker(config.ranker, dataset, train)
        predicted = ranker.predict_pairs(candidates.users, candidates.items)
        candidates = CandidateSet(
            users=candidates.users,
            items=candidates.items,
            scores=candidates.scores,
            predictions={name: predicted[name] for name in config.ranker.source_names()},
        )
        ranker_metrics = evaluate_ranker(ranker, config.ranker, dataset, target)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in ranker_metrics.items())
        console.print(
            f"  ranker {ranker.architecture} ({ranker.strategy}) fitted in "
            f"{time.perf_counter() - started:.1f}s; on this split's held-out part: {shown}"
        )
    context = ItemContext.from_training(model.seen, vectors)
    groups = {name: dataset.users[name].to_numpy()[users] for name in config.objectives.user_groups}
    evaluator = PolicyEvaluator(
        candidates=candidates,
        relevant=relevant_all[users],
        context=context,
        objectives=tuple(config.objectives.names),
        k=config.objectives.k,
        user_groups=groups or None,
    )
    return evaluator, ranker_metrics


def run_pareto(
    config: ParetoConfig,
    *,
    output_dir: str | Path | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> ParetoRun:
    """Search policies on validation (carved from training), then re-check on test."""
    console = console or Console()
    out = Path(output_dir or config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_config = config.data
    dataset = load_dataset(data_config.dataset, data_config.data_dir, download=data_config.download)
    split = stratified_split(dataset, ratio=data_config.ratio, seed=data_config.seed)
    inner = carve_validation(
        split, ratio=data_config.validation_ratio, seed=data_config.validation_seed
    )
    assert inner.valid is not None
    vectors, _ = dataset.item_multi_hot("genres")
    console.print(
        f"{dataset.name}: train {inner.train.n_interactions:,} / validation "
        f"{inner.valid.n_interactions:,} / test {split.test.n_interactions:,}; candidates: "
        f"{config.candidates.model} top-{config.candidates.n_candidates}"
    )
    validation, valid_ranker = _evaluator(
        dataset, inner.train, inner.valid, config, vectors, console
    )
    test, test_ranker = _evaluator(dataset, split.train, split.test, config, vectors, console)
    sources = config.ranker.source_names() if config.ranker is not None else ()

    spaces = {"full": config.search.space, **config.search.compare}
    constraints = [Constraint(**c.model_dump()) for c in config.search.constraints]
    storage = None
    if config.search.storage:
        storage = Path(config.search.storage)
        storage = storage if storage.is_absolute() or "://" in str(storage) else out / storage
    searches: dict[str, SearchResult] = {}
    holdout: dict[str, HoldoutCheck] = {}
    for name, space_config in spaces.items():
        started = time.perf_counter()
        result = run_search(
            validation,
            _space(space_config, config.objectives.k, config.candidates.n_candidates, sources),
            n_trials=config.search.n_trials,
            sampler=config.search.sampler,
            storage=storage,
            study_name=f"{config.name}-{name}",
            seed=config.search.seed,
            population_size=config.search.population_size,
            constraints=constraints,
            progress=progress,
        )
        searches[name] = result
        front = result.front
        holdout[name] = holdout_check(result.front_policies(), front.values, test)
        console.print(
            f"  space {name!r}: {len(result.policies)} policies evaluated, "
            f"{len(front.values)} on the front ({time.perf_counter() - started:.1f}s)"
        )
    run = ParetoRun(
        config=config,
        objectives=tuple(validation.objectives),
        directions=validation.directions,
        searches=searches,
        holdout=holdout,
        output_dir=out,
        baseline_test=test.evaluate(Policy(k=config.objectives.k)),
        ranker_metrics=(
            {"validation": valid_ranker, "test": test_ranker}
            if valid_ranker is not None and test_ranker is not None
            else {}
        ),
    )
    run.summary = summarize(run)
    return run


#: The figures read off a run at a share of the reference's nDCG: objective -> (summary key
#: stem, how the chosen policy's value compares with the reference's).
HEADLINES: tuple[tuple[str, str, str], ...] = (
    ("ild", "ild_gain_at_95pct_ndcg", "gain"),
    ("coverage", "coverage_ratio_at_95pct_ndcg", "ratio"),
    ("novelty", "novelty_gain_at_95pct_ndcg", "gain"),
)
#: Hypervolume reference offset beyond the nadir, as a share of each objective's range.
HV_REFERENCE_OFFSET = 0.1


def _relative(value: float, reference: float, kind: str) -> float:
    return value / reference - 1.0 if kind == "gain" else value / reference


def _validation_pick(
    check: HoldoutCheck,
    objectives: list[str],
    directions: list[str],
    objective: str,
    ndcg_floor: float,
) -> int | None:
    """Front row with the best *validation* ``objective`` among those whose validation nDCG
    is at least ``ndcg_floor`` (``None`` when none is).

    The front holds the non-dominated feasible policies of the search, so its best point is
    also the best of every feasible policy searched: any policy meeting the floor is dominated
    by, or equal to, a front point that meets it too.
    """
    front = ParetoFront(values=check.validation, directions=directions, names=objectives)
    return front.pick_constrained(objective, {"ndcg": ndcg_floor})


def summarize(run: ParetoRun, anchor_share: float = 0.95) -> dict[str, Any]:
    """Headline figures of a run: policies chosen on validation, figures measured on test.

    For ILD, coverage and novelty, one policy each is chosen on validation: the best
    validation value of that objective among the front policies whose validation nDCG is at
    least ``anchor_share`` x the plain candidate ranking's (evaluation 0 of the search).
    ``*_valsel`` is that policy's test value relative to the plain ranking's test value; its
    whole test vector and test nDCG share come with it (``*_valsel_pick``). The same choice
    against the search's top-nDCG policy (the front point with the best validation nDCG) is
    a second reference (``*_valsel_vs_top_ndcg``). ``*_test_oracle`` figures filter and pick
    on test (each objective possibly a different policy): an optimistic bound, not a result.
    Hypervolumes use one normalisation over every compared front's test values, with the
    nadir as reference and with a reference offset by 10 % of each objective's range
    (``*_offset_ref``), which credits extreme points.
    """
    objectives = list(run.objectives)
    full = run.holdout["full"]
    search = run.searches["full"]
    summary: dict[str, Any] = {
        "front_size": len(full.test),
        "val_test_spearman": full.spearman_ndcg,
        "search_seconds": search.seconds,
        "evaluations": len(search.policies),
    }
    evals = max(len(search.policies) - 1, 1)
    summary["search_seconds_1000_evals"] = search.seconds * 1000 / evals
    # one normalisation over every compared front, so hypervolumes are comparable
    everything = np.vstack([check.test for check in run.holdout.values()])
    normalization = Normalization.from_values(everything, run.directions)
    fronts = {
        name: ParetoFront(values=check.test, directions=run.directions, names=objectives).front()
        for name, check in run.holdout.items()
    }
    for suffix, offset in (("", None), ("_offset_ref", HV_REFERENCE_OFFSET)):
        volumes = {
            name: front.hypervolume(normalization=normalization, reference_offset=offset)
            for name, front in fronts.items()
        }
        summary[f"hypervolume_test{suffix}"] = volumes
        others = [v for name, v in volumes.items() if name != "full"]
        if others and max(others) > 0:
            summary[f"hv_ratio_vs_best_single_reranker{suffix}"] = volumes["full"] / max(others)
    # Operator picks, made on validation and reported with their test values.
    validation_front = ParetoFront(
        values=full.validation, directions=run.directions, names=objectives
    )
    policies = run.front_policies()
    for key, index in (
        ("knee", validation_front.knee()),
        ("equal_preference", validation_front.pick([1.0] * len(objectives))),
    ):
        summary[f"{key}_policy"] = policies[index].describe()
        summary[f"{key}_test"] = dict(zip(objectives, full.test[index].tolist(), strict=True))
    if run.ranker_metrics:
        summary["ranker_test"] = run.ranker_metrics["test"]
    if "ndcg" not in objectives:
        return summary
    ndcg = objectives.index("ndcg")

    def as_dict(row: np.ndarray) -> dict[str, float]:
        return dict(zip(objectives, row.tolist(), strict=True))

    # Second reference: the search's top-nDCG policy (validation), on test.
    top = int(np.argmax(full.validation[:, ndcg]))
    summary["top_ndcg_policy"] = policies[top].to_dict()
    summary["top_ndcg_test"] = as_dict(full.test[top])
    references: list[tuple[str, np.ndarray, np.ndarray]] = [
        ("_vs_top_ndcg", full.validation[top], full.test[top])
    ]
    plain_valid = search.baseline
    if run.baseline_test and plain_valid:
        plain_test = np.array([run.baseline_test[o] for o in objectives])
        summary["plain_test"] = dict(run.baseline_test)
        summary["plain_validation"] = dict(plain_valid)
        references.insert(0, ("", np.array([plain_valid[o] for o in objectives]), plain_test))
        # Test oracle: filtered and picked on test, each objective its own policy. Kept only
        # to show how much choosing on test would flatter the figures.
        allowed = full.test[:, ndcg] >= anchor_share * plain_test[ndcg]
        for objective, key, kind in HEADLINES:
            if objective in objectives and allowed.any():
                column = objectives.index(objective)
                best = float(full.test[allowed, column].max())
                summary[f"{key}_test_oracle"] = _relative(best, float(plain_test[column]), kind)
    for suffix, reference_valid, reference_test in references:
        floor = anchor_share * float(reference_valid[ndcg])
        for objective, key, kind in HEADLINES:
            if objective not in objectives:
                continue
            column = objectives.index(objective)
            picked = _validation_pick(full, objectives, run.directions, objective, floor)
            if picked is None:
                continue
            chosen = full.test[picked]
            summary[f"{key}_valsel{suffix}"] = _relative(
                float(chosen[column]), float(reference_test[column]), kind
            )
            if suffix == "":
                summary[f"{objective}_valsel_ndcg_share"] = float(
                    chosen[ndcg] / reference_test[ndcg]
                )
                summary[f"{objective}_valsel_pick"] = {
                    "policy": policies[picked].describe(),
                    "params": policies[picked].to_dict(),
                    "validation": as_dict(full.validation[picked]),
                    "test": as_dict(chosen),
                    "test_ndcg_share_of_plain": float(chosen[ndcg] / reference_test[ndcg]),
                }
    return summary


def print_front(run: ParetoRun, console: Console | None = None, limit: int = 25) -> None:
    """Print the front (test values, best nDCG first) and the summary."""
    from rich.table import Table

    console = console or Console()
    check = run.holdout["full"]
    policies = run.front_policies()
    order = np.argsort(-check.test[:, 0], kind="stable")[:limit]
    table = Table(
        title=f"Pareto front on test ({len(policies)} policies found on validation; "
        f"showing {len(order)})"
    )
    table.add_column("policy", overflow="fold")
    for name, direction in zip(run.objectives, run.directions, strict=True):
        table.add_column(f"{name} {'↑' if direction == 'maximize' else '↓'}", justify="right")
    for i in order:
        table.add_row(policies[i].describe(), *(f"{v:.4f}" for v in check.test[i]))
    console.print(table)
    for key in ("knee", "equal_preference"):
        if f"{key}_policy" in run.summary:
            values = ", ".join(f"{k}={v:.4f}" for k, v in run.summary[f"{key}_test"].items())
            console.print(
                f"{key} pick (on validation): {run.summary[f'{key}_policy']} -> test {values}"
            )
    if "ranker_test" in run.summary:
        values = ", ".join(f"{k}={v:.4f}" for k, v in run.summary["ranker_test"].items())
        console.print(f"multi-task ranker on test: {values}")
    for objective, key, _ in HEADLINES:
        pick = run.summary.get(f"{objective}_valsel_pick")
        if pick is None:
            continue
        values = ", ".join(f"{k}={v:.4f}" for k, v in pick["test"].items())
        console.print(
            f"best {objective} on validation at >= 95% of the plain ranking's validation nDCG: "
            f"{pick['policy']} -> test {values}; {key}_valsel={run.summary[key + '_valsel']:.4f}"
            f" (test nDCG {pick['test_ndcg_share_of_plain']:.1%} of the plain ranking's)"
        )
    picks = ("knee_policy", "equal_preference_policy")
    shown = {
        k: v
        for k, v in run.summary.items()
        if not isinstance(v, dict) and k not in picks and not k.endswith("_test_oracle")
    }
    console.print(
        "summary: "
        + ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
        )
    )
    oracle = {k: v for k, v in run.summary.items() if k.endswith("_test_oracle")}
    if oracle:
        console.print(
            "test oracle (filtered and picked on test, each objective its own policy; an "
            "optimistic bound, not a result): "
            + ", ".join(f"{k}={v:.4f}" for k, v in oracle.items())
        )
