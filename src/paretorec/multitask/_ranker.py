"""``MultiTaskRanker``: the user-facing multi-task ranker (fit, predict, evaluate, save, load)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._artifacts import read_artifact, write_artifact
from .._validation import ParetorecError, check_index_array, check_positive_int, show
from ..data import Dataset
from ._features import (
    EncodedFeatures,
    FeatureSpec,
    TaskSpec,
    check_rows,
    check_tasks,
    encode_features,
    funnel_tasks,
)
from ._models import (
    Batch,
    MultiTaskModel,
    architecture_options,
    build_model,
    check_architecture,
    check_common_options,
)
from ._strategies import STRATEGIES, Strategy, get_strategy
from ._trainer import (
    History,
    Regularizer,
    Trainer,
    encode_rows,
    forward_all,
    label_means,
    model_metrics,
    resolve_device,
    seeded,
)

ARTIFACT_FORMAT = "paretorec.multitask_ranker"
ARTIFACT_VERSION = 1

#: Defaults tuned on MovieLens-100k read as a funnel (see the package docs / report).
DEFAULT_MODEL_OPTIONS: dict[str, Any] = {
    "embedding_dim": 16,
    "tower_units": (32,),
    "dropout": 0.1,
    "embedding_dropout": 0.0,
    "batch_norm": False,
    "id_bias": True,
}


class MultiTaskRanker:
    """Predicts several signals per (user, item) pair with one multi-task network.

    Args:
        architecture: ``"shared_bottom"``, ``"mmoe"``, ``"ple"`` or ``"esmm"``.
        tasks: the tasks (:class:`TaskSpec` or dicts); default :func:`funnel_tasks`
            (engage, like, rating).
        strategy: a name in ``STRATEGIES`` (how task losses become gradients).
        strategy_params: keyword arguments of the strategy (e.g. ``{"weights": [1, 1, 2]}``).
        features: a :class:`FeatureSpec` (or dict); ``None`` infers one from the dataset at
            fit time (:meth:`FeatureSpec.infer`).
        architecture_params: the architecture's own options, e.g. ``{"n_experts": 4,
            "expert_units": [64]}`` for MMoE (an unknown option is an error naming them).
        embedding_dim, tower_units, dropout, embedding_dropout, batch_norm, id_bias, fm: see
            :class:`MultiTaskModel`.
        epochs, batch_size, lr, weight_decay, optimizer, patience, monitor_task,
            monitor_metric, seed, device, progress, num_threads: see :class:`Trainer`; ``seed`` also
            seeds the weight initialisation, so two fits give identical predictions.
    """

    def __init__(
        self,
        architecture: str = "mmoe",
        tasks: Sequence[TaskSpec | Mapping[str, Any]] | None = None,
        *,
        strategy: str = "fixed",
        strategy_params: Mapping[str, Any] | None = None,
        features: FeatureSpec | Mapping[str, Any] | None = None,
        architecture_params: Mapping[str, Any] | None = None,
        embedding_dim: int = 16,
        tower_units: Sequence[int] = (32,),
        dropout: float = 0.1,
        embedding_dropout: float = 0.0,
        batch_norm: bool = False,
        id_bias: bool = True,
        fm: bool = False,
        epochs: int = 30,
        batch_size: int = 1024,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        optimizer: str = "adamw",
        patience: int | None = 3,
        monitor_task: str | None = None,
        monitor_metric: str | None = None,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
        num_threads: int | None = None,
    ) -> None:
        self.architecture = check_architecture(architecture)
        self.tasks = check_tasks(funnel_tasks() if tasks is None else tasks)
        if strategy not in STRATEGIES:
            raise ParetorecError(
                f"strategy must be one of {', '.join(repr(s) for s in STRATEGIES)}; "
                f"got {show(strategy)}"
            )
        self.strategy = strategy
        if strategy_params is not None and not isinstance(strategy_params, Mapping):
            raise ParetorecError(f"strategy_params must be a dict, got {show(strategy_params)}")
        # Sorted, JSON-shaped (lists, not tuples): what a save / load round trip gives back.
        self.strategy_params = _jsonable(dict(sorted((strategy_params or {}).items())))
        self._strategy()  # validates the strategy parameters
        if isinstance(features, Mapping):
            features = FeatureSpec.from_dict(features)
        if features is not None and not isinstance(features, FeatureSpec):
            raise ParetorecError(
                f"features must be a FeatureSpec, a dict or None, got {type(features).__name__}"
            )
        self.features = features
        if architecture_params is not None and not isinstance(architecture_params, Mapping):
            raise ParetorecError(
                f"architecture_params must be a dict, got {show(architecture_params)}"
            )
        self.architecture_params = _jsonable(dict(sorted((architecture_params or {}).items())))
        allowed = architecture_options(self.architecture)
        unknown = sorted(set(self.architecture_params) - set(allowed))
        if unknown:
            raise ParetorecError(
                f"architecture_params has unknown option(s) {unknown} for "
                f"{self.architecture!r}; options are {allowed or 'none'}"
            )
        self.model_options = check_common_options(
            {
                "embedding_dim": embedding_dim,
                "tower_units": tower_units,
                "dropout": dropout,
                "embedding_dropout": embedding_dropout,
                "batch_norm": batch_norm,
                "id_bias": id_bias,
                "fm": fm,
            }
        )
        self.trainer = Trainer(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            optimizer=optimizer,
            patience=patience,
            monitor_task=monitor_task,
            monitor_metric=monitor_metric,
            seed=seed,
            device=device,
            progress=progress,
            num_threads=num_threads,
        )
        self.trainer.monitor_for(self.tasks)  # validates monitor_task / monitor_metric now
        self.model_: MultiTaskModel | None = None
        self.features_: EncodedFeatures | None = None
        self.history_: History | None = None

    # ------------------------------------------------------------------ params
    def _strategy(self) -> Strategy:
        """A fresh strategy object; uncertainty weighting learns each task's kind from the
        task specs unless ``strategy_params`` sets ``task_kinds``."""
        params = dict(self.strategy_params)
        if self.strategy == "uncertainty" and "task_kinds" not in params:
            params["task_kinds"] = [
                "classification" if task.kind == "binary" else "regression" for task in self.tasks
            ]
        return get_strategy(self.strategy, len(self.tasks), **params)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that rebuild this ranker."""
        trainer = self.trainer.get_params()
        return {
            "architecture": self.architecture,
            "tasks": [t.to_dict() for t in self.tasks],
            "strategy": self.strategy,
            "strategy_params": _jsonable(self.strategy_params),
            "features": None if self.features is None else self.features.to_dict(),
            "architecture_params": _jsonable(self.architecture_params),
            **_jsonable(self.model_options),
            **{k: trainer[k] for k in _TRAINER_ARGS},
        }

    def __repr__(self) -> str:
        tasks = ", ".join(str(t) for t in self.tasks)
        arch = ", ".join(f"{k}={v!r}" for k, v in self.architecture_params.items())
        fitted = ""
        if self.history_ is not None:
            fitted = f", fitted: {len(self.history_.epochs)} epochs"
            if self.history_.best_epoch is not None:
                fitted += f", best {self.history_.monitor}={self.history_.best_value:.4f}"
        return (
            f"MultiTaskRanker(architecture={self.architecture!r}"
            f"{', ' + arch if arch else ''}, tasks=[{tasks}], strategy={self.strategy!r}"
            f"{', strategy_params=' + repr(self.strategy_params) if self.strategy_params else ''}"
            f", embedding_dim={self.model_options['embedding_dim']}, "
            f"tower_units={list(self.model_options['tower_units'])}, epochs={self.trainer.epochs}, "
            f"lr={self.trainer.lr}, seed={self.trainer.seed}{fitted or ', unfitted'})"
        )

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train_rows: pd.DataFrame,
        valid_rows: pd.DataFrame | None = None,
        *,
        dataset: Dataset,
        item_vectors: np.ndarray | None = None,
        regularizer: Regularizer | None = None,
    ) -> MultiTaskRanker:
        """Learn from ``train_rows`` (early stopping on ``valid_rows`` when given).

        ``dataset`` supplies the id maps and the user / item side tables the features read;
        ``item_vectors`` (n_items, d) is an optional frozen item matrix (e.g. language-model
        embeddings) projected into the embedding space.
        """
        if not isinstance(dataset, Dataset):
            raise ParetorecError(
                f"dataset must be a paretorec Dataset, got {type(dataset).__name__}"
            )
        check_rows(train_rows, dataset.n_users, dataset.n_items, "train_rows")
        if valid_rows is not None:
            check_rows(valid_rows, dataset.n_users, dataset.n_items, "valid_rows")
        spec = self.features if self.features is not None else FeatureSpec.infer(dataset)
        encoded = encode_features(spec, dataset, train_rows, item_vectors)
        train = encode_rows(train_rows, encoded, self.tasks, name="train_rows")
        if len(train) == 0:
            raise ParetorecError("train_rows is empty")
        valid = (
            encode_rows(valid_rows, encoded, self.tasks, name="valid_rows")
            if valid_rows is not None
            else None
        )
        device = resolve_device(self.trainer.device)
        with seeded(self.trainer.seed, device):
            model = self._build(encoded)
            model.set_output_bias(label_means(train, self.tasks, model=model))
        strategy = self._strategy()
        self.history_ = self.trainer.fit(
            model, train, valid, strategy=strategy, regularizer=regularizer
        )
        self.model_, self.features_ = model, encoded
        return self

    def _build(self, encoded: EncodedFeatures) -> MultiTaskModel:
        return build_model(
            self.architecture,
            encoded,
            self.tasks,
            architecture_params=self.architecture_params,
            **self.model_options,
        )

    @property
    def is_fitted(self) -> bool:
        return self.model_ is not None

    @property
    def model(self) -> MultiTaskModel:
        return self._fitted()[0]

    @property
    def history(self) -> History:
        if self.history_ is None:
            raise ParetorecError("MultiTaskRanker is not fitted; call fit(...) first")
        return self.history_

    def _fitted(self) -> tuple[MultiTaskModel, EncodedFeatures]:
        if self.model_ is None or self.features_ is None:
            raise ParetorecError("MultiTaskRanker is not fitted; call fit(...) first")
        return self.model_, self.features_

    # ------------------------------------------------------------------ predict
    def predict(self, rows: pd.DataFrame, *, batch_size: int = 16384) -> dict[str, np.ndarray]:
        """Per-task predictions for ``rows`` (codes in ``user`` / ``item``).

        Probabilities for binary tasks (and ESMM's ``ctcvr``), values for regression tasks
        (clipped to the task's ``value_range``); float32 arrays of length ``len(rows)``.
        """
        model, encoded = self._fitted()
        batch = encode_rows(rows, encoded, name="rows")
        return self._predict_batch(model, batch, check_positive_int(batch_size, "batch_size"))

    def predict_pairs(
        self, users: Any, items: Any, *, batch_size: int = 16384
    ) -> dict[str, np.ndarray]:
        """Predictions for (user, item) code pairs; the result has the shape of ``items``.

        ``users`` and ``items`` have the same shape, or ``users`` is 1-D with one entry per
        row of a 2-D ``items`` (e.g. each user's candidate list).
        """
        model, encoded = self._fitted()
        user_array = np.asarray(users)
        item_array = np.asarray(items)
        if user_array.ndim == 1 and item_array.ndim == 2 and len(user_array) == len(item_array):
            user_array = np.repeat(user_array[:, None], item_array.shape[1], axis=1)
        if user_array.shape != item_array.shape:
            raise ParetorecError(
                "users and items must have the same shape (or users one entry per row of a "
                f"2-D items), got {user_array.shape} and {item_array.shape}"
            )
        if encoded.spec.row_dense:
            raise ParetorecError(
                f"predict_pairs cannot supply the row features {list(encoded.spec.row_dense)}; "
                "use predict(rows)"
            )
        shape = item_array.shape
        user_codes = check_index_array(user_array.reshape(-1), "users", encoded.n_users)
        item_codes = check_index_array(item_array.reshape(-1), "items", encoded.n_items)
        batch = Batch(
            user=torch.from_numpy(np.array(user_codes)),  # a writable copy for torch
            item=torch.from_numpy(np.array(item_codes)),
            dense=torch.zeros((len(user_codes), 0)),
        )
        out = self._predict_batch(model, batch, check_positive_int(batch_size, "batch_size"))
        return {k: v.reshape(shape) for k, v in out.items()}

    def _predict_batch(
        self, model: MultiTaskModel, batch: Batch, batch_size: int
    ) -> dict[str, np.ndarray]:
        device = next(model.parameters()).device
        outputs = forward_all(model, batch.to(device), batch_size)
        with torch.no_grad():
            predictions = model.predictions(outputs)
        return {k: v.float().cpu().numpy() for k, v in predictions.items()}

    def evaluate(self, rows: pd.DataFrame) -> dict[str, float]:
        """``<task>_auc`` / ``<task>_logloss`` per binary task, ``<task>_rmse`` per regression.

        Each over the rows where the task's label exists (ESMM's CVR: the clicked rows, as
        pCVR is the conversion probability given a click); see :func:`task_metrics` for the
        undefined-metric policy (NaN). ESMM adds ``<ctcvr>_auc`` / ``_logloss`` over every
        row whose click-and-convert label is known. The same metrics as the validation of
        :meth:`fit` (:func:`model_metrics`).
        """
        model, encoded = self._fitted()
        batch = encode_rows(rows, encoded, self.tasks, name="rows")
        predictions = self._predict_batch(model, batch, 16384)
        if batch.labels is None or batch.mask is None:  # encode_rows with tasks sets both
            raise RuntimeError("encoded rows lack labels")
        return model_metrics(model, predictions, batch.labels, batch.mask)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the ranker (config, feature schema, weights, history) as an artifact."""
        model, encoded = self._fitted()
        config = {
            "format": ARTIFACT_FORMAT,
            "version": ARTIFACT_VERSION,
            "params": self.get_params(),
            "features": encoded.schema(),
            "history": self.history.to_dict(),
        }
        tensors = {f"model.{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        return write_artifact(directory, config, tensors)

    @classmethod
    def load(cls, directory: str | Path) -> MultiTaskRanker:
        """Read a ranker written by :meth:`save` (checksums verified); it predicts on the CPU."""
        config, tensors = read_artifact(directory)
        if config.get("format") != ARTIFACT_FORMAT:
            raise ParetorecError(
                f"directory: {directory} holds a {config.get('format', 'unknown')!r} artifact, "
                f"not a {ARTIFACT_FORMAT!r}"
            )
        ranker = cls(**config["params"])
        encoded = EncodedFeatures.from_schema(config["features"])
        model = ranker._build(encoded)
        state = {
            k[len("model.") :]: torch.from_numpy(np.ascontiguousarray(v))
            for k, v in tensors.items()
            if k.startswith("model.")
        }
        model.load_state_dict(state, strict=True)
        model.eval()
        tables = {
            name: state[buffer].numpy()
            for name, buffer in _table_buffers(encoded).items()
            if buffer in state
        }
        ranker.model_ = model
        ranker.features_ = EncodedFeatures.from_schema(config["features"], tables)
        ranker.history_ = History.from_dict(config.get("history", {}))
        return ranker


_TRAINER_ARGS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "optimizer",
    "patience",
    "monitor_task",
    "monitor_metric",
    "seed",
    "device",
    "progress",
    "num_threads",
)


def _table_buffers(encoded: EncodedFeatures) -> dict[str, str]:
    """Feature table name -> the model buffer that holds it."""
    names = {
        "user_fields": "inputs.user_fields",
        "item_fields": "inputs.item_fields",
        "user_dense": "inputs.user_dense",
        "item_dense": "inputs.item_dense",
        "item_vectors": "inputs.item_vectors",
        "history_indptr": "inputs.history_indptr",
        "history_items": "inputs.history_items",
        "history_keys": "inputs.history_keys",
    }
    for j, column in enumerate(encoded.spec.item_multi):
        names[f"bag.{column}"] = f"inputs.bag_{j}"
    return names


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
