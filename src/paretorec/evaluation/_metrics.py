"""Accuracy and beyond-accuracy metrics for top-k recommendation, vectorised with numpy/scipy.

Conventions shared by the ranking and list metrics:

* ``ranked`` is an int array ``(n_users, width)`` of item codes, best first. ``-1`` marks an
  empty slot (a list shorter than ``width``); empty slots are never hits and never items.
  A list must not repeat an item.
* ``relevant`` is a ``scipy.sparse`` matrix ``(n_users, n_items)``; row ``r`` holds the
  relevant (test) items of the user whose list is ``ranked[r]``. Any stored nonzero counts as
  relevant (binary relevance).
* Per-user ranking metrics return float64 arrays of length ``n_users`` with NaN for users
  without relevant items; :func:`mean_over_users` then applies a documented policy
  (``empty_target_action``).

Each ranking metric has a high-level form taking ``(ranked, relevant, k)`` and a low-level
``*_from_hits`` form taking a precomputed hit matrix (:func:`hits_at_k`) and relevant counts
(:func:`count_relevant`), so several metrics can share one hit computation.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from .._arrays import long_tail_mask as long_tail_mask  # re-exported: a metric helper
from .._arrays import unit_rows
from .._validation import (
    ParetorecError,
    check_choice,
    check_positive_int,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

EMPTY_SLOT = -1
MAP_NORMALIZATIONS = ("relevant", "min_k")
EMPTY_TARGET_ACTIONS = ("skip", "zero", "error")
#: Users per batch in :func:`intra_list_diversity`; bounds the dense (batch, d) buffer.
ILD_BATCH_USERS = 2048


# ---------------------------------------------------------------------------- validation
def _check_ranked(ranked: Any, n_items: int | None = None, name: str = "ranked") -> IntArray:
    """Return ``ranked`` as a 2-D int64 array of item codes (or -1), rows without repeats."""
    arr = np.asarray(ranked)
    if arr.ndim != 2:
        raise ParetorecError(
            f"{name} must be a 2-D int array of shape (n_users, k), got shape {arr.shape}"
        )
    if arr.shape[1] == 0:
        raise ParetorecError(f"{name} must have at least one column, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ParetorecError(f"{name} must hold integer item codes, got dtype {arr.dtype}")
    out = arr.astype(np.int64, copy=False)
    if out.size == 0:
        return out
    low = int(out.min())
    if low < EMPTY_SLOT:
        raise ParetorecError(
            f"{name} holds item code {low}; codes must be >= 0, or -1 for an empty slot"
        )
    if n_items is not None:
        high = int(out.max())
        if high >= n_items:
            raise ParetorecError(
                f"{name} holds item code {high}, but there are only {n_items} items "
                f"(valid codes 0..{n_items - 1})"
            )
    ordered = np.sort(out, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != EMPTY_SLOT)
    if repeated.any():
        row, col = np.argwhere(repeated)[0]
        raise ParetorecError(
            f"{name} row {int(row)} lists item {int(ordered[row, col])} more than once; "
            "each list must hold distinct items"
        )
    return out


def _resolve_k(k: Any, width: int) -> int:
    if k is None:
        return width
    k = check_positive_int(k, "k")
    if k > width:
        raise ParetorecError(f"k must be at most the list width ranked.shape[1]={width}, got {k}")
    return k


def _check_relevant(relevant: Any, n_users: int | None = None) -> sp.csr_matrix:
    """Binary canonical csr copy of ``relevant`` (sorted, unique indices, no stored zeros)."""
    if not sp.issparse(relevant):
        raise ParetorecError(
            "relevant must be a scipy.sparse matrix of shape (n_users, n_items), "
            f"got {type(relevant).__name__}"
        )
    if relevant.ndim != 2:
        raise ParetorecError(f"relevant must be 2-D, got shape {relevant.shape}")
    binary = sp.csr_matrix(relevant, copy=True)
    binary.data = (binary.data != 0).astype(np.int32)
    binary.eliminate_zeros()
    binary.sum_duplicates()
    if n_users is not None and binary.shape[0] != n_users:
        raise ParetorecError(
            f"relevant has {binary.shape[0]} rows but ranked has {n_users}; "
            "row r of relevant must belong to the user of ranked[r]"
        )
    return binary


def _check_hits(hits: Any, n_relevant: Any) -> tuple[BoolArray, IntArray]:
    hit_arr = np.asarray(hits)
    if hit_arr.ndim != 2 or hit_arr.dtype != np.bool_:
        raise ParetorecError(
            "hits must be a 2-D bool array of shape (n_users, k), "
            f"got shape {hit_arr.shape} and dtype {hit_arr.dtype}"
        )
    if hit_arr.shape[1] == 0:
        raise ParetorecError(f"hits must have at least one column, got shape {hit_arr.shape}")
    counts = np.asarray(n_relevant)
    if counts.ndim != 1 or (counts.size and not np.issubdtype(counts.dtype, np.integer)):
        raise ParetorecError(
            f"n_relevant must be a 1-D int array, got shape {counts.shape} and dtype {counts.dtype}"
        )
    if counts.shape[0] != hit_arr.shape[0]:
        raise ParetorecError(
            f"hits and n_relevant must have the same number of users, "
            f"got {hit_arr.shape[0]} and {counts.shape[0]}"
        )
    counts = counts.astype(np.int64, copy=False)
    too_few = hit_arr.sum(axis=1) > counts
    if too_few.any():
        row = int(np.flatnonzero(too_few)[0])
        raise ParetorecError(
            f"n_relevant[{row}]={int(counts[row])} is smaller than that user's "
            f"{int(hit_arr[row].sum())} hits"
        )
    return hit_arr, counts


def _check_vector(values: Any, name: str, *, allow_nan: bool = False) -> FloatArray:
    """1-D, non-empty, real and finite (NaN allowed only when asked) float64 array."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ParetorecError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ParetorecError(f"{name} must be non-empty, got an empty array")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise ParetorecError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64, copy=False)
    bad = np.isinf(out) if allow_nan else ~np.isfinite(out)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        kind = "infinite" if allow_nan else "finite"
        verb = "must not hold" if allow_nan else "must hold only"
        raise ParetorecError(f"{name} {verb} {kind} values, got {out[index]} at index {index}")
    return out


