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
from ._distributed import worker_attrs
from ._features import (
    ItemFeatureChoice,
    check_user_groups,
    choose_item_features,
    has_item_embeddings,
    item_groups,
    item_vectors,
)
from ._front import Normalization, ParetoFront
from ._objectives import PolicyEvaluator, ndcg_share_standard_errors, objective_direction
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
    choice: ItemFeatureChoice,
    vectors: Any,
    console: Console,
    keep: dict[str, Any] | None = None,
    ranker_epochs: int | None = None,
) -> tuple[PolicyEvaluator, dict[str, float] | None, int | None]:
    """The evaluator of policies on ``target``, everything fitted on ``train`` alone; with a
    ranker configured, also its task metrics on ``target`` and the epoch count it trained
    (``ranker_epochs`` reuses one chosen before instead of early-stopping again). ``keep``
    receives the fitted ``model``, the ``ranker`` (None without one) and the item
    ``context``."""
    model = create_model(config.candidates.model, **config.candidates.params).fit(train)
    if choice.vectors == "model":  # the candidate model's own embeddings, fitted on train
        vectors = item_vectors(dataset, choice, model)
    ranker = None
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


def _storage_in(out: Path, storage: str | None) -> str | Path | None:
    """The search storage: a URL as given, a relative path inside the run folder."""
    if not storage:
        return None
    if "://" in storage or Path(storage).is_absolute():
        return storage
    return out / storage


def validation_evaluator(
    config: ParetoConfig, *, dataset: Dataset | None = None, console: Console | None = None
) -> PolicyEvaluator:
    """The validation evaluator :func:`run_pareto` searches on, rebuilt from ``config``
    alone (the same data, split, carve, features, candidate model and ranker): what a worker
    joining a stored search (``paretorec pareto-worker``) evaluates policies with."""
    console = console or Console()
    if dataset is None:
        dataset = config.data.load()
    choice = check_pareto_config(config, dataset)
    if choice.vectors == "none" and "ild" in config.objectives.names:
        config = _without_ild(config, console)
    _, inner = config.data.splits(dataset)
    if inner.valid is None:  # every split of DataConfig carves a validation part
        raise RuntimeError("DataConfig.splits returned no validation part")
    vectors = item_vectors(dataset, choice) if choice.vectors != "model" else None
    evaluator, _, _ = _evaluator(
        dataset, inner.train, inner.valid, config, choice, vectors, console
    )
    return evaluator


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
    fitted: dict[str, Any] = {"dataset": dataset}
    # The test check's ranker trains once, for the epoch count validation chose.
    test, test_ranker, _ = _evaluator(
        dataset,
        split.train,
        split.test,
        config,
        choice,
        vectors,
        console,
        keep=fitted,
        ranker_epochs=ranker_epochs,
    )
    save_fitted(fitted, out / "models")
    sources = config.ranker.source_names() if config.ranker is not None else ()

    spaces = {"full": config.search.space, **config.search.compare}
    constraints = [Constraint(**c.model_dump()) for c in config.search.constraints]
    storage = _storage_in(out, config.search.storage)
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
            workers=config.search.workers,
            study_attrs=worker_attrs(config, name),
        )
        searches[name] = result
        front = result.front
        holdout[name] = holdout_check(result.front_policies(), front.values, test)
        if name == "full" and "ndcg" in validation.objectives:
            # how sure validation is of each front policy's nDCG share (guarded picks)
            holdout[name] = replace(
                holdout[name],
                validation_ndcg_share_se=ndcg_share_standard_errors(
                    validation, result.front_policies()
                ),
            )
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
        fitted=fitted,
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
#: The accuracy floor of the headline picks: a share of the plain ranking's nDCG.
ANCHOR_SHARE = 0.95
#: Hypervolume reference offset beyond the nadir, as a share of each objective's range.
HV_REFERENCE_OFFSET = 0.1
#: Guarded validation picks (``*_valsel_guarded``): a policy is eligible when the lower
#: one-sided 95 % confidence bound of its validation nDCG share (share - z x its standard
#: error over users) clears the floor, not the share alone.
GUARD_Z = 1.645


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


def guarded_pick(
    check: HoldoutCheck,
    objectives: list[str],
    directions: list[str],
    objective: str,
    reference_ndcg: float,
    anchor_share: float,
    z: float = GUARD_Z,
) -> int | None:
    """Front row with the best *validation* ``objective`` among those whose validation nDCG
    share of the reference, less ``z`` standard errors, is at least ``anchor_share``
    (``None`` when no row is, or the standard errors were not measured).

    A pick at the bare floor is the front point that validation flatters most, so on test
    it tends to land below the floor (the winner's curse); requiring the lower confidence
    bound to clear it keeps the choice on validation and makes the floor hold on new data.
    """
    se = check.validation_ndcg_share_se
    if se is None or not reference_ndcg > 0:
        return None
    share = check.validation[:, objectives.index("ndcg")] / reference_ndcg
    eligible = np.flatnonzero(np.isfinite(se) & (share - z * se >= anchor_share))
    if not len(eligible):
        return None
    values = check.validation[eligible, objectives.index(objective)]
    sign = 1.0 if directions[objectives.index(objective)] == "maximize" else -1.0
    return int(eligible[int(np.argmax(sign * values))])


