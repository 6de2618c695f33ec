"""Precomputed candidate lists: what every policy evaluation starts from.

Scoring the whole catalogue is the expensive step, so it happens once: each user's top-C
items by the candidate model, their scores, and optional per-task predictions from a
ranker. Policies (fusion + boosts + re-ranking) then only touch these (n_users, C)
arrays, which makes thousands of policy evaluations cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._arrays import long_tail_mask
from .._validation import ParetorecError, check_positive_int
from ..models import CandidateModel, top_k_indices


@dataclass(frozen=True, eq=False)
class ItemContext:
    """Item-side arrays that fusion boosts and re-rankers read.

    Attributes:
        vectors: item x d matrix (dense or scipy sparse) whose cosine is item similarity
            (multi-hot genres, language-model embeddings).
        popularity: training interaction count per item.
        n_users: number of training users (for self-information).
        groups: int group id per item (e.g. 0 = head, 1 = long tail) for fair exposure.
    """

    vectors: Any
    popularity: np.ndarray
    n_users: int
    groups: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.popularity)

    @classmethod
    def from_training(
        cls, seen: sp.csr_matrix, vectors: Any, head_fraction: float = 0.2
    ) -> ItemContext:
        """Popularity from the training matrix; group 1 = long tail (all but the head)."""
        popularity = np.asarray(seen.sum(axis=0)).ravel()
        tail = long_tail_mask(popularity, head_fraction=head_fraction)
        return cls(
            vectors=vectors,
            popularity=popularity,
            n_users=int(seen.shape[0]),
            groups=tail.astype(np.int64),
        )


@dataclass(frozen=True, eq=False)
class CandidateSet:
    """Each user's top-C candidate items, best first, with their scores.

    Attributes:
        users: user codes, shape (n,).
        items: candidate item codes, shape (n, C), sorted by candidate score (descending).
        scores: candidate-model scores aligned with ``items``, float32 (n, C).
        predictions: optional extra score sources aligned with ``items`` (e.g. ranker task
            probabilities ``{"like": (n, C)}``), fused by a policy's weights.
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    predictions: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_candidates(self) -> int:
        return int(self.items.shape[1])

    def sources(self) -> dict[str, np.ndarray]:
        """Every score source by name: ``"candidate"`` plus the predictions."""
        return {"candidate": self.scores, **dict(self.predictions)}

    def subset(self, rows: np.ndarray) -> CandidateSet:
        return CandidateSet(
            users=self.users[rows],
            items=self.items[rows],
            scores=self.scores[rows],
            predictions={k: v[rows] for k, v in self.predictions.items()},
        )

    @classmethod
    def from_model(
        cls,
        model: CandidateModel,
        users: np.ndarray,
        n_candidates: int = 100,
        *,
        batch_size: int = 1024,
    ) -> CandidateSet:
        """Top-``n_candidates`` unseen items per user from a fitted candidate model."""
        n_candidates = check_positive_int(n_candidates, "n_candidates")
        if n_candidates > model.n_items:
            raise ParetorecError(
                f"n_candidates must be at most the number of items ({model.n_items}), "
                f"got {n_candidates}"
            )
        users = np.asarray(users, dtype=np.int64)
        items = np.empty((len(users), n_candidates), dtype=np.int64)
        scores = np.empty((len(users), n_candidates), dtype=np.float32)
        row = 0
        for batch, batch_scores in model.score_batches(users, batch_size=batch_size):
            top = top_k_indices(batch_scores, n_candidates)
            items[row : row + len(batch)] = top
            scores[row : row + len(batch)] = np.take_along_axis(batch_scores, top, axis=1)
            row += len(batch)
        return cls(users=users, items=items, scores=scores)