def _check_same_length(a: FloatArray, a_name: str, b: FloatArray, b_name: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ParetorecError(
            f"{a_name} and {b_name} must have the same length, got {a.shape[0]} and {b.shape[0]}"
        )


def _check_binary_labels(labels: Any, name: str = "labels") -> FloatArray:
    out = _check_vector(labels, name)
    not_binary = (out != 0) & (out != 1)
    if not_binary.any():
        index = int(np.flatnonzero(not_binary)[0])
        raise ParetorecError(f"{name} must be binary (0 or 1), got {out[index]} at index {index}")
    return out


def _check_popularity(item_popularity: Any) -> FloatArray:
    pop = _check_vector(item_popularity, "item_popularity")
    if (pop < 0).any():
        index = int(np.flatnonzero(pop < 0)[0])
        raise ParetorecError(
            f"item_popularity must be non-negative, got {pop[index]} at index {index}"
        )
    return pop


def _group_codes(labels: NDArray[Any], name: str) -> tuple[NDArray[Any], IntArray]:
    """Sorted distinct labels and each element's index into them."""
    try:
        unique, codes = np.unique(labels, return_inverse=True)
    except TypeError as exc:
        raise ParetorecError(
            f"{name} must hold labels of one comparable type (all numbers or all strings): {exc}"
        ) from exc
    return unique, codes.reshape(-1).astype(np.int64)


def _per_slot_mean(slot_values: FloatArray, filled: BoolArray) -> FloatArray:
    """Mean of ``slot_values`` over filled slots per row; NaN for rows with no filled slot."""
    counts = filled.sum(axis=1)
    totals = np.where(filled, slot_values, 0.0).sum(axis=1)
    out = np.full(filled.shape[0], np.nan)
    np.divide(totals, counts, out=out, where=counts > 0)
    return out


def _position_discounts(k: int) -> FloatArray:
    """``1 / log2(rank + 1)`` for ranks ``1..k``."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


# ---------------------------------------------------------------------------- hits
def count_relevant(relevant: Any) -> IntArray:
    """Number of relevant items per user: stored nonzeros per row (duplicates counted once)."""
    binary = _check_relevant(relevant)
    return np.diff(binary.indptr).astype(np.int64)


def hits_at_k(ranked: ArrayLike, relevant: Any) -> BoolArray:
    """Bool matrix ``(n_users, width)``: ``hits[r, j]`` is True iff ``ranked[r, j]`` is relevant.

    Empty slots (-1) are never hits. Vectorised as one ``searchsorted`` of the keys
    ``row * n_items + item`` into the (sorted) keys of the canonical csr matrix.
    """
    n_users = np.asarray(ranked).shape[0] if np.ndim(ranked) == 2 else None
    binary = _check_relevant(relevant, n_users)
    ranked_arr = _check_ranked(ranked, n_items=binary.shape[1])
    return _hits(ranked_arr, binary)


def _hits(ranked: IntArray, binary: sp.csr_matrix) -> BoolArray:
    n_users, n_items = binary.shape
    if binary.nnz == 0 or ranked.size == 0:
        return np.zeros(ranked.shape, dtype=np.bool_)
    entry_rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(binary.indptr))
    # Canonical csr => keys are strictly increasing, so searchsorted finds exact matches.
    keys = entry_rows * n_items + binary.indices.astype(np.int64)
    query = np.arange(n_users, dtype=np.int64)[:, None] * n_items + ranked
    position = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    # An empty slot's key would alias the previous row's last item, hence the mask.
    hits: BoolArray = (keys[position] == query) & (ranked != EMPTY_SLOT)
    return hits


def _prepare(ranked: ArrayLike, relevant: Any, k: int | None) -> tuple[BoolArray, IntArray]:
    n_users = np.asarray(ranked).shape[0] if np.ndim(ranked) == 2 else None
    binary = _check_relevant(relevant, n_users)
    ranked_arr = _check_ranked(ranked, n_items=binary.shape[1])
    k_used = _resolve_k(k, ranked_arr.shape[1])
    return _hits(ranked_arr[:, :k_used], binary), np.diff(binary.indptr).astype(np.int64)


def _nan_where_empty(n_relevant: IntArray) -> tuple[FloatArray, BoolArray]:
    return np.full(n_relevant.shape[0], np.nan), n_relevant > 0


# ---------------------------------------------------------------------------- ranking (hits in)
def precision_from_hits(hits: ArrayLike, n_relevant: ArrayLike) -> FloatArray:
    """Precision@k = (hits in top k) / k, with k = ``hits.shape[1]``; NaN if no relevant items.

    Empty slots count as misses: a list shorter than k is not rewarded for its length.
    """
    hit_arr, counts = _check_hits(hits, n_relevant)
    out, has = _nan_where_empty(counts)
    out[has] = hit_arr[has].sum(axis=1) / hit_arr.shape[1]
    return out


def recall_from_hits(hits: ArrayLike, n_relevant: ArrayLike) -> FloatArray:
    """Recall@k = (hits in top k) / n_relevant; NaN if no relevant items."""
    hit_arr, counts = _check_hits(hits, n_relevant)
    out, has = _nan_where_empty(counts)
    out[has] = hit_arr[has].sum(axis=1) / counts[has]
    return out


def ndcg_from_hits(hits: ArrayLike, n_relevant: ArrayLike) -> FloatArray:
    """NDCG@k with binary gains: DCG / IDCG; NaN if no relevant items.

    DCG = sum over hit ranks i of 1 / log2(i + 1); IDCG is the same sum over the first
    min(n_relevant, k) ranks. (The ratio is the same with natural logs.)
    """
    hit_arr, counts = _check_hits(hits, n_relevant)
    out, has = _nan_where_empty(counts)
    discounts = _position_discounts(hit_arr.shape[1])
    ideal = np.cumsum(discounts)
    dcg = hit_arr[has] @ discounts
    out[has] = dcg / ideal[np.minimum(counts[has], hit_arr.shape[1]) - 1]
    return out


def map_from_hits(
    hits: ArrayLike, n_relevant: ArrayLike, normalization: str = "relevant"
) -> FloatArray:
    """Average precision@k: sum over hit ranks i of (hits up to i) / i, divided by a norm.

    ``normalization="relevant"`` divides by n_relevant (Microsoft Recommenders' ``map``);
    ``"min_k"`` divides by min(n_relevant, k) (their ``map_at_k``). NaN if no relevant items.
    """
    normalization = check_choice(normalization, "normalization", MAP_NORMALIZATIONS)
    hit_arr, counts = _check_hits(hits, n_relevant)
    out, has = _nan_where_empty(counts)
    k = hit_arr.shape[1]
    sub = hit_arr[has]
    precision_at_rank = np.cumsum(sub, axis=1) / np.arange(1, k + 1)
    summed = np.where(sub, precision_at_rank, 0.0).sum(axis=1)
    norm = counts[has] if normalization == "relevant" else np.minimum(counts[has], k)
    out[has] = summed / norm
    return out


def mrr_from_hits(hits: ArrayLike, n_relevant: ArrayLike) -> FloatArray:
    """Reciprocal rank 1 / (rank of the first hit), 0 if no hit in top k; NaN if no relevant."""
    hit_arr, counts = _check_hits(hits, n_relevant)
    out, has = _nan_where_empty(counts)
    sub = hit_arr[has]
    first = np.argmax(sub, axis=1)
    out[has] = np.where(sub.any(axis=1), 1.0 / (first + 1), 0.0)
    return out


def hit_rate_from_hits(hits: ArrayLike, n_relevant: ArrayLike) -> FloatArray:
    """1.0 if any of the top k is relevant, else 0.0; NaN if no relevant items."""
    hit_arr, counts = _check_hits(hits, n_relevant)
    out, has = _nan_where_empty(counts)
    out[has] = hit_arr[has].any(axis=1).astype(np.float64)
    return out


# ---------------------------------------------------------------------------- ranking (lists in)
def precision_at_k(ranked: ArrayLike, relevant: Any, k: int | None = None) -> FloatArray:
    """Per-user precision@k = hits in the first k slots / k; NaN for users with no relevant.

    ``k`` defaults to ``ranked.shape[1]``; a smaller k uses the first k columns; a larger k
    is an error. See :func:`precision_from_hits`.
    """
    return precision_from_hits(*_prepare(ranked, relevant, k))


def recall_at_k(ranked: ArrayLike, relevant: Any, k: int | None = None) -> FloatArray:
    """Per-user recall@k = hits in the first k slots / n_relevant; NaN if no relevant items."""
    return recall_from_hits(*_prepare(ranked, relevant, k))


def ndcg_at_k(ranked: ArrayLike, relevant: Any, k: int | None = None) -> FloatArray:
    """Per-user binary NDCG@k (discount 1/log2(rank+1), IDCG over min(n_relevant, k) ranks).

    NaN for users with no relevant items. See :func:`ndcg_from_hits`.
    """
    return ndcg_from_hits(*_prepare(ranked, relevant, k))


def map_at_k(
    ranked: ArrayLike, relevant: Any, k: int | None = None, normalization: str = "relevant"
) -> FloatArray:
    """Per-user average precision@k; NaN for users with no relevant items.

    AP = sum over hit ranks i of (hits up to i) / i, divided by n_relevant
    (``normalization="relevant"``) or min(n_relevant, k) (``"min_k"``).
    See :func:`map_from_hits`.
    """
    normalization = check_choice(normalization, "normalization", MAP_NORMALIZATIONS)
    hits, counts = _prepare(ranked, relevant, k)
    return map_from_hits(hits, counts, normalization)


def mrr_at_k(ranked: ArrayLike, relevant: Any, k: int | None = None) -> FloatArray:
    """Per-user reciprocal rank of the first hit in the top k (0 if none); NaN if no relevant."""
    return mrr_from_hits(*_prepare(ranked, relevant, k))


def hit_rate_at_k(ranked: ArrayLike, relevant: Any, k: int | None = None) -> FloatArray:
    """Per-user 1.0 if any of the top k is relevant else 0.0; NaN if no relevant items."""
    return hit_rate_from_hits(*_prepare(ranked, relevant, k))


def mean_over_users(values: ArrayLike, empty_target_action: str = "skip") -> float:
    """Average per-user metric values; NaN marks a user with no relevant items.

    ``empty_target_action``:

    * ``"skip"``: mean over users with a finite value; if every value is NaN return 0.0
      (no user can be scored, and 0.0 keeps downstream aggregates finite).
    * ``"zero"``: NaN counts as 0 and every user is in the denominator.
    * ``"error"``: raise :class:`ParetorecError` naming how many users have no relevant items.
    """
    action = check_choice(empty_target_action, "empty_target_action", EMPTY_TARGET_ACTIONS)
    arr = _check_vector(values, "values", allow_nan=True)
    missing = np.isnan(arr)
    n_missing = int(missing.sum())
    if action == "error" and n_missing:
        raise ParetorecError(
            f"{n_missing} of {arr.size} users have no relevant items (NaN values) and "
            "empty_target_action='error'; use 'skip' or 'zero' to average anyway"
        )
    if action == "zero":
        return float(np.where(missing, 0.0, arr).mean())
    if n_missing == arr.size:
        return 0.0
    return float(arr[~missing].mean())


# ---------------------------------------------------------------------------- pointwise metrics
def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """ROC AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg), R_pos = sum of positive ranks.

    Average ranks give tied scores half credit (same value as sklearn's ``roc_auc_score``);
    O(n log n). Raises if ``labels`` holds a single class.
    """
    y = _check_binary_labels(labels)
    s = _check_vector(scores, "scores")
    _check_same_length(y, "labels", s, "scores")
    n_pos = float(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        only = 1 if n_pos else 0
        raise ParetorecError(
            f"labels must contain both classes for auc, got only class {only} in {y.size} labels"
        )
    rank_sum = float(rankdata(s) @ y)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def gauc(users: ArrayLike, labels: ArrayLike, scores: ArrayLike) -> float:
    """Group AUC: per-user AUC averaged with weights = that user's number of rows.

    Only users whose rows hold both classes take part (others have no AUC and are skipped);
    raises if no user has both. Ties within a user get half credit. Vectorised: a lexsort by
    (user, score) and within-user average ranks summed per user with ``bincount``.
    """
    y = _check_binary_labels(labels)
    s = _check_vector(scores, "scores")
    _check_same_length(y, "labels", s, "scores")
    user_arr = np.asarray(users)
    if user_arr.ndim != 1:
        raise ParetorecError(f"users must be a 1-D array, got shape {user_arr.shape}")
    if user_arr.shape[0] != y.shape[0]:
        raise ParetorecError(
            f"users and labels must have the same length, got {user_arr.shape[0]} and {y.shape[0]}"
        )
    _, group = _group_codes(user_arr, "users")
    order = np.lexsort((s, group))
    g, sc, lab = group[order], s[order], y[order]
    n = g.size
    position = np.arange(n, dtype=np.float64)
    new_user = np.ones(n, dtype=np.bool_)
    new_user[1:] = g[1:] != g[:-1]
    new_block = new_user.copy()
    new_block[1:] |= sc[1:] != sc[:-1]
    # First position of each element's user and of its tie block; blocks end before the next.
    user_start = position[new_user][np.cumsum(new_user) - 1]
    block_starts = np.flatnonzero(new_block)
    block_ends = np.append(block_starts[1:], n) - 1
    block_id = np.cumsum(new_block) - 1
    average_position = (block_starts[block_id] + block_ends[block_id]) / 2.0
    within_user_rank = average_position - user_start + 1.0
    n_groups = int(g.max()) + 1
    size = np.bincount(g, minlength=n_groups).astype(np.float64)
    n_pos = np.bincount(g, weights=lab, minlength=n_groups)
    n_neg = size - n_pos
    rank_sum = np.bincount(g, weights=within_user_rank * lab, minlength=n_groups)
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        raise ParetorecError(
            f"gauc needs at least one user with both classes in labels; none of the "
            f"{n_groups} users has both"
        )
    per_user = (rank_sum[both] - n_pos[both] * (n_pos[both] + 1) / 2) / (n_pos[both] * n_neg[both])
    return float(per_user @ size[both] / size[both].sum())


def logloss(labels: ArrayLike, probabilities: ArrayLike, eps: float = 1e-7) -> float:
    """Binary log loss -mean(y log p + (1 - y) log(1 - p)) with p clipped to [eps, 1 - eps].

    ``probabilities`` must lie in [0, 1]; ``eps`` in (0, 0.5).
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not 0 < eps < 0.5:
        raise ParetorecError(f"eps must be a number in (0, 0.5), got {eps!r}")
    y = _check_binary_labels(labels)
    p = _check_vector(probabilities, "probabilities")
    _check_same_length(y, "labels", p, "probabilities")
    outside = (p < 0) | (p > 1)
    if outside.any():
        index = int(np.flatnonzero(outside)[0])
        raise ParetorecError(f"probabilities must lie in [0, 1], got {p[index]} at index {index}")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error sqrt(mean((y_true - y_pred)^2))."""
    t = _check_vector(y_true, "y_true")
    p = _check_vector(y_pred, "y_pred")
    _check_same_length(t, "y_true", p, "y_pred")
    return float(np.sqrt(np.mean((t - p) ** 2)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error mean(|y_true - y_pred|)."""
    t = _check_vector(y_true, "y_true")
    p = _check_vector(y_pred, "y_pred")
    _check_same_length(t, "y_true", p, "y_pred")
    return float(np.mean(np.abs(t - p)))


# ---------------------------------------------------------------------------- beyond accuracy
def _normalised_rows(item_vectors: Any) -> tuple[Any, FloatArray]:
    """Rows scaled to unit L2 norm (all-zero rows stay zero) and a 0/1 mask of non-zero rows."""
    return unit_rows(item_vectors, "item_vectors")


def intra_list_diversity(ranked: ArrayLike, item_vectors: Any) -> FloatArray:
    """Per-user mean over unordered pairs of list positions of 1 - cos(v_i, v_j).

    ``item_vectors`` is a dense array or scipy sparse matrix (n_items, d): multi-hot genres
    or embeddings. Policy: an all-zero vector has cosine 0 with everything (distance 1);
    a list with fewer than 2 items gives NaN. Values lie in [0, 2].

    With unit rows u_i, sum_{i<j} u_i.u_j = (|sum_i u_i|^2 - sum_i |u_i|^2) / 2, so the pair
    sum needs one sparse (users x items) @ (items x d) product per batch of
    ``ILD_BATCH_USERS`` users instead of a k x k Gram matrix per user.
    """
    units, unit_sq_norm = _normalised_rows(item_vectors)
    return _intra_list_diversity(_check_ranked(ranked, n_items=units.shape[0]), units, unit_sq_norm)


def _intra_list_diversity(ranked_arr: IntArray, units: Any, unit_sq_norm: FloatArray) -> FloatArray:
    """:func:`intra_list_diversity` of checked lists, with the unit rows of the item vectors
    (and their squared norms) given: a caller scoring many lists against the same vectors
    normalises them once."""
    n_items = units.shape[0]
    n_users = ranked_arr.shape[0]
    filled = ranked_arr != EMPTY_SLOT
    n_listed = filled.sum(axis=1)
    safe_items = np.where(filled, ranked_arr, 0)
    self_sum = np.where(filled, unit_sq_norm[safe_items], 0.0).sum(axis=1)
    cross_sum = np.empty(n_users)
    for start in range(0, n_users, ILD_BATCH_USERS):
        stop = min(start + ILD_BATCH_USERS, n_users)
        block = filled[start:stop]
        rows = np.repeat(np.arange(stop - start), block.sum(axis=1))
        incidence = sp.csr_matrix(
            (np.ones(rows.size), (rows, ranked_arr[start:stop][block])),
            shape=(stop - start, n_items),
        )
        summed = incidence @ units
        if sp.issparse(summed):
            squared = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
        else:
            squared = np.einsum("ud,ud->u", summed, summed)
        cross_sum[start:stop] = squared
    similarity_sum = (cross_sum - self_sum) / 2.0
    pairs = n_listed * (n_listed - 1) / 2.0
    out = np.full(n_users, np.nan)
    has_pair = pairs > 0
    out[has_pair] = (pairs[has_pair] - similarity_sum[has_pair]) / pairs[has_pair]
    # Round-off can step a hair outside [0, 2]; the exact value cannot.
    return np.clip(out, 0.0, 2.0)


def catalogue_coverage(ranked: ArrayLike, n_items: int) -> float:
    """Fraction of the n_items catalogue items that appear in at least one list (0 if none)."""
    n_items = check_positive_int(n_items, "n_items")
    ranked_arr = _check_ranked(ranked, n_items=n_items)
    shown = np.unique(ranked_arr[ranked_arr != EMPTY_SLOT])
    return shown.size / n_items


def novelty(ranked: ArrayLike, item_popularity: ArrayLike, n_users: int) -> FloatArray:
    """Per-user mean self-information -log2(p_i) of listed items, p_i = max(count_i, 1) / n_users.

    ``item_popularity[i]`` is the number of training users who interacted with item i
    (at most ``n_users``); the max(., 1) smoothing gives items unseen in training the
    highest novelty log2(n_users) instead of infinity. Empty lists give NaN.
    """
    n_users = check_positive_int(n_users, "n_users")
    pop = _check_popularity(item_popularity)
    if (pop > n_users).any():
        index = int(np.flatnonzero(pop > n_users)[0])
        raise ParetorecError(
            f"item_popularity[{index}]={pop[index]} is larger than n_users={n_users}; "
            "popularity must count training users"
        )
    ranked_arr = _check_ranked(ranked, n_items=pop.size)
    information = -np.log2(np.maximum(pop, 1.0) / n_users)
    filled = ranked_arr != EMPTY_SLOT
    return _per_slot_mean(information[np.where(filled, ranked_arr, 0)], filled)


def average_popularity(ranked: ArrayLike, item_popularity: ArrayLike) -> FloatArray:
    """Per-user mean popularity count of the listed items; NaN for empty lists."""
    pop = _check_popularity(item_popularity)
    ranked_arr = _check_ranked(ranked, n_items=pop.size)
    filled = ranked_arr != EMPTY_SLOT
    return _per_slot_mean(pop[np.where(filled, ranked_arr, 0)], filled)


def long_tail_share(ranked: ArrayLike, tail_mask: ArrayLike) -> FloatArray:
    """Per-user fraction of listed items that are long-tail (``tail_mask``); NaN if empty."""
    mask = np.asarray(tail_mask)
    if mask.ndim != 1 or mask.dtype != np.bool_:
        raise ParetorecError(
            "tail_mask must be a 1-D bool array (n_items,), "
            f"got shape {mask.shape} and dtype {mask.dtype}"
        )
    ranked_arr = _check_ranked(ranked, n_items=mask.size)
    filled = ranked_arr != EMPTY_SLOT
    in_tail = mask[np.where(filled, ranked_arr, 0)].astype(np.float64)
    return _per_slot_mean(in_tail, filled)


def _exposure(ranked: IntArray, n_items: int, position_weighted: bool) -> FloatArray:
    filled = ranked != EMPTY_SLOT
    if position_weighted:
        weights = np.broadcast_to(_position_discounts(ranked.shape[1]), ranked.shape)
    else:
        weights = np.ones(ranked.shape)
    exposure = np.bincount(ranked[filled], weights=weights[filled], minlength=n_items)
    if exposure.sum() <= 0:
        raise ParetorecError("ranked holds no items (every slot is -1), so exposure is undefined")
    return exposure.astype(np.float64)


def gini_exposure(ranked: ArrayLike, n_items: int, position_weighted: bool = False) -> float:
    """Gini coefficient of item exposure over the whole catalogue (unshown items count 0).

    G = sum_i (2i - n - 1) x_i / (n sum x) over exposures x sorted ascending, i = 1..n:
    0 is perfectly equal exposure, 1 - 1/n is all exposure on one item. Each slot adds 1,
    or 1/log2(rank + 1) with ``position_weighted``. Raises if no list holds any item.
    """
    n_items = check_positive_int(n_items, "n_items")
    ranked_arr = _check_ranked(ranked, n_items=n_items)
    x = np.sort(_exposure(ranked_arr, n_items, position_weighted))
    i = np.arange(1, n_items + 1, dtype=np.float64)
    return float(((2 * i - n_items - 1) @ x) / (n_items * x.sum()))


def exposure_share(
    ranked: ArrayLike,
    item_groups: ArrayLike,
    n_groups: int | None = None,
    position_weighted: bool = False,
) -> FloatArray:
    """Share of total exposure per item group, a float array (n_groups,) summing to 1.

    ``item_groups[i]`` is item i's group id in 0..n_groups-1; ``n_groups`` defaults to
    max id + 1 (pass it so that groups never shown still get a 0 entry). Each slot adds 1,
    or 1/log2(rank + 1) with ``position_weighted``. Raises if no list holds any item.
    """
    groups = np.asarray(item_groups)
    if groups.ndim != 1 or groups.size == 0 or not np.issubdtype(groups.dtype, np.integer):
        raise ParetorecError(
            "item_groups must be a non-empty 1-D int array (n_items,), "
            f"got shape {groups.shape} and dtype {groups.dtype}"
        )
    groups = groups.astype(np.int64, copy=False)
    if groups.min() < 0:
        raise ParetorecError(f"item_groups must hold group ids >= 0, got {int(groups.min())}")
    highest = int(groups.max())
    if n_groups is None:
        n_groups = highest + 1
    else:
        n_groups = check_positive_int(n_groups, "n_groups")
        if highest >= n_groups:
            raise ParetorecError(f"item_groups holds group id {highest}, but n_groups={n_groups}")
    ranked_arr = _check_ranked(ranked, n_items=groups.size)
    exposure = _exposure(ranked_arr, groups.size, position_weighted)
    per_group = np.bincount(groups, weights=exposure, minlength=n_groups)
    share: FloatArray = per_group / per_group.sum()
    return share


@dataclass(frozen=True)
class GroupGap:
    """Per-group means and counts of a per-user metric, and the largest gap between groups.

    ``counts`` counts the finite values behind each mean; a group with none has mean NaN.
    """

    means: dict[Hashable, float]
    counts: dict[Hashable, int]
    gap: float


def group_gap(values: ArrayLike, user_groups: ArrayLike) -> GroupGap:
    """Mean of per-user ``values`` per group and gap = max mean - min mean over groups.

    NaN values are skipped; groups with no finite value get mean NaN and are left out of
    the gap; fewer than 2 such groups gives gap NaN. ``user_groups`` holds one hashable
    label per user (numbers or strings).
    """
    arr = _check_vector(values, "values", allow_nan=True)
    labels = np.asarray(user_groups)
    if labels.ndim != 1:
        raise ParetorecError(f"user_groups must be a 1-D array, got shape {labels.shape}")
    if labels.shape[0] != arr.shape[0]:
        raise ParetorecError(
            "values and user_groups must have the same length, "
            f"got {arr.shape[0]} and {labels.shape[0]}"
        )
    unique, group = _group_codes(labels, "user_groups")
    finite = ~np.isnan(arr)
    counts = np.bincount(group[finite], minlength=unique.size)
    totals = np.bincount(group[finite], weights=arr[finite], minlength=unique.size)
    means = np.full(unique.size, np.nan)
    np.divide(totals, counts, out=means, where=counts > 0)
    scored = means[counts > 0]
    gap = float(scored.max() - scored.min()) if scored.size >= 2 else float("nan")
    keys = unique.tolist()
    return GroupGap(
        means={key: float(m) for key, m in zip(keys, means, strict=True)},
        counts={key: int(c) for key, c in zip(keys, counts, strict=True)},
        gap=gap,
    )
