"""Reference baselines: random and popularity."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import check_nonnegative_int
from ..data import Dataset
from ._base import CandidateModel, register_model

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser: a counter-based hash giving uniform 64-bit words."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


@register_model("random")
class RandomModel(CandidateModel):
    """Uniform random scores, a pure function of (seed, user, item).

    Because scores are hashed rather than drawn from a stream, a user's scores are the
    same whether scored alone or in any batch.
    """

    requires_history = False

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = check_nonnegative_int(seed, "seed")

    def get_params(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def _fit(self, train: Dataset, matrix: sp.csr_matrix) -> None:
        pass

    def _score(self, users: np.ndarray) -> np.ndarray:
        n_items = self.n_items
        keys = (
            np.uint64(self.seed) * np.uint64(0x100000000)
            + users.astype(np.uint64)[:, None] * np.uint64(n_items)
            + np.arange(n_items, dtype=np.uint64)[None, :]
        )
        words = _splitmix64(keys)
        return ((words >> np.uint64(40)).astype(np.float32)) / np.float32(1 << 24)

    supports_fold_in = True

    def _score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        # A folded-in user is keyed by a digest of its history (not its row in the call),
        # so the same history gets the same scores in any batch.
        n_items = self.n_items
        digests = np.array(
            [
                int.from_bytes(
                    hashlib.blake2b(np.asarray(h, np.int64).tobytes(), digest_size=8).digest(),
                    "little",
                )
                for h in histories
            ],
            dtype=np.uint64,
        )
        with np.errstate(over="ignore"):
            keys = (
                _splitmix64(digests ^ np.uint64(self.seed))[:, None]
                + np.arange(n_items, dtype=np.uint64)[None, :]
            )
        words = _splitmix64(keys)
        return ((words >> np.uint64(40)).astype(np.float32)) / np.float32(1 << 24)


@register_model("popularity")
class PopularityModel(CandidateModel):
    """Scores every item by its number of training interactions (same list for all users)."""

    requires_history = False

    def __init__(self) -> None:
        super().__init__()
        self.popularity: np.ndarray = np.zeros(0, dtype=np.float32)

    def _fit(self, train: Dataset, matrix: sp.csr_matrix) -> None:
        self.popularity = np.asarray(matrix.sum(axis=0), dtype=np.float32).ravel()

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(users), self.n_items)).copy()

    supports_fold_in = True

    def _score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(histories), self.n_items)).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.popularity = state["popularity"]
