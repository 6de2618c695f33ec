"""New items without a retrain: score them from their text vectors.

A collaborative model has no column for an item added after its fit. Its text (title,
description) does have a language-model vector, as do the catalogue's items, so a new
item can be scored for a user from how close its vector is to the items in the user's
history, and placed in the user's list on the same scale as the model's own scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._arrays import unit_rows
from .._validation import ParetorecError


def score_new_items(
    histories: Sequence[np.ndarray],
    item_vectors: np.ndarray,
    new_item_vectors: np.ndarray,
    *,
    neighbours: int = 20,
) -> np.ndarray:
    """Scores (len(histories), n_new) of new items from text vectors.

    The score of new item ``j`` for a user is the mean cosine similarity between ``j``'s
    vector and the ``neighbours`` most similar items of the user's history (all of them
    when the history is shorter); 0 for an empty history. ``item_vectors`` are the known
    items' vectors (n_items x d, the rows the histories' codes index), ``new_item_vectors``
    the new items' (n_new x d), from the same encoder (``TextEncoder.encode``).
    """
    known = np.asarray(item_vectors, dtype=np.float32)
    new = np.asarray(new_item_vectors, dtype=np.float32)
    if known.ndim != 2 or new.ndim != 2 or known.shape[1] != new.shape[1]:
        raise ParetorecError(
            f"item_vectors and new_item_vectors must be 2-D with the same width, got "
            f"{known.shape} and {new.shape}"
        )
    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1:
        raise ParetorecError(f"neighbours must be a positive int, got {neighbours!r}")
    known = unit_rows(known, "item_vectors")[0]
    new = unit_rows(new, "new_item_vectors")[0]
    out = np.zeros((len(histories), len(new)), dtype=np.float32)
    for row, history in enumerate(histories):
        codes = np.asarray(history, dtype=np.int64)
        if codes.size == 0:
            continue
        if codes.min() < 0 or codes.max() >= len(known):
            raise ParetorecError(f"histories[{row}] holds item codes outside 0..{len(known) - 1}")
        similarity = known[np.unique(codes)] @ new.T  # (h, n_new)
        keep = min(neighbours, len(similarity))
        top = -np.partition(-similarity, keep - 1, axis=0)[:keep]
        out[row] = top.mean(axis=0)
    return out
