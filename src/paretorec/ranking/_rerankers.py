"""Re-rankers (MMR, DPP, fair exposure) and :func:`apply_policy`, vectorised over users.

Every re-ranker takes ``(n_users, C)`` arrays aligned with the candidate lists and returns
``(n_users, k)`` int64 *positions* into them. The only Python loop runs over the ``k``
output positions; each step works on all users of a block at once.

Item similarity is cosine between L2-normalised item vectors; a zero vector has similarity
0 with every item. The greedy steps only ever need "similarity of the item just chosen to
every candidate", one ``(n_users, C)`` row per step. :class:`ItemSimilarity` serves those
rows from the catalogue Gram matrix when it fits in memory (one gather per step, and the
matrix is built once per :class:`ItemContext` by :func:`apply_policy`); otherwise it
gathers each block's ``(m, C, d)`` candidate vectors once and forms the ``(m, C, C)``
similarities with one batched matmul.

Ties in every re-ranker go to the lower candidate position.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .._arrays import unit_rows
from .._validation import ParetorecError, check_fraction, check_positive_int, show
from ..models import top_k_indices
from ._candidates import CandidateSet, ItemContext
from ._fusion import check_candidates, fuse_checked, minmax_rows
from ._policy import Policy

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
RowFunction = Callable[[IntArray], FloatArray]

#: Largest catalogue Gram matrix (float64 bytes) that :class:`ItemSimilarity` will build;
#: 256 MiB holds about 5,800 items. Larger catalogues use per-block similarities.
GRAM_MAX_BYTES = 256 * 2**20
#: Rough bound on the working memory of one block of users in the re-rankers.
BLOCK_BYTES = 64 * 2**20
#: Largest per-candidate-set similarity cube (float64 bytes, users x C x C) that
#: :func:`apply_policy` keeps for candidates it re-ranks again (a policy search): 128 MiB
#: holds MovieLens-100k's 943 users x 100 candidates.
CUBE_MAX_BYTES = 128 * 2**20
#: Added to the diagonal of the DPP similarity so the kernel is positive definite even
#: with duplicate or zero item vectors.
DPP_JITTER = 1e-6
#: A user's DPP greedy stops when the best marginal gain d_j^2 falls below this; the rest
#: of the list is filled by relevance.
DPP_MIN_GAIN = 1e-10


# ---------------------------------------------------------------------------- similarity
def _unit_rows(vectors: Any) -> tuple[Any, int, int]:
    """Rows scaled to unit L2 norm (zero rows stay zero) as float64 dense or csr."""
    units, _ = unit_rows(vectors, "item vectors")
    return units, int(units.shape[0]), int(units.shape[1])


class ItemSimilarity:
    """Cosine similarity between catalogue items, ready for the greedy re-rankers.

    Args:
        vectors: item x d matrix, dense or scipy sparse (multi-hot genres, embeddings).
            Rows are L2-normalised; an all-zero row has similarity 0 with everything.
        precompute_gram: build the catalogue Gram matrix (float64) when it takes at most
            ``max_gram_bytes``. Worth it when the same items are re-ranked many times.
        max_gram_bytes: memory bound for the Gram matrix.
    """

    def __init__(
        self, vectors: Any, *, precompute_gram: bool = True, max_gram_bytes: int = GRAM_MAX_BYTES
    ) -> None:
        self.units, self.n_items, self.dim = _unit_rows(vectors)
        if sp.issparse(self.units) and self.n_items * self.dim * 8 <= BLOCK_BYTES:
            # Dense BLAS beats a sparse product that fills in (genres: 19 columns).
            self.units = self.units.toarray()
        self.gram: FloatArray | None = None
        if precompute_gram and self.n_items * self.n_items * 8 <= max_gram_bytes:
            product = self.units @ self.units.T
            self.gram = np.ascontiguousarray(
                product.toarray() if sp.issparse(product) else product, dtype=np.float64
            )

    def __repr__(self) -> str:
        mode = "gram" if self.gram is not None else "blocks"
        return f"ItemSimilarity(n_items={self.n_items}, dim={self.dim}, mode={mode!r})"

    def _block_vectors(self, codes: IntArray) -> FloatArray:
        rows = self.units[codes.ravel()]
        dense = rows.toarray() if sp.issparse(rows) else rows
        out: FloatArray = np.asarray(dense, dtype=np.float64).reshape(*codes.shape, self.dim)
        return out

    def candidate_cube(self, item_codes: IntArray) -> FloatArray | None:
        """``cube[u, i, j]``: the similarity of candidates ``i`` and ``j`` of user ``u``,
        gathered from the Gram matrix (``None`` without one, or above
        :data:`CUBE_MAX_BYTES`). Worth it for candidates re-ranked many times: each greedy
        step then copies one contiguous row per user instead of gathering from the
        catalogue matrix."""
        n_users, width = item_codes.shape
        if self.gram is None or n_users * width * width * 8 > CUBE_MAX_BYTES:
            return None
        cube: FloatArray = self.gram[item_codes[:, :, None], item_codes[:, None, :]]
        return cube

    def blocks(
        self, item_codes: IntArray, per_user_bytes: int, cube: FloatArray | None = None
    ) -> Iterator[tuple[slice, RowFunction]]:
        """Blocks of users, each with ``row(pos) -> similarity of codes[u, pos[u]] to codes[u]``.

        ``per_user_bytes`` is the caller's own working memory per user, used with the
        similarity's to size the blocks within :data:`BLOCK_BYTES`. ``cube``:
        :meth:`candidate_cube` of ``item_codes`` (the same values, read faster).
        """
        n_users, width = item_codes.shape
        gram = self.gram
        if gram is not None:
            n_items = self.n_items
            flat = gram.reshape(-1)
            size = max(1, BLOCK_BYTES // max(per_user_bytes + 16 * width, 1))
            for start in range(0, n_users, size):
                codes = item_codes[start : start + size]
                rows = np.arange(codes.shape[0])
                if cube is not None:

                    def cube_row(
                        pos: IntArray,
                        part: FloatArray = cube[start : start + size],
                        rows: IntArray = rows,
                    ) -> Any:
                        return part[rows, pos]

                    yield slice(start, start + codes.shape[0]), cube_row
                    continue

                def gram_row(pos: IntArray, codes: IntArray = codes, rows: IntArray = rows) -> Any:
                    chosen = codes[rows, pos]
                    return np.take(flat, chosen[:, None] * n_items + codes)

                yield slice(start, start + codes.shape[0]), gram_row
            return
        per_user = per_user_bytes + 8 * width * (width + self.dim)
        size = max(1, BLOCK_BYTES // max(per_user, 1))
        for start in range(0, n_users, size):
            codes = item_codes[start : start + size]
            vectors = self._block_vectors(codes)
            similarity = np.matmul(vectors, vectors.transpose(0, 2, 1))
            rows = np.arange(codes.shape[0])

            def block_row(
                pos: IntArray, similarity: FloatArray = similarity, rows: IntArray = rows
            ) -> Any:
                return similarity[rows, pos]

            yield slice(start, start + codes.shape[0]), block_row


_SIMILARITY_CACHE: weakref.WeakKeyDictionary[ItemContext, ItemSimilarity] = (
    weakref.WeakKeyDictionary()
)
_SIMILARITY_LOCK = threading.Lock()


def context_similarity(context: ItemContext, reranker: str = "the re-ranker") -> ItemSimilarity:
    """The :class:`ItemSimilarity` of ``context.vectors``, built once per context object.

    The cache holds the context weakly; it assumes ``context.vectors`` is not modified in
    place (the context itself is frozen).
    """
    with _SIMILARITY_LOCK:
        cached = _SIMILARITY_CACHE.get(context)
    if cached is not None:
        return cached
    if context.vectors is None:
        raise ParetorecError(
            f"reranker {reranker!r} needs item vectors, but context.vectors is None"
        )
    similarity = ItemSimilarity(context.vectors)
    if similarity.n_items != context.n_items:
        raise ParetorecError(
            f"context.vectors has {similarity.n_items} rows, but the context has "
            f"{context.n_items} items; it needs one vector per item"
        )
    with _SIMILARITY_LOCK:
        _SIMILARITY_CACHE[context] = similarity
    return similarity


#: Per candidate set: the similarity it was last re-ranked with, and that similarity's
#: candidate cube (``None`` until the second call; see :func:`_candidate_cube`).
_CUBE_CACHE: weakref.WeakKeyDictionary[CandidateSet, tuple[ItemSimilarity, FloatArray | None]] = (
    weakref.WeakKeyDictionary()
)


def _candidate_cube(candidates: CandidateSet, similarity: ItemSimilarity) -> FloatArray | None:
    """:meth:`ItemSimilarity.candidate_cube` of ``candidates.items``, built on the second
    re-ranking of the same candidate set with the same similarity and kept (weakly, per
    candidate set) after that; ``None`` on the first. Assumes, like the similarity cache,
    that the candidate arrays are not modified in place."""
    with _SIMILARITY_LOCK:
        entry = _CUBE_CACHE.get(candidates)
    if entry is None or entry[0] is not similarity:
        with _SIMILARITY_LOCK:
            _CUBE_CACHE[candidates] = (similarity, None)
        return None
    if entry[1] is None:
        cube = similarity.candidate_cube(np.asarray(candidates.items, dtype=np.int64))
        if cube is None:
            return None
        with _SIMILARITY_LOCK:
            _CUBE_CACHE[candidates] = (similarity, cube)
        return cube
    return entry[1]


# ---------------------------------------------------------------------------- validation
def _check_relevance(relevance: Any) -> FloatArray:
    arr = np.asarray(relevance)
    if arr.ndim != 2:
        raise ParetorecError(f"relevance must be a 2-D array (n_users, C), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise ParetorecError(f"relevance must hold real numbers, got dtype {arr.dtype}")
    out = arr.astype(np.float64, copy=False)
    if not np.isfinite(out).all():
        raise ParetorecError("relevance must hold only finite values")
    return out


def _check_aligned(values: Any, name: str, shape: tuple[int, ...]) -> IntArray:
    arr = np.asarray(values)
    if arr.shape != shape:
        raise ParetorecError(
            f"{name} must have the shape of relevance {shape}, got shape {arr.shape}"
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ParetorecError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_k(k: Any, width: int) -> int:
    k = check_positive_int(k, "k")
    if k > width:
        raise ParetorecError(f"k must be at most the number of candidates C={width}, got k={k}")
    return k


def _as_similarity(vectors: Any, item_codes: IntArray) -> ItemSimilarity:
    if isinstance(vectors, ItemSimilarity):
        similarity = vectors
    else:
        n_users, width = item_codes.shape
        shape = vectors.shape if sp.issparse(vectors) else np.shape(vectors)
        n_items = int(shape[0]) if len(shape) == 2 else 0
        # A one-off call builds the catalogue Gram only when it is the cheaper product.
        cheaper = n_items * n_items <= n_users * width * width
        similarity = ItemSimilarity(vectors, precompute_gram=cheaper)
    if item_codes.size:
        low, high = int(item_codes.min()), int(item_codes.max())
        if low < 0 or high >= similarity.n_items:
            bad = low if low < 0 else high
            raise ParetorecError(
                f"item_codes holds item code {bad}, but vectors has {similarity.n_items} rows "
                f"(valid codes 0..{similarity.n_items - 1})"
            )
    return similarity


# ---------------------------------------------------------------------------- greedy steps
def _masked_argmax(values: FloatArray, available: NDArray[np.bool_]) -> IntArray:
    """Per-row argmax over available columns (first one on ties)."""
    return np.argmax(np.where(available, values, -np.inf), axis=1)


def _argmax_unchosen(score: FloatArray, chosen: IntArray) -> IntArray:
    """:func:`_masked_argmax` of a scratch ``score`` (overwritten) whose unavailable columns
    are the positions ``chosen`` so far: ``-inf`` is written only there (``step`` entries
    per row) instead of building a masked copy of the whole array."""
    if chosen.shape[1]:
        np.put_along_axis(score, chosen, -np.inf, axis=1)
    return np.argmax(score, axis=1)


class Exposure:
    """Running count of how often each item has been placed, shared by every user.

    Lists are filled position by position for all users of a block at once, and blocks in
    order, so a user's t-th item is penalised by the exposure its candidates received in
    positions < t of every user processed so far (and all positions of earlier blocks).
    """

    def __init__(self, n_items: int, n_users: int, penalty: float) -> None:
        self.counts = np.zeros(n_items, dtype=np.float64)
        self.scale = penalty / math.log1p(max(n_users, 1))
        self.penalty = penalty

    def __call__(self, item_codes: IntArray) -> FloatArray:
        # the penalty over the catalogue, then one gather: the same values as the penalty
        # of the gathered counts, without a transcendental per candidate
        penalty: FloatArray = (self.scale * np.log1p(self.counts))[item_codes]
        return penalty

    def add(self, items: IntArray) -> None:
        np.add.at(self.counts, items, 1.0)


def _mmr_block(
    relevance: FloatArray,
    row: RowFunction,
    k: int,
    lam: float,
    *,
    mean: bool = False,
    codes: IntArray | None = None,
    exposure: Exposure | None = None,
) -> IntArray:
    n_users = relevance.shape[0]
    rows = np.arange(n_users)
    out = np.empty((n_users, k), dtype=np.int64)
    base = lam * relevance
    redundancy: FloatArray | None = None
    for step in range(k):
        # ``score`` is a fresh array from step 1 on (or with the exposure penalty); at
        # step 0 without it, nothing is chosen yet and ``base`` is only read
        score = base if redundancy is None else base - (1.0 - lam) * redundancy
        if exposure is not None and codes is not None:
            if redundancy is None:
                score = score - exposure(codes)
            else:
                score -= exposure(codes)
        pos = _argmax_unchosen(score, out[:, :step])
        out[:, step] = pos
        if exposure is not None and codes is not None:
            exposure.add(codes[rows, pos])
        if step == k - 1:
            break
        similarity = row(pos)
        if mean:  # running mean of the similarity to the chosen items
            redundancy = (
                similarity
                if redundancy is None
                else redundancy + (similarity - redundancy) / (step + 1)
            )
        else:
            redundancy = similarity if redundancy is None else np.maximum(redundancy, similarity)
    return out


def _greedy_block(relevance: FloatArray, codes: IntArray, k: int, exposure: Exposure) -> IntArray:
    """Top-k by relevance minus the running exposure penalty, position by position."""
    n_users = relevance.shape[0]
    rows = np.arange(n_users)
    out = np.empty((n_users, k), dtype=np.int64)
    for step in range(k):
        pos = _argmax_unchosen(relevance - exposure(codes), out[:, :step])
        out[:, step] = pos
        exposure.add(codes[rows, pos])
    return out


def _dpp_block(relevance: FloatArray, row: RowFunction, k: int, theta: float) -> IntArray:
    """Chen et al. (2018), Algorithm 1, for a block of users at once.

    ``factor[t]`` holds column t of the incremental Cholesky factor for every candidate and
    ``gain`` the squared residual ``d_i^2 = L_ii - |factor[:, i]|^2`` (adding item i grows
    log det L_Y by ``log d_i^2``); chosen items hold ``-inf``.
    """
    n_users, width = relevance.shape
    rows = np.arange(n_users)
    alpha = theta / (2.0 * (1.0 - theta))
    # exp(alpha * r) scaled by exp(-alpha * max r): same argmaxes, and no overflow.
    quality = np.exp(alpha * (relevance - relevance.max(axis=1, keepdims=True)))
    gain = quality * quality * (1.0 + DPP_JITTER)
    factor = np.empty((k, n_users, width))  # factor[:step] is written before it is read
    available = np.ones((n_users, width), dtype=np.bool_)
    stopped = np.zeros(n_users, dtype=np.bool_)
    out = np.empty((n_users, k), dtype=np.int64)
    for step in range(k):
        pos = np.argmax(gain, axis=1)
        best = gain[rows, pos]
        stopped |= best < DPP_MIN_GAIN
        if stopped.any():
            pos = np.where(stopped, _masked_argmax(relevance, available), pos)
            best = gain[rows, pos]
        out[:, step] = pos
        available[rows, pos] = False
        if step == k - 1:
            break
        chosen_root = np.sqrt(np.where(stopped, 1.0, best))
        update = quality[rows, pos][:, None] * quality * row(pos)
        if step:
            update -= np.einsum("tu,tuc->uc", factor[:step, rows, pos], factor[:step])
        update /= chosen_root[:, None]
        factor[step] = update
        gain -= update * update
        gain[rows, pos] = -np.inf
    return out


def _rerank_with_similarity(
    block: Callable[..., IntArray],
    relevance: FloatArray,
    item_codes: IntArray,
    similarity: ItemSimilarity,
    k: int,
    parameter: float,
    per_user_bytes: int,
    **options: Any,
) -> IntArray:
    normalised = minmax_rows(relevance)
    out = np.empty((relevance.shape[0], k), dtype=np.int64)
    cube = options.pop("cube", None)
    for users, row in similarity.blocks(item_codes, per_user_bytes, cube):
        extra = dict(options)
        if extra.get("exposure") is not None:
            extra["codes"] = item_codes[users]
        out[users] = block(normalised[users], row, k, parameter, **extra)
    return out


def _mmr(
    relevance: FloatArray,
    item_codes: IntArray,
    similarity: ItemSimilarity,
    k: int,
    lam: float,
    *,
    mean: bool = False,
    exposure: Exposure | None = None,
    cube: FloatArray | None = None,
) -> IntArray:
    width = relevance.shape[1]
    return _rerank_with_similarity(
        _mmr_block,
        relevance,
        item_codes,
        similarity,
        k,
        lam,
        8 * width * 7,
        mean=mean,
        exposure=exposure,
        cube=cube,
    )


def _dpp(
    relevance: FloatArray,
    item_codes: IntArray,
    similarity: ItemSimilarity,
    k: int,
    theta: float,
    cube: FloatArray | None = None,
) -> IntArray:
    width = relevance.shape[1]
    return _rerank_with_similarity(
        _dpp_block, relevance, item_codes, similarity, k, theta, 8 * width * (k + 8), cube=cube
    )


def _fair(
    relevance: FloatArray,
    protected: NDArray[np.bool_],
    k: int,
    min_share: float,
    *,
    codes: IntArray | None = None,
    exposure: Exposure | None = None,
) -> IntArray:
    if exposure is not None:
        relevance = minmax_rows(relevance)  # the penalty is in normalised-score units
    n_users, width = relevance.shape
    rows = np.arange(n_users)
    available = np.ones((n_users, width), dtype=np.bool_)
    count = np.zeros(n_users, dtype=np.int64)
    out = np.empty((n_users, k), dtype=np.int64)
    for step in range(k):
        # The guard keeps e.g. 0.3 * 10 at 3 rather than 2.9999999999999996.
        required = int(np.floor(min_share * (step + 1) + 1e-9))
        score = relevance
        if exposure is not None and codes is not None:
            score = relevance - exposure(codes)
        best = _masked_argmax(score, available)
        candidates_left = available & protected
        need = (count < required) & candidates_left.any(axis=1)
        if need.any():
            best = np.where(need, _masked_argmax(score, candidates_left), best)
        out[:, step] = best
        available[rows, best] = False
        count += protected[rows, best]
        if exposure is not None and codes is not None:
            exposure.add(codes[rows, best])
    return out


# ---------------------------------------------------------------------------- public
def mmr(relevance: Any, item_codes: Any, vectors: Any, k: int, lam: float) -> IntArray:
    """Maximal marginal relevance: ``(n_users, k)`` positions into the candidate lists.

    Greedy: at each step take the candidate maximising
    ``lam * rel_i - (1 - lam) * max_{s selected} cos(i, s)`` (the max is 0 before the first
    pick), with ``rel`` min-max normalised per user (constant rows give 0). ``lam=1`` is
    the relevance order, ``lam=0`` pure diversity. Ties go to the lower position.

    Args:
        relevance: ``(n_users, C)`` scores aligned with ``item_codes``.
        item_codes: ``(n_users, C)`` item codes (rows of ``vectors``).
        vectors: item x d matrix (dense or sparse) or a prepared :class:`ItemSimilarity`.
        k: list length, at most C.
        lam: trade-off in [0, 1].
    """
    rel = _check_relevance(relevance)
    codes = _check_aligned(item_codes, "item_codes", rel.shape)
    k = _check_k(k, rel.shape[1])
    lam = check_fraction(lam, "lam", low_open=False, high_open=False)
    return _mmr(rel, codes, _as_similarity(vectors, codes), k, lam)


def dpp(relevance: Any, item_codes: Any, vectors: Any, k: int, theta: float) -> IntArray:
    """Greedy MAP inference for a DPP (Chen, Zhang, Zhou, NeurIPS 2018, Algorithm 1).

    Kernel ``L = diag(q) (S + 1e-6 I) diag(q)`` with ``S`` the cosine similarity of the
    candidates (its diagonal set to 1, zero vectors included, so a zero vector is
    orthogonal to everything; the jitter keeps ``L`` positive definite with duplicate
    vectors), and quality ``q_i = exp(alpha * (r_i - max r))``,
    ``alpha = theta / (2 (1 - theta))``, ``r`` min-max normalised per user. The constant
    factor ``exp(-alpha max r)`` does not change any greedy choice and keeps ``q <= 1``.
    As in the paper, greedy MAP then maximises ``theta * sum(r) + (1 - theta) log det(S_Y)``
    (up to the jitter): ``theta=0`` is pure diversity, ``theta -> 1`` pure relevance.

    Each step adds the candidate with the largest marginal gain ``d_j^2`` (the increase of
    ``log det L_Y`` is ``log d_j^2``), updating an incremental Cholesky factor in
    ``O(C k)`` per user. When a user's best ``d_j^2`` falls below ``1e-10`` (the remaining
    candidates add nothing the kernel can tell apart), the rest of that user's list is
    filled by relevance. Ties go to the lower position.

    Args mirror :func:`mmr`; ``theta`` lies in [0, 1).
    """
    rel = _check_relevance(relevance)
    codes = _check_aligned(item_codes, "item_codes", rel.shape)
    k = _check_k(k, rel.shape[1])
    theta = check_fraction(theta, "theta", low_open=False, high_open=True)
    return _dpp(rel, codes, _as_similarity(vectors, codes), k, theta)


def fair_exposure(
    relevance: Any,
    groups_of_candidates: Any,
    k: int,
    min_share: float,
    protected_group: int = 1,
) -> IntArray:
    """Prefix-constrained greedy (FA*IR without its significance test): positions (n, k).

    At position ``t`` (1-based) the list must hold at least ``floor(min_share * t)``
    protected items (``groups_of_candidates == protected_group``). If the first ``t - 1``
    picks hold fewer, take the most relevant protected candidate left; otherwise take the
    most relevant candidate left of any group. When no protected candidate remains the
    list is filled by relevance, so the constraint then holds only as far as supply allows.
    Ties go to the lower position; ``relevance`` is used as given (no normalisation).
    """
    rel = _check_relevance(relevance)
    groups = _check_aligned(groups_of_candidates, "groups_of_candidates", rel.shape)
    k = _check_k(k, rel.shape[1])
    min_share = check_fraction(min_share, "min_share", low_open=False, high_open=False)
    if isinstance(protected_group, bool) or not isinstance(protected_group, (int, np.integer)):
        raise ParetorecError(f"protected_group must be an int, got {show(protected_group)}")
    return _fair(rel, groups == int(protected_group), k, min_share)


def apply_policy(
    policy: Policy | Mapping[str, Any],
    candidates: CandidateSet,
    context: ItemContext,
    *,
    exposure_counts: Any = None,
    exposure_users: int | None = None,
) -> IntArray:
    """The final ``(n_users, k)`` int64 item codes: fusion, then the policy's re-ranker.

    ``policy`` may be a :class:`Policy` or its dict form. Re-rankers that need item
    similarity read ``context.vectors``; its :class:`ItemSimilarity` is built on first use
    and cached per context object (so do not modify ``context.vectors`` in place).
    ``exposure_counts`` (one count per catalogue item) are placements made before this
    batch, where the exposure penalty starts counting (e.g. a service's recent lists; None:
    zero; not modified), and ``exposure_users`` the number of users the penalty's
    ``log1p(n_users)`` scale assumes (None: this batch's). Raises
    :class:`~paretorec.ParetorecError` if ``policy.k`` exceeds the number of candidates C or
    a weight names a source the candidates lack.
    """
    if isinstance(policy, Mapping):
        policy = Policy.from_dict(policy)
    if not isinstance(policy, Policy):
        raise ParetorecError(f"policy must be a Policy or a dict, got {type(policy).__name__}")
    check_candidates(candidates, context)
    width = candidates.n_candidates
    if policy.k > width:
        raise ParetorecError(
            f"policy k={policy.k} is larger than the number of candidates C={width}; "
            "k must be at most C"
        )
    scores = fuse_checked(policy, candidates, context)
    items = np.asarray(candidates.items)
    if policy.depth is not None and policy.depth < width:
        kept = top_k_indices(scores, policy.depth)  # the depth best by fused score, in order
        scores = np.take_along_axis(scores, kept, axis=1)
        items = np.take_along_axis(items, kept, axis=1)
    codes = items.astype(np.int64, copy=False)
    scale_users = len(items) if exposure_users is None else exposure_users
    exposure = (
        Exposure(context.n_items, scale_users, policy.exposure_penalty)
        if policy.exposure_penalty > 0
        else None
    )
    if exposure is not None and exposure_counts is not None:
        counts = np.asarray(exposure_counts, dtype=np.float64)
        if counts.shape != (context.n_items,) or not np.isfinite(counts).all():
            raise ParetorecError(
                f"exposure_counts must hold one finite count per item ({context.n_items}), "
                f"got shape {counts.shape}"
            )
        exposure.counts = counts.copy()
    if policy.reranker == "none":
        if exposure is None:
            positions = top_k_indices(scores, policy.k)
        else:
            positions = _greedy_block(
                minmax_rows(scores.astype(np.float64)), codes, policy.k, exposure
            )
    elif policy.reranker == "fair":
        protected = np.asarray(context.groups)[items] == policy.fair_group
        positions = _fair(
            scores.astype(np.float64),
            protected,
            policy.k,
            policy.fair_min_share,
            codes=codes,
            exposure=exposure,
        )
    else:
        similarity = context_similarity(context, policy.reranker)
        relevance = scores.astype(np.float64)
        # every candidate kept (no depth cut): the candidates' own similarity cube, kept
        # from the second such call on (a search); a one-off call gathers from the Gram
        cube = _candidate_cube(candidates, similarity) if codes is candidates.items else None
        if policy.reranker == "mmr":
            positions = _mmr(
                relevance,
                codes,
                similarity,
                policy.k,
                policy.mmr_lambda,
                mean=policy.mmr_similarity == "mean",
                exposure=exposure,
                cube=cube,
            )
        else:
            positions = _dpp(relevance, codes, similarity, policy.k, policy.dpp_theta, cube)
    if policy.order == "score":  # present the chosen set best first
        chosen = np.take_along_axis(scores, positions, axis=1)
        positions = np.take_along_axis(positions, np.argsort(-chosen, axis=1, kind="stable"), 1)
    return np.take_along_axis(items, positions, axis=1).astype(np.int64, copy=False)
