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
    #: what the test check fitted (on the test split's training part), kept for serving:
    #: ``{"model": CandidateModel, "ranker": MultiTaskRanker | None, "dataset": Dataset,
    #: "context": ItemContext}``; saved under ``models/`` in the run folder
    fitted: dict[str, Any] = field(default_factory=dict, repr=False)

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
    keep: dict[str, Any] | None = None,
) -> tuple[PolicyEvaluator, dict[str, float] | None]:
    """The evaluator of policies on ``target``, everything fitted on ``train`` alone; with a
    ranker configured, also its task metrics on ``target``. ``keep`` receives the fitted
    ``model``, the ``ranker`` (None without one) and the item ``context``."""
    model = create_model(config.candidates.model, **config.candidates.params).fit(train)
    ranker = None
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
    if keep is not None:  # the fitted parts and the item context policies were judged with
        keep.update(model=model, ranker=ranker, context=context)
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
    fitted: dict[str, Any] = {"dataset": dataset}
    test, test_ranker = _evaluator(
        dataset, split.train, split.test, config, vectors, console, keep=fitted
    )
    save_fitted(fitted, out / "models")
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
        fitted=fitted,
    )
    run.summary = summarize(run)
    return run


def save_fitted(fitted: dict[str, Any], directory: Path) -> None:
    """Save the test check's candidate model (and ranker) so that a bundle can be exported
    from the run folder later (``paretorec export RUN_DIR``)."""
    import scipy.sparse as sp

    from .._artifacts import write_artifact

    fitted["model"].save(directory / "candidates")
    if fitted.get("ranker") is not None:
        fitted["ranker"].save(directory / "ranker")
    context = fitted["context"]
    vectors = context.vectors.toarray() if sp.issparse(context.vectors) else context.vectors
    write_artifact(
        directory / "context",
        {"n_users": int(context.n_users)},
        {
            "vectors": np.asarray(vectors, dtype=np.float32),
            "popularity": np.asarray(context.popularity, dtype=np.float64),
            "groups": np.asarray(context.groups, dtype=np.int64),
        },
    )


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