def _ndcg_share_drift(
    check: HoldoutCheck,
    policies: list[Policy],
    objectives: list[str],
    plain_valid: float,
    plain_test: float,
    anchor_share: float = ANCHOR_SHARE,
    runners_up: int = 10,
) -> dict[str, Any]:
    """How far the nDCG share of the plain ranking moves from validation to test, over the
    front policies whose validation share is at least ``anchor_share`` (those a ``*_valsel``
    figure may pick): the median of ``test share - validation share`` over all of them
    (``ndcg_share_drift_median``), per re-ranker, and, for each headline objective, over
    the ``runners_up`` of them with the best validation value of that objective (the pick
    and the policies next to it: ``{objective}_valsel_top10_drift``). A negative drift means
    validation overstates what those policies keep on test, so a pick at the validation
    floor tends to land below it on test. A diagnostic read off the front; it chooses
    nothing."""
    if not plain_valid > 0 or not plain_test > 0:
        return {}
    ndcg = objectives.index("ndcg")
    valid_share = check.validation[:, ndcg] / plain_valid
    test_share = check.test[:, ndcg] / plain_test
    eligible = np.flatnonzero(valid_share >= anchor_share)
    if not len(eligible):
        return {}
    drift = test_share - valid_share
    rerankers = [str(policies[i].reranker) for i in eligible]
    out: dict[str, Any] = {
        "ndcg_share_drift_median": float(np.median(drift[eligible])),
        "ndcg_share_drift_by_reranker": {
            name: float(np.median(drift[eligible][np.array(rerankers) == name]))
            for name in sorted(set(rerankers))
        },
    }
    for objective, _, _ in HEADLINES:
        if objective in objectives:
            values = check.validation[eligible, objectives.index(objective)]
            best = eligible[np.argsort(-values, kind="stable")[:runners_up]]
            out[f"{objective}_valsel_top10_drift"] = float(np.median(drift[best]))
    return out


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
    if vectors is None:  # no item features: diversity was dropped
        vectors = np.zeros((context.n_items, 0), dtype=np.float32)
    write_artifact(
        directory / "context",
        {"n_users": int(context.n_users)},
        {
            "vectors": np.asarray(vectors, dtype=np.float32),
            "popularity": np.asarray(context.popularity, dtype=np.float64),
            "groups": np.asarray(context.groups, dtype=np.int64),
        },
    )


def summarize(run: ParetoRun, anchor_share: float = ANCHOR_SHARE) -> dict[str, Any]:
    """Headline figures of a run: policies chosen on validation, figures measured on test.

    For ILD, coverage and novelty, one policy each is chosen on validation: the best
    validation value of that objective among the front policies whose validation nDCG is at
    least ``anchor_share`` x the plain candidate ranking's (evaluation 0 of the search).
    ``*_valsel`` is that policy's test value relative to the plain ranking's test value; its
    whole test vector and test nDCG share come with it (``*_valsel_pick``). The same choice
    against the search's top-nDCG policy (the front point with the best validation nDCG) is
    a second reference (``*_valsel_vs_top_ndcg``). ``*_test_oracle`` figures filter and pick
    on test (each objective possibly a different policy): an optimistic bound, not a result.
    ``*_valsel_guarded`` (when the run measured each front policy's standard error) is the
    same choice with a noise guard: eligible are the policies whose validation nDCG share
    less :data:`GUARD_Z` standard errors clears ``anchor_share`` (``*_valsel_guarded_pick``).
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

    def pick_record(i: int, reference_test: np.ndarray) -> dict[str, Any]:
        """A chosen front row: its policy, vectors and test nDCG share of the reference."""
        return {
            "policy": policies[i].describe(),
            "params": policies[i].to_dict(),
            "validation": as_dict(full.validation[i]),
            "test": as_dict(full.test[i]),
            "test_ndcg_share_of_plain": float(full.test[i, ndcg] / reference_test[ndcg]),
        }

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
        summary.update(
            _ndcg_share_drift(full, policies, objectives, plain_valid["ndcg"], plain_test[ndcg])
        )
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
                summary[f"{objective}_valsel_pick"] = pick_record(picked, reference_test)
                guarded = guarded_pick(
                    full, objectives, run.directions, objective, reference_valid[ndcg], anchor_share
                )
                if guarded is None:
                    continue
                kept = full.test[guarded]
                se = full.validation_ndcg_share_se
                assert se is not None  # a guarded pick exists only where it was measured
                valid_share = float(full.validation[guarded, ndcg] / reference_valid[ndcg])
                summary[f"{key}_valsel_guarded"] = _relative(
                    float(kept[column]), float(reference_test[column]), kind
                )
                summary[f"{objective}_valsel_guarded_ndcg_share"] = float(
                    kept[ndcg] / reference_test[ndcg]
                )
                summary[f"{objective}_valsel_guarded_pick"] = {
                    **pick_record(guarded, reference_test),
                    "validation_ndcg_share": valid_share,
                    "validation_ndcg_share_se": float(se[guarded]),
                    "validation_ndcg_share_lower_bound": valid_share - GUARD_Z * float(se[guarded]),
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
        guarded = run.summary.get(f"{objective}_valsel_guarded_pick")
        if guarded is not None:
            console.print(
                f"  guarded (validation share - {GUARD_Z} se >= 95%: "
                f"{guarded['validation_ndcg_share']:.1%} - {GUARD_Z} x "
                f"{guarded['validation_ndcg_share_se']:.1%}): {guarded['policy']} -> "
                f"{key}_valsel_guarded={run.summary[key + '_valsel_guarded']:.4f} (test nDCG "
                f"{guarded['test_ndcg_share_of_plain']:.1%} of the plain ranking's)"
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
