"""The candidate-model interface: fit on a dataset, score the whole catalogue in batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
import torch

from .._artifacts import read_artifact, write_artifact
from .._threads import thread_limit
from .._validation import ParetorecError, ParetorecWarning, check_index_array, check_positive_int
from ..data import Dataset

DEFAULT_BATCH_SIZE = 1024


class ConvergenceWarning(ParetorecWarning):
    """A model is fitted with settings that cannot converge (too few optimisation steps)."""


def warn_too_few_steps(model: str, steps: int, minimum: int, fix: str) -> None:
    """Warn (:class:`ConvergenceWarning`) when a fit takes fewer than ``minimum`` steps."""
    if steps < minimum:
        import warnings

        warnings.warn(
            f"{model} is fitted with {steps} optimisation step(s), fewer than the {minimum} it "
            f"needs to converge; {fix}",
            ConvergenceWarning,
            stacklevel=4,
        )


class CandidateModel(ABC):
    """A model that scores every catalogue item for a user.

    Subclasses implement :meth:`_fit` and :meth:`_score`; this class does input checks,
    batching, seen-item exclusion, top-k selection and save/load.
    """

    name: ClassVar[str] = "base"
    #: True when scores depend on the user's training history, so a user without any
    #: training interaction cannot be scored meaningfully.
    requires_history: ClassVar[bool] = True

    def __init__(self) -> None:
        self._seen: sp.csr_matrix | None = None

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _fit(self, train: Dataset, matrix: sp.csr_matrix) -> None:
        """Learn from ``train``; ``matrix`` is its binary user x item csr matrix."""

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray:
        """Float32 scores of shape (len(users), n_items); higher is better."""

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable) that rebuild this model."""
        return {}

    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (besides the seen-item matrix)."""
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027 - optional hook
        """Restore learned arrays saved by :meth:`_state`."""

    #: True when :meth:`score_histories` is implemented (fold-in of unseen histories).
    supports_fold_in: ClassVar[bool] = False

    def _score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        """Float32 scores (len(histories), n_items) of users given only their histories."""
        raise ParetorecError(
            f"model {self.name!r} ({type(self).__name__}) cannot fold in histories; "
            f"use one of the models that can: "
            f"{', '.join(n for n in list_models() if _REGISTRY[n].supports_fold_in)}"
        )

    # ------------------------------------------------------------------ public API
    def fit(self: ModelT, train: Dataset) -> ModelT:
        if not isinstance(train, Dataset):
            raise ParetorecError(f"train must be a paretorec Dataset, got {type(train).__name__}")
        if train.n_interactions == 0:
            raise ParetorecError(f"train has no interactions (dataset {train.name!r})")
        matrix = train.to_csr()
        matrix.data[:] = 1.0
        self._seen = matrix
        with thread_limit(self._fit_threads()):
            self._fit(train, matrix)
        return self

    def _fit_threads(self) -> int | None:
        """Threads while fitting; ``None``: paretorec's setting (``paretorec._threads``)."""
        return None

    @property
    def is_fitted(self) -> bool:
        return self._seen is not None

    @property
    def n_users(self) -> int:
        return self._require_fitted().shape[0]

    @property
    def n_items(self) -> int:
        return self._require_fitted().shape[1]

    @property
    def seen(self) -> sp.csr_matrix:
        """Binary user x item matrix of the training interactions."""
        return self._require_fitted()

    def score(self, users: Any, *, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Scores of every item for ``users`` (codes): float32 array (n_users, n_items)."""
        codes = self._check_users(users)
        batch_size = check_positive_int(batch_size, "batch_size")
        if len(codes) == 0:
            return np.zeros((0, self.n_items), dtype=np.float32)
        parts = [
            self._score_checked(codes[s : s + batch_size]) for s in range(0, len(codes), batch_size)
        ]
        return np.concatenate(parts, axis=0)

    def score_batches(
        self, users: Any, *, batch_size: int = DEFAULT_BATCH_SIZE, exclude_seen: bool = True
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(user_codes, scores)`` batches; seen items get ``-inf`` when excluded."""
        codes = self._check_users(users)
        batch_size = check_positive_int(batch_size, "batch_size")
        for start in range(0, len(codes), batch_size):
            batch = codes[start : start + batch_size]
            scores = self._score_checked(batch)
            if exclude_seen:
                mask_seen(scores, self.seen, batch)
            yield batch, scores

    def score_histories(
        self,
        histories: Sequence[Any],
        *,
        exclude_history: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> np.ndarray:
        """Fold-in: scores of every item for users given only their histories.

        ``histories`` is a sequence of 1-D arrays of item codes (oldest first; order
        matters only to the sequential model, repeats count once elsewhere). No refit is
        needed, so a user's list reflects an interaction at once. The users need not be
        known to the model. Returns float32 ``(len(histories), n_items)``; the items of
        each history get ``-inf`` when ``exclude_history``. An empty history gives the
        model's scores for a user without interactions (popularity-like or zeros).
        """
        self._require_fitted()
        arrays = check_histories(histories, self.n_items)
        batch_size = check_positive_int(batch_size, "batch_size")
        if not isinstance(exclude_history, (bool, np.bool_)):
            raise ParetorecError(f"exclude_history must be a bool, got {exclude_history!r}")
        if not arrays:
            return np.zeros((0, self.n_items), dtype=np.float32)
        parts = []
        for start in range(0, len(arrays), batch_size):
            batch = arrays[start : start + batch_size]
            scores = np.array(self._score_histories(batch), dtype=np.float32)
            if scores.shape != (len(batch), self.n_items):
                raise RuntimeError(
                    f"{type(self).__name__}._score_histories returned shape {scores.shape}, "
                    f"expected {(len(batch), self.n_items)}"
                )
            if exclude_history:
                rows = np.repeat(np.arange(len(batch)), [len(h) for h in batch])
                scores[rows, np.concatenate(batch)] = -np.inf
            parts.append(scores)
        return np.concatenate(parts, axis=0)

    def recommend(
        self,
        users: Any,
        k: int,
        *,
        exclude_seen: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> np.ndarray:
        """Top-``k`` item codes per user, best first: int64 array (n_users, k)."""
        k = check_positive_int(k, "k")
        if k > self.n_items:
            raise ParetorecError(f"k must be at most the number of items ({self.n_items}), got {k}")
        codes = self._check_users(users)
        if self.requires_history:
            empty = np.diff(self.seen.indptr)[codes] == 0
            if empty.any():
                raise ParetorecError(
                    f"users: user code {int(codes[empty][0])} has no training interactions "
                    f"({int(empty.sum())} such user(s)); {self.name} needs a history "
                    f"(use 'popularity' for cold users)"
                )
        out = np.empty((len(codes), k), dtype=np.int64)
        row = 0
        for batch, scores in self.score_batches(
            codes, batch_size=batch_size, exclude_seen=exclude_seen
        ):
            out[row : row + len(batch)] = top_k_indices(scores, k)
            row += len(batch)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        seen = self.seen
        config = {
            "model": self.name,
            "params": self.get_params(),
            "shape": [int(seen.shape[0]), int(seen.shape[1])],
        }
        tensors = {f"state.{k}": np.asarray(v) for k, v in self._state().items()}
        tensors["seen.indptr"] = seen.indptr.astype(np.int64)
        tensors["seen.indices"] = seen.indices.astype(np.int64)
        return write_artifact(directory, config, tensors)

    @classmethod
    def load(cls, directory: str | Path) -> CandidateModel:
        config, tensors = read_artifact(directory)
        model_cls = get_model_class(config["model"])
        if cls is not CandidateModel and not issubclass(model_cls, cls):
            raise ParetorecError(
                f"directory holds a {config['model']!r} model, not a {cls.name!r} model"
            )
        model = model_cls(**config["params"])
        n_users, n_items = config["shape"]
        indices = tensors["seen.indices"]
        model._seen = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, tensors["seen.indptr"]),
            shape=(n_users, n_items),
        )
        model._set_state(
            {k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}
        )
        return model

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        fitted = "" if self.is_fitted else ", unfitted"
        return f"{type(self).__name__}({params}{fitted})"

    # ------------------------------------------------------------------ internals
    def _require_fitted(self) -> sp.csr_matrix:
        if self._seen is None:
            raise ParetorecError(f"{type(self).__name__} is not fitted; call fit(train) first")
        return self._seen

    def _check_users(self, users: Any) -> np.ndarray:
        self._require_fitted()
        return check_index_array(users, "users", self.n_users)

    def _score_checked(self, users: np.ndarray) -> np.ndarray:
        scores = np.asarray(self._score(users), dtype=np.float32)
        if scores.shape != (len(users), self.n_items):
            raise RuntimeError(
                f"{type(self).__name__}._score returned shape {scores.shape}, "
                f"expected {(len(users), self.n_items)}"
            )
        return scores


ModelT = TypeVar("ModelT", bound=CandidateModel)

_REGISTRY: dict[str, type[CandidateModel]] = {}


def register_model(name: str) -> Callable[[type[ModelT]], type[ModelT]]:
    """Class decorator adding a candidate model to the registry under ``name``."""

    def decorate(cls: type[ModelT]) -> type[ModelT]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a candidate model named {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[CandidateModel]:
    if name not in _REGISTRY:
        raise ParetorecError(f"model must be one of {', '.join(list_models())}; got {name!r}")
    return _REGISTRY[name]


def create_model(name: str, **params: Any) -> CandidateModel:
    """Instantiate a registered candidate model by name; unknown parameters are named
    together with the valid ones."""
    import inspect

    cls = get_model_class(name)
    signature = inspect.signature(cls.__init__)
    accepted = [p for p in signature.parameters if p != "self"]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = sorted(set(params) - set(accepted))
    if unknown and not takes_any:
        raise ParetorecError(
            f"{name} has no parameter(s) {', '.join(repr(u) for u in unknown)}; valid "
            f"parameters: {', '.join(accepted) or 'none'}"
        )
    return cls(**params)


def check_histories(histories: Any, n_items: int) -> list[np.ndarray]:
    """Return ``histories`` as a list of 1-D int64 arrays of item codes in ``[0, n_items)``."""
    if isinstance(histories, (str, bytes, np.ndarray)) and np.ndim(histories) < 2:
        raise ParetorecError(
            f"histories must be a sequence of item-code arrays (one per user), got "
            f"{type(histories).__name__}"
        )
    try:
        items = list(histories)
    except TypeError:
        raise ParetorecError(
            f"histories must be a sequence of item-code arrays (one per user), got "
            f"{type(histories).__name__}"
        ) from None
    return [check_index_array(h, f"histories[{i}]", n_items) for i, h in enumerate(items)]


def histories_matrix(histories: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    """Binary (len(histories), n_items) csr matrix of the histories (repeats count once)."""
    lengths = [len(h) for h in histories]
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if histories else np.zeros(0, dtype=np.int64)
    matrix = sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)),
        shape=(len(histories), n_items),
        dtype=np.float32,
    )
    matrix.data[:] = 1.0
    return matrix


