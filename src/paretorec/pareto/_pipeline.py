"""The Pareto pipeline: data -> candidates -> policy search on validation -> test check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from .._validation import ParetorecError
from ..config import ParetoConfig, SpaceConfig
from ..data import Dataset
from ..models import create_model
from ..ranking import CandidateSet, ItemContext, Policy
from ._features import (
    ItemFeatureChoice,
    check_user_groups,
    choose_item_features,
    has_item_embeddings,
    item_groups,
    item_vectors,
)
from ._front import Normalization, ParetoFront
from ._objectives import PolicyEvaluator, objective_direction
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
    #: what the data features were made of: item vectors (ILD), item groups, user groups
    features: dict[str, Any] = field(default_factory=dict)

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
    choice: ItemFeatureChoice,
    vectors: Any,
    console: Console,
    ranker_epochs: int | None = None,
) -> tuple[PolicyEvaluator, dict[str, float] | None, int | None]:
    """The evaluator of policies on ``target``, everything fitted on ``train`` alone; with a
    ranker configured, also its task metrics on ``target`` and the epoch count it trained
    (``ranker_epochs`` reuses one chosen before instead of early-stopping again)."""
    model = create_model(config.candidates.model, **config.candidates.params).fit(train)
    if choice.vectors == "model":  # the candidate model's own embeddings, fitted on train
        vectors = item_vectors(dataset, choice, model)
    relevant_all = target.to_csr()
    users = np.flatnonzero((np.diff(relevant_all.indptr) > 0) & (np.diff(model.seen.indptr) > 0))
    candidates = CandidateSet.from_model(model, users, config.candidates.n_candidates)
    ranker_metrics = None
    epochs_trained = None
    if config.ranker is not None:
        from ..multitask import evaluate_ranker, fit_ranker

        started = time.perf_counter()
        # Item columns reach the ranker through its inferred features; text vectors are
        # passed as its frozen item vectors (the same choice the diversity objective uses).
        ranker_vectors = vectors if choice.vectors == "text" else None
        ranker = fit_ranker(
            config.ranker, dataset, train, item_vectors=ranker_vectors, epochs=ranker_epochs
        )
        epochs_trained = int(ranker.get_params()["epochs"]) if config.ranker.refit else None
        predicted = ranker.predict_pairs(candidates.users, candidates.items)
        candidates = CandidateSet(
            users=candidates.users,
            items=candidates.items,
            scores=candidates.scores,
            predictions={name: predicted[name] for name in config.ranker.source_names()},
        )
        ranker_metrics = evaluate_ranker(ranker, config.ranker, dataset, target)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in ranker_metrics.items())
        reused = f", {ranker_epochs} epochs chosen on validation" if ranker_epochs else ""
        console.print(
            f"  ranker {ranker.architecture} ({ranker.strategy}) fitted in "
            f"{time.perf_counter() - started:.1f}s{reused}; on this split's held-out part: "
            f"{shown}"
        )
    context = ItemContext.from_training(model.seen, vectors)
    groups_of_items = item_groups(dataset, choice)
    if groups_of_items is not None:
        context = replace(context, groups=groups_of_items)
    groups = {name: dataset.users[name].to_numpy()[users] for name in config.objectives.user_groups}
    evaluator = PolicyEvaluator(
        candidates=candidates,
        relevant=relevant_all[users],
        context=context,
        objectives=tuple(config.objectives.names),
        k=config.objectives.k,
        user_groups=groups or None,
    )
    return evaluator, ranker_metrics, epochs_trained


def check_pareto_config(config: ParetoConfig, dataset: Dataset) -> ItemFeatureChoice:
    """Everything checkable before any fitting: objectives, features, model, ranker."""
    for name in config.objectives.names:
        objective_direction(name)
        if name.startswith("gap[") and name[4:-1] not in config.objectives.user_groups:
            raise ParetorecError(
                f"objectives.names: {name!r} needs {name[4:-1]!r} in objectives.user_groups"
            )
    check_user_groups(dataset, config.objectives.user_groups)
    if config.candidates.n_candidates < config.objectives.k:
        raise ParetorecError(
            f"candidates.n_candidates ({config.candidates.n_candidates}) must be at least "
            f"objectives.k ({config.objectives.k})"
        )
    create_model(config.candidates.model, **config.candidates.params)  # parameters checked
    if config.ranker is not None:
        rating = config.ranker.rows.rating_column
        if rating not in dataset.label_columns:
            raise ParetorecError(
                f"ranker.rows.rating_column: the funnel ranker reads ratings from {rating!r}, "
                f"which the data does not have (labels: {list(dataset.label_columns) or 'none'})"
            )
        config.ranker.ranker(dataset)  # features resolved against the data
    return choose_item_features(
        dataset,
        config.objectives.item_vectors,
        config.objectives.item_groups,
        model_has_embeddings=has_item_embeddings(config.candidates.model),
    )


def _without_ild(config: ParetoConfig, console: Console) -> ParetoConfig:
    """Drop the ILD objective and the similarity re-rankers when there are no item vectors."""
    names = tuple(n for n in config.objectives.names if n != "ild")
    console.print(
        "  diversity unavailable: the data has no multi-valued or categorical item column, "
        "no item text, and the candidate model no item embeddings; the 'ild' objective and "
        "the mmr / dpp re-rankers are dropped"
    )

    def plain(space: SpaceConfig) -> SpaceConfig:
        kept = tuple(r for r in space.rerankers if r not in ("mmr", "dpp")) or ("none",)
        return space.model_copy(update={"rerankers": kept})

    compare = {name: plain(space) for name, space in config.search.compare.items()}
    # a compared space left with nothing to search (only MMR / DPP before) is dropped
    compare = {
        name: space
        for name, space in compare.items()
        if space.rerankers != ("none",) or space.boosts or space.depth
    }
    search = config.search.model_copy(
        update={"space": plain(config.search.space), "compare": compare}
    )
    objectives = config.objectives.model_copy(update={"names": names})
    return config.model_copy(update={"objectives": objectives, "search": search})


def run_pareto(
    config: ParetoConfig,
    *,
    output_dir: str | Path | None = None,
    console: Console | None = None,
    progress: bool = True,
    dataset: Dataset | None = None,
) -> ParetoRun:
    """Search policies on validation (carved from training), then re-check on test.

    ``dataset`` overrides ``config.data`` (already loaded data). The whole config is
    checked against the data before anything is fitted.
    """
    console = console or Console()
    data_config = config.data
    if dataset is None:
        dataset = data_config.load()
    elif not isinstance(dataset, Dataset):
        raise ParetorecError(f"dataset must be a paretorec Dataset, got {type(dataset).__name__}")
    choice = check_pareto_config(config, dataset)  # before anything is fitted
    if choice.vectors == "none" and "ild" in config.objectives.names:
        config = _without_ild(config, console)
    out = Path(output_dir or config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    split, inner = data_config.splits(dataset)
    if inner.valid is None:  # every split of DataConfig carves a validation part
        raise RuntimeError("DataConfig.splits returned no validation part")
    vectors = item_vectors(dataset, choice) if choice.vectors != "model" else None
    console.print(
        f"{dataset.name}: train {inner.train.n_interactions:,} / validation "
        f"{inner.valid.n_interactions:,} / test {split.test.n_interactions:,}; candidates: "
        f"{config.candidates.model} top-{config.candidates.n_candidates}; ILD from "
        f"{choice.describe()}"
    )
    validation, valid_ranker, ranker_epochs = _evaluator(
        dataset, inner.train, inner.valid, config, choice, vectors, console
    )
    # The test check's ranker trains once, for the epoch count validation chose.
    test, test_ranker, _ = _evaluator(
        dataset, split.train, split.test, config, choice, vectors, console, ranker_epochs
    )
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
        features={
            "item_vectors": choice.describe(),
            "item_groups": choice.groups,
            "user_groups": list(config.objectives.user_groups),
            "data": data_config.describe(),
        },
    )
    run.summary = summarize(run)
    return run


def summarize(run: ParetoRun, anchor_share: float = 0.95) -> dict[str, Any]:
    """Headline figures of a run, all measured on test."""
    objectives = list(run.objectives)
    full = run.holdout["full"]
    summary: dict[str, Any] = {
        "front_size": len(full.test),
        "val_test_spearman": full.spearman_ndcg,
        "search_seconds": run.searches["full"].seconds,
        "evaluations": len(run.searches["full"].policies),
    }
    evals = max(len(run.searches["full"].policies) - 1, 1)
    summary["search_seconds_1000_evals"] = run.searches["full"].seconds * 1000 / evals
    # one normalisation over every compared front, so hypervolumes are comparable
    everything = np.vstack([check.test for check in run.holdout.values()])
    normalization = Normalization.from_values(everything, run.directions)
    volumes = {
        name: ParetoFront(values=check.test, directions=run.directions, names=objectives)
        .front()
        .hypervolume(normalization=normalization)
        for name, check in run.holdout.items()
    }
    summary["hypervolume_test"] = volumes
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
    others = [v for name, v in volumes.items() if name != "full"]
    if others and max(others) > 0:
        summary["hv_ratio_vs_best_single_reranker"] = volumes["full"] / max(others)
    if "ndcg" in objectives:
        ndcg = objectives.index("ndcg")
        anchor = int(np.argmax(full.validation[:, ndcg]))  # accuracy-max policy (validation)
        anchor_test = full.test[anchor]
        eligible = full.test[:, ndcg] >= anchor_share * anchor_test[ndcg]
        summary["anchor_policy"] = run.front_policies()[anchor].to_dict()
        summary["anchor_test"] = dict(zip(objectives, anchor_test.tolist(), strict=True))
        anchors = [("", anchor_test, eligible)]
        if run.baseline_test:
            # The same figures against the plain candidate ranking (evaluation 0): the
            # accuracy-max policy often already spreads exposure, the plain ranking never.
            plain = np.array([run.baseline_test[o] for o in objectives])
            summary["plain_test"] = dict(run.baseline_test)
            anchors.append(("_vs_plain", plain, full.test[:, ndcg] >= anchor_share * plain[ndcg]))
        for suffix, reference, allowed in anchors:
            for objective, key, kind in (
                ("ild", "ild_gain_at_95pct_ndcg", "gain"),
                ("coverage", "coverage_ratio_at_95pct_ndcg", "ratio"),
                ("novelty", "novelty_gain_at_95pct_ndcg", "gain"),
            ):
                if objective in objectives and allowed.any():
                    column = objectives.index(objective)
                    best = float(full.test[allowed, column].max())
                    ratio = best / reference[column]
                    summary[key + suffix] = ratio - 1.0 if kind == "gain" else ratio
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
    picks = ("knee_policy", "equal_preference_policy")
    shown = {k: v for k, v in run.summary.items() if not isinstance(v, dict) and k not in picks}
    console.print(
        "summary: "
        + ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
        )
    )
