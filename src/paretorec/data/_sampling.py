"""Negative sampling: items a user has not interacted with, drawn without Python loops."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import ParetorecError, check_choice, check_positive_int


def sample_negatives(
    positives: sp.csr_matrix,
    users: np.ndarray,
    n_negatives: int = 1,
    *,
    rng: np.random.Generator | int | None = None,
    distribution: str = "uniform",
    max_rounds: int = 50,
) -> np.ndarray:
    """Draw ``n_negatives`` items per entry of ``users`` that the user has not interacted with.

    ``positives`` is the user x item matrix of known interactions. ``distribution`` is
    ``"uniform"`` over the catalogue or ``"popularity"`` (proportional to interaction
    counts, smoothed by +1). Rejected draws are redrawn in vectorised rounds. Returns an
    int64 array of shape ``(len(users), n_negatives)``. A user who has interacted with
    every item raises an error (no negative exists).
    """
    n_negatives = check_positive_int(n_negatives, "n_negatives")
    check_choice(distribution, "distribution", ("uniform", "popularity"))
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    matrix = positives.tocsr()
    matrix.sort_indices()
    n_items = matrix.shape[1]
    users = np.asarray(users, dtype=np.int64)
    full = np.diff(matrix.indptr)[users] >= n_items
    if full.any():
        raise ParetorecError(
            f"users: user code {int(users[full][0])} has interacted with all {n_items} items; "
            "no negative can be sampled"
        )
    if distribution == "uniform":
        probabilities = None
    else:
        counts = np.asarray(matrix.sum(axis=0)).ravel() + 1.0
        probabilities = counts / counts.sum()
    flat_users = np.repeat(users, n_negatives)
    draws = _draw(generator, n_items, len(flat_users), probabilities)
    todo = np.flatnonzero(_is_positive(matrix, flat_users, draws))
    for _ in range(max_rounds):
        if len(todo) == 0:
            break
        draws[todo] = _draw(generator, n_items, len(todo), probabilities)
        todo = todo[_is_positive(matrix, flat_users[todo], draws[todo])]
    if len(todo):  # users with almost every item: pick from their complement exactly
        for row in todo:
            seen = matrix.indices[
                matrix.indptr[flat_users[row]] : matrix.indptr[flat_users[row] + 1]
            ]
            draws[row] = generator.choice(np.setdiff1d(np.arange(n_items), seen))
    return draws.reshape(len(users), n_negatives)


def _draw(
    generator: np.random.Generator, n_items: int, size: int, probabilities: np.ndarray | None
) -> np.ndarray:
    if probabilities is None:
        return generator.integers(0, n_items, size=size, dtype=np.int64)
    return generator.choice(n_items, size=size, p=probabilities).astype(np.int64)


def _is_positive(matrix: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Vectorised membership test of (user, item) pairs in a csr matrix with sorted indices."""
    starts = matrix.indptr[users]
    ends = matrix.indptr[users + 1]
    # offset each row's indices so one global searchsorted answers every query
    n_items = matrix.shape[1]
    keys = matrix.indices.astype(np.int64) + np.repeat(
        np.arange(matrix.shape[0], dtype=np.int64) * n_items, np.diff(matrix.indptr)
    )
    query = users * n_items + items
    position = np.searchsorted(keys, query)
    found = position < len(keys)
    found[found] = keys[position[found]] == query[found]
    return found & (position >= starts) & (position < ends)