def mask_seen(scores: np.ndarray, seen: sp.csr_matrix, users: np.ndarray) -> None:
    """Set ``scores[r, i] = -inf`` for every item ``i`` that ``users[r]`` saw in training."""
    rows = seen[users]
    counts = np.diff(rows.indptr)
    scores[np.repeat(np.arange(len(users)), counts), rows.indices] = -np.inf


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores per row, best first.

    Ties are broken by the lower column index, both inside the list and at its cut-off,
    so the result is a pure function of the scores (a user gets the same list alone or in
    any batch). ``torch.topk`` finds the k-th value (its values are exact even where its
    indices are not); the index tie-break is then applied only to rows with ties at the
    cut-off.
    """
    n_rows, n_items = scores.shape
    if k >= n_items:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    table = torch.from_numpy(np.ascontiguousarray(scores))
    kth = torch.topk(table, k, dim=1, sorted=False).values.amin(dim=1, keepdim=True)
    greater = table > kth
    tied = table == kth
    n_greater = greater.sum(dim=1, keepdim=True)
    chosen = greater | tied
    crowded = (n_greater + tied.sum(dim=1, keepdim=True) > k).squeeze(1)
    if bool(crowded.any()):
        rows = torch.nonzero(crowded).squeeze(1)
        row_ties = tied[rows]
        keep = torch.cumsum(row_ties, dim=1) <= (k - n_greater[rows])
        chosen[rows] = greater[rows] | (row_ties & keep)
    columns = torch.nonzero(chosen)[:, 1].reshape(n_rows, k)  # ascending index per row
    order = torch.argsort(-torch.gather(table, 1, columns), dim=1, stable=True)
    return torch.gather(columns, 1, order).numpy()
