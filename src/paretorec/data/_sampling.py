"""Negative sampling: items a user has not interacted with, drawn without Python loops."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import ParetorecError, check_choice, check_positive_int

#: Rejection rounds before the remaining collisions are resolved exactly.
REJECTION_ROUNDS = 10


def seen_keys_of(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted ``user * n_items + item`` keys of a user x item matrix's stored entries."""
    csr = matrix.tocsr()
    users = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return np.sort(users * csr.shape[1] + csr.indices.astype(np.int64))


def sample_negatives(
    positives: sp.csr_matrix,
    users: np.ndarray,
    n_negatives: int = 1,
    *,
    rng: np.random.Generator | int | None = None,
    distribution: str = "uniform",
) -> np.ndarray:
    """Draw ``n_negatives`` items per entry of ``users`` that the user has not interacted with.

    ``positives`` is the user x item matrix of known interactions. ``distribution`` is
    ``"uniform"`` over the user's unseen items, or ``"popularity"`` (proportional to
    interaction counts + 1; draws still colliding after the rejection rounds, which only
    happens for users who have seen most of the catalogue, fall back to uniform unseen).
    Returns an int64 array of shape ``(len(users), n_negatives)``. A user who has
    interacted with every item raises an error (no negative exists).
    """
    n_negatives = check_positive_int(n_negatives, "n_negatives")
    check_choice(distribution, "distribution", ("uniform", "popularity"))
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    matrix = positives.tocsr()
    n_items = matrix.shape[1]
    users = np.asarray(users, dtype=np.int64)
    full = np.diff(matrix.indptr)[users] >= n_items
    if full.any():
        raise ParetorecError(
            f"users: user code {int(users[full][0])} has interacted with all {n_items} items; "
            "no negative can be sampled"
        )
    keys = seen_keys_of(matrix)
    flat_users = np.repeat(users, n_negatives)
    if distribution == "uniform":
        draws = draw_unseen(flat_users, keys, n_items, generator)
    else:
        counts = np.asarray(matrix.sum(axis=0)).ravel() + 1.0
        draws = draw_unseen(
            flat_users, keys, n_items, generator, probabilities=counts / counts.sum()
        )
    return draws.reshape(len(users), n_negatives)


def draw_unseen(
    users: np.ndarray,
    seen_keys: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
    probabilities: np.ndarray | None = None,
) -> np.ndarray:
    """One item per entry of ``users``, uniform over the items that user has not seen.

    The core of :func:`sample_negatives`, for callers that sample every epoch and keep
    ``seen_keys`` (e.g. BPR).

    ``seen_keys`` are the sorted ``user * n_items + item`` keys of the interactions, and
    every user in ``users`` must have an unseen item. Draws uniformly over the catalogue
    and redraws only the collisions; the draws still colliding after a few rounds (users
    who have seen most of the catalogue) are resolved exactly by :func:`_nth_unseen`.
    """
    negatives = _draw(rng, n_items, len(users), probabilities)
    pending = np.arange(len(users))
    for _ in range(REJECTION_ROUNDS):
        keys = users[pending] * n_items + negatives[pending]
        at = np.minimum(np.searchsorted(seen_keys, keys), len(seen_keys) - 1)
        pending = pending[seen_keys[at] == keys]
        if len(pending) == 0:
            return negatives
        negatives[pending] = _draw(rng, n_items, len(pending), probabilities)
    negatives[pending] = _nth_unseen(users[pending], seen_keys, n_items, rng)
    return negatives


def _nth_unseen(
    users: np.ndarray, seen_keys: np.ndarray, n_items: int, rng: np.random.Generator
) -> np.ndarray:
    """Uniform unseen items drawn without rejection: the ``r``-th unseen item, ``r`` random.

    Within a user's sorted seen items ``s_0 < s_1 < ...``, ``s_m - m`` counts the unseen
    items below ``s_m``; the ``r``-th unseen item is ``r`` plus the number of seen items
    whose count is at most ``r``, which one binary search finds for all users at once.
    """
    starts = np.searchsorted(seen_keys, users * n_items)
    n_seen = np.searchsorted(seen_keys, (users + 1) * n_items) - starts
    key_users = seen_keys // n_items
    segment_starts = np.searchsorted(seen_keys, key_users * n_items)
    unseen_below = seen_keys - key_users * n_items - (np.arange(len(seen_keys)) - segment_starts)
    # Keys stay sorted: user-major, and unseen_below is non-decreasing within a user.
    count_keys = key_users * n_items + unseen_below
    ranks = (rng.random(len(users)) * (n_items - n_seen)).astype(np.int64)
    ranks = np.minimum(ranks, n_items - n_seen - 1)
    below = np.searchsorted(count_keys, users * n_items + ranks, side="right") - starts
    return ranks + below


def _draw(
    rng: np.random.Generator, n_items: int, size: int, probabilities: np.ndarray | None
) -> np.ndarray:
    if probabilities is None:
        return rng.integers(0, n_items, size=size, dtype=np.int64)
    return rng.choice(n_items, size=size, p=probabilities).astype(np.int64)
