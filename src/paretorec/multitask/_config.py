"""``TrainConfig`` (a TOML file) and ``run_training``: data -> split -> rows -> fit -> test.

A config names the dataset and split, how rows are built (the engage / like / rating funnel,
or the interactions with their own label columns), the tasks, the architecture, the
strategy and the trainer. ``run_training`` writes the fitted model and ``metrics.json`` into
the output folder and returns the same figures as a dict.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from .._settings import StrictModel
from .._validation import DataFileError, ParetorecError, check_file
from ..data import DataConfig, Dataset, stratified_split
from ._features import FeatureSpec, TaskSpec, funnel_rows, funnel_tasks
from ._ranker import MultiTaskRanker

#: Dataset and split: a registered name or any events table, the split and its validation
#: carving (the same section as the Pareto config's).
DataSection = DataConfig


class RowsSection(StrictModel):
    """How rows are built: ``funnel`` (rated + sampled unrated pairs) or ``interactions``."""

    kind: Literal["funnel", "interactions"] = "funnel"
    negatives_per_positive: int = Field(1, ge=0)
    eval_negatives_per_positive: int = Field(1, ge=0)
    rating_column: str = "rating"
    like_threshold: float = 4.0
    seed: int = 0


class TaskSection(StrictModel):
    name: str
    kind: Literal["binary", "regression"] = "binary"
    column: str | None = None
    mask_column: str | None = None
    value_range: tuple[float, float] | None = None

    def spec(self) -> TaskSpec:
        return TaskSpec(self.name, self.kind, self.column, self.mask_column, self.value_range)


def _funnel_sections() -> tuple[TaskSection, ...]:
    return tuple(TaskSection(**t.to_dict()) for t in funnel_tasks())


class FeaturesSection(StrictModel):
    """Mirrors :class:`FeatureSpec`; ``infer = true`` (default) infers the column lists
    from the dataset (``user_history`` applies either way)."""

    infer: bool = True
    user_id: bool = True
    item_id: bool = True
    user_categorical: tuple[str, ...] = ()
    item_categorical: tuple[str, ...] = ()
    item_multi: tuple[str, ...] = ()
    user_dense: tuple[str, ...] = ()
    item_dense: tuple[str, ...] = ()
    row_dense: tuple[str, ...] = ()
    user_history: str | None = None

    def spec(self, dataset: Dataset | None = None) -> FeatureSpec | None:
        """The explicit spec, or the inferred one with this history (``None``: infer at fit)."""
        if self.infer:
            if self.user_history is None:
                return None
            if dataset is None:
                return None
            inferred = FeatureSpec.infer(dataset).to_dict()
            return FeatureSpec.from_dict({**inferred, "user_history": self.user_history})
        return FeatureSpec(**self.model_dump(exclude={"infer"}))


class ModelSection(StrictModel):
    architecture: Literal["shared_bottom", "mmoe", "ple", "esmm"] = "mmoe"
    params: dict[str, Any] = Field(default_factory=dict)
    embedding_dim: int = Field(16, gt=0)
    tower_units: tuple[int, ...] = (32,)
    dropout: float = Field(0.1, ge=0, lt=1)
    embedding_dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False
    id_bias: bool = True
    fm: bool = False
    features: FeaturesSection = FeaturesSection()
    item_vectors: str | None = None


class StrategySection(StrictModel):
    name: str = "fixed"
    params: dict[str, Any] = Field(default_factory=dict)


class TrainerSection(StrictModel):
    epochs: int = Field(30, gt=0)
    batch_size: int = Field(1024, gt=0)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adam", "adamw"] = "adamw"
    patience: int | None = Field(3, ge=0)
    monitor_task: str | None = None
    monitor_metric: Literal["auc", "logloss", "rmse", "loss"] | None = None
    seed: int = Field(0, ge=0)
    device: str = "auto"
    progress: bool = True
    num_threads: int | None = Field(None, gt=0)


class RankerSettings(StrictModel):
    """What a ranker is: its rows, tasks, architecture, strategy and trainer.

    Shared by :class:`TrainConfig` (``paretorec train``) and :class:`RankerSection` (the
    ranker a Pareto run fuses); every field has a default.
    """

    rows: RowsSection = RowsSection()
    tasks: tuple[TaskSection, ...] = Field(default_factory=_funnel_sections)
    model: ModelSection = ModelSection()
    strategy: StrategySection = StrategySection()
    trainer: TrainerSection = TrainerSection()

    @model_validator(mode="after")
    def _check_ranker(self) -> RankerSettings:
        self.ranker()  # architecture params, strategy params, monitor: checked now
        return self

    def task_specs(self) -> tuple[TaskSpec, ...]:
        return tuple(t.spec() for t in self.tasks)

    def ranker(self, dataset: Dataset | None = None) -> MultiTaskRanker:
        """The (unfitted) ranker this config describes (``dataset`` resolves inferred features)."""
        model, trainer = self.model, self.trainer
        return MultiTaskRanker(
            model.architecture,
            self.task_specs(),
            strategy=self.strategy.name,
            strategy_params=self.strategy.params,
            features=model.features.spec(dataset),
            architecture_params=model.params,
            embedding_dim=model.embedding_dim,
            tower_units=model.tower_units,
            dropout=model.dropout,
            embedding_dropout=model.embedding_dropout,
            batch_norm=model.batch_norm,
            id_bias=model.id_bias,
            fm=model.fm,
            **trainer.model_dump(),
        )


class TrainConfig(RankerSettings):
    """Everything ``paretorec train CONFIG`` needs; every field has a default."""

    name: str = "train"
    output_dir: str = "runs/train"
    #: After validation picked the best epoch, train again on train + validation rows for
    #: that many epochs; the test figures (and the saved model) are the refitted model's.
    refit: bool = False
    data: DataSection = DataSection()


class RankerSection(RankerSettings):
    """The multi-task ranker of a Pareto run (``[ranker]`` in a ``paretorec pareto`` config).

    It is trained on each training part the run uses (the validation search's and the test
    check's), never on the part it is judged on: per user, ``validation_ratio`` of that part
    trains it and the rest picks the epoch (early stopping), then, with ``refit``, it is
    trained again on the whole part for that many epochs. Its predictions for the
    ``sources`` tasks (default: every binary task) become score sources that policies fuse
    next to the candidate score.
    """

    sources: tuple[str, ...] | None = None
    refit: bool = True
    validation_ratio: float = Field(0.8, gt=0, lt=1)
    validation_seed: int = 1

    @model_validator(mode="after")
    def _check(self) -> RankerSection:
        if self.rows.kind != "funnel":
            raise ValueError(
                f"rows.kind must be 'funnel' for a Pareto ranker (its rows are built from "
                f"the training interactions), got {self.rows.kind!r}"
            )
        binary = [t.name for t in self.tasks if t.kind == "binary"]
        if not binary:
            raise ValueError("tasks must include a binary task to fuse, got none")
        for name in self.sources or ():
            if name not in binary:
                raise ValueError(
                    f"sources must name binary tasks (probabilities fuse with the candidate "
                    f"score), got {name!r}; binary tasks: {binary}"
                )
        return self

    def source_names(self) -> tuple[str, ...]:
        """The task predictions fused: ``sources``, or every binary task."""
        if self.sources is not None:
            return self.sources
        return tuple(t.name for t in self.tasks if t.kind == "binary")


# --------------------------------------------------------------------------- run
def build_rows(
    config: TrainConfig, dataset: Dataset
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test rows of ``config`` over ``dataset``."""
    data, rows = config.data, config.rows
    _, split = data.splits(dataset)
    if split.valid is None:  # every split of DataConfig carves a validation part
        raise RuntimeError("DataConfig.splits returned no validation part")
    parts = {"train": split.train, "valid": split.valid, "test": split.test}
    if rows.kind == "interactions":
        train, valid, test = (part.interactions.reset_index(drop=True) for part in parts.values())
        return train, valid, test
    # Evaluation negatives are pairs rated nowhere; training ones only avoid train.
    return (
        _funnel(rows, split.train, training=True, exclude=None, seed=rows.seed),
        _funnel(rows, split.valid, training=False, exclude=dataset, seed=rows.seed + 1),
        _funnel(rows, split.test, training=False, exclude=dataset, seed=rows.seed + 2),
    )


def _funnel(
    rows: RowsSection, part: Dataset, *, training: bool, exclude: Dataset | None, seed: int
) -> pd.DataFrame:
    """``funnel_rows`` of ``part`` as ``rows`` describes (training or evaluation negatives)."""
    return funnel_rows(
        part,
        negatives_per_positive=(
            rows.negatives_per_positive if training else rows.eval_negatives_per_positive
        ),
        rating_column=rows.rating_column,
        like_threshold=rows.like_threshold,
        exclude=exclude,
        seed=seed,
    )


def run_training(
    config: TrainConfig, *, dataset: Dataset | None = None, save: bool = True
) -> dict[str, Any]:
    """Load data, split, build rows, fit, evaluate on validation and test, save.

    ``dataset`` overrides ``config.data`` (already loaded data, tests). With
    ``save`` the model goes to ``<output_dir>/model`` and the result to
    ``<output_dir>/metrics.json``. Returns the result: row counts, validation and test
    metrics, the training history summary and timings. With ``config.refit`` the validation
    figures are the first model's (the one validation chose the epoch for) and the test
    figures the refitted model's.
    """
    if not isinstance(config, TrainConfig):
        raise ParetorecError(f"config must be a TrainConfig, got {type(config).__name__}")
    started = time.perf_counter()
    if dataset is None:
        dataset = config.data.load()
    elif not isinstance(dataset, Dataset):
        raise ParetorecError(f"dataset must be a paretorec Dataset, got {type(dataset).__name__}")
    train_rows, valid_rows, test_rows = build_rows(config, dataset)
    item_vectors = None
    if config.model.item_vectors is not None:
        file = check_file(config.model.item_vectors, "model.item_vectors")
        try:
            item_vectors = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataFileError(f"model.item_vectors: cannot read {file}: {exc}") from exc
    ranker = config.ranker(dataset)
    fit_started = time.perf_counter()
    ranker.fit(train_rows, valid_rows, dataset=dataset, item_vectors=item_vectors)
    fit_seconds = time.perf_counter() - fit_started
    history = ranker.history
    valid_metrics = ranker.evaluate(valid_rows)
    refit_epochs = None
    first_test: dict[str, float] | None = None
    if config.refit and history.best_epoch is not None:
        refit_epochs = history.best_epoch
        first_test = ranker.evaluate(test_rows)
        params = {**ranker.get_params(), "epochs": refit_epochs, "patience": None}
        ranker = MultiTaskRanker(**params).fit(
            pd.concat([train_rows, valid_rows], ignore_index=True),
            dataset=dataset,
            item_vectors=item_vectors,
        )
        fit_seconds = time.perf_counter() - fit_started
    result: dict[str, Any] = {
        "name": config.name,
        "dataset": dataset.name,
        "architecture": config.model.architecture,
        "strategy": config.strategy.name,
        "rows": {"train": len(train_rows), "valid": len(valid_rows), "test": len(test_rows)},
        "valid": valid_metrics,
        "test": ranker.evaluate(test_rows),
        "best_epoch": history.best_epoch,
        "refit_epochs": refit_epochs,
        "test_before_refit": first_test,
        "epochs_run": len(history.epochs),
        "monitor": history.monitor,
        "samples_per_second": history.samples_per_second,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - started,
        "config": config.model_dump(mode="json"),
        "history": history.to_dict(),
    }
    result = _finite_or_none(result)
    if save:
        output = Path(config.output_dir)
        ranker.save(output / "model")
        _write_json(output / "metrics.json", result)
        result["output_dir"] = str(output)
    return result


def fit_ranker(
    settings: RankerSection,
    dataset: Dataset,
    train: Dataset,
    *,
    item_vectors: np.ndarray | None = None,
    epochs: int | None = None,
) -> MultiTaskRanker:
    """Fit the ranker ``settings`` describe on the interactions of ``train`` alone.

    ``dataset`` supplies the user and item tables (features) and the id maps; ``train``
    (a part of it, same id maps) is all the ranker learns from: its funnel rows are split per
    user into a fitting part and an early-stopping part (unrated pairs of the latter avoid
    every pair of ``train``), and with ``settings.refit`` the ranker is trained again on the
    whole of ``train`` for the epoch count early stopping chose (:func:`fit_with_refit`).
    ``item_vectors``: frozen item vectors (e.g. language-model vectors of the item text) the
    ranker reads.

    ``epochs`` (with ``settings.refit``): an epoch count already chosen by early stopping on
    another part (the Pareto run's validation fit); the ranker is then trained once on the
    whole of ``train`` for that many epochs, with no early-stopping run of its own.
    """
    if not isinstance(settings, RankerSection):
        raise ParetorecError(f"settings must be a RankerSection, got {type(settings).__name__}")
    rows = settings.rows
    if epochs is not None and settings.refit:
        params = {**settings.ranker(dataset).get_params(), "epochs": epochs, "patience": None}
        every_row = _funnel(rows, train, training=True, exclude=None, seed=rows.seed)
        return MultiTaskRanker(**params).fit(every_row, dataset=dataset, item_vectors=item_vectors)
    inner = stratified_split(train, ratio=settings.validation_ratio, seed=settings.validation_seed)
    fit_rows = _funnel(rows, inner.train, training=True, exclude=None, seed=rows.seed)
    valid_rows = _funnel(rows, inner.test, training=False, exclude=train, seed=rows.seed + 1)

    def whole() -> pd.DataFrame:
        return _funnel(rows, train, training=True, exclude=None, seed=rows.seed)

    _, ranker = fit_with_refit(
        settings.ranker(dataset),
        fit_rows,
        valid_rows,
        dataset=dataset,
        refit_rows=whole if settings.refit else None,
        item_vectors=item_vectors,
    )
    return ranker


def fit_with_refit(
    ranker: MultiTaskRanker,
    fit_rows: pd.DataFrame,
    valid_rows: pd.DataFrame,
    *,
    dataset: Dataset,
    refit_rows: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
    refit_without_early_stop: bool = False,
    item_vectors: np.ndarray | None = None,
) -> tuple[MultiTaskRanker, MultiTaskRanker]:
    """Fit ``ranker`` on ``fit_rows`` (early stopping on ``valid_rows``), then, with
    ``refit_rows`` (rows, or a function building them), train a fresh copy on those rows
    for the epoch count early stopping chose (``paretorec train`` with ``refit = true``).

    ``item_vectors`` reach both fits. Returns ``(early_stopped, final)``; they are the same
    object without a refit. When early
    stopping chose no epoch (no patience), the refit runs every epoch fitted with
    ``refit_without_early_stop`` and is skipped otherwise.
    """
    ranker.fit(fit_rows, valid_rows, dataset=dataset, item_vectors=item_vectors)
    history = ranker.history
    epochs = history.best_epoch
    if epochs is None and refit_without_early_stop:
        epochs = len(history.epochs)
    if refit_rows is None or epochs is None:
        return ranker, ranker
    rows = refit_rows() if callable(refit_rows) else refit_rows
    params = {**ranker.get_params(), "epochs": epochs, "patience": None}
    return ranker, MultiTaskRanker(**params).fit(rows, dataset=dataset, item_vectors=item_vectors)


def evaluate_ranker(
    ranker: MultiTaskRanker,
    settings: RankerSettings,
    dataset: Dataset,
    part: Dataset,
    *,
    seed: int = 2,
) -> dict[str, float]:
    """Task metrics of ``ranker`` on the funnel rows of a held-out ``part`` of ``dataset``.

    Unrated pairs are drawn among the pairs rated nowhere in ``dataset`` (as
    ``paretorec train`` does for its test rows).
    """
    return ranker.evaluate(_funnel(settings.rows, part, training=False, exclude=dataset, seed=seed))


def _finite_or_none(value: Any) -> Any:
    """NaN / inf become None so metrics.json stays standard JSON."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=2, sort_keys=True)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
