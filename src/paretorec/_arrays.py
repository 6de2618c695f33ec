"""Array helpers shared across layers (no dependency on any paretorec sub-package)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._validation import ParetorecError, check_fraction


def unit_rows(vectors: Any, name: str = "item_vectors") -> tuple[Any, np.ndarray]:
    """Rows scaled to unit L2 norm as float64 (dense or csr), and a 0/1 mask of non-zero rows.

    All-zero rows stay zero, so their cosine with anything is 0 (the documented policy of
    every diversity metric and re-ranker).
    """
    if sp.issparse(vectors):
        matrix = sp.csr_matrix(vectors, dtype=np.float64)
        if not np.isfinite(matrix.data).all():
            raise ParetorecError(f"{name} must hold only finite values")
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return sp.csr_matrix(sp.diags(inverse) @ matrix), (norms > 0).astype(np.float64)
    dense = np.asarray(vectors)
    if dense.ndim != 2:
        raise ParetorecError(f"{name} must be a 2-D array (n_items, d), got shape {dense.shape}")
    numeric = np.issubdtype(dense.dtype, np.number) or dense.dtype == np.bool_
    if not numeric or np.iscomplexobj(dense):
        raise ParetorecError(f"{name} must hold real numbers, got dtype {dense.dtype}")
    dense = dense.astype(np.float64, copy=False)
    if not np.isfinite(dense).all():
        raise ParetorecError(f"{name} must hold only finite values")
    norms = np.linalg.norm(dense, axis=1)
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return dense * inverse[:, None], (norms > 0).astype(np.float64)


def long_tail_mask(item_popularity: Any, head_fraction: float = 0.2) -> np.ndarray:
    """Bool mask of long-tail items: all but the ceil(head_fraction * n_items) most popular.

    Popularity ties are broken by item code (the lower code joins the head first).
    ``head_fraction`` lies in [0, 1]; the product is rounded to 9 decimals before the
    ceiling so that e.g. 0.7 * 10 gives a head of 7, not 8.
    """
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1 or pop.size == 0:
        raise ParetorecError(
            f"item_popularity must be a non-empty 1-D array, got shape {pop.shape}"
        )
    if not np.isfinite(pop).all():
        raise ParetorecError("item_popularity must hold only finite values")
    if (pop < 0).any():
        index = int(np.flatnonzero(pop < 0)[0])
        raise ParetorecError(
            f"item_popularity must be non-negative, got {pop[index]} at index {index}"
        )
    head_fraction = check_fraction(head_fraction, "head_fraction", low_open=False, high_open=False)
    n_items = pop.size
    n_head = math.ceil(round(head_fraction * n_items, 9))
    most_popular_first = np.lexsort((np.arange(n_items), -pop))
    mask = np.ones(n_items, dtype=np.bool_)
    mask[most_popular_first[:n_head]] = False
    return mask
