"""Fusion: a policy's weights, boosts and penalty turn candidate lists into one score.

Everything is vectorised over the ``(n_users, C)`` candidate arrays; item-side terms are
first combined into one vector over the catalogue and gathered once.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import ParetorecError
from ._candidates import CandidateSet, ItemContext
from ._policy import Policy

FloatArray = NDArray[np.float64]

#: Smallest probability in ``fusion="product"`` (log(1e-6) ~ -13.8 bounds each term).
PROBABILITY_FLOOR = 1e-6
#: Tolerance on the [0, 1] range of probability sources before clipping.
PROBABILITY_SLACK = 1e-6


def minmax_rows(values: NDArray[Any]) -> FloatArray:
    """Per-row min-max scaling to [0, 1] in float64; a constant row becomes all zeros."""
    x = np.asarray(values, dtype=np.float64)
    if x.shape[1] == 0:
        return x.copy()
    low = x.min(axis=1, keepdims=True)
    spread = x.max(axis=1, keepdims=True) - low
    out: FloatArray = np.divide(
        x - low, spread, out=np.zeros_like(x), where=np.broadcast_to(spread > 0, x.shape)
    )
    return out


def check_candidates(candidates: CandidateSet, context: ItemContext) -> None:
    """Shapes, dtypes and item codes of a candidate set against an item context."""
    if not isinstance(candidates, CandidateSet):
        raise ParetorecError(f"candidates must be a CandidateSet, got {type(candidates).__name__}")
    if not isinstance(context, ItemContext):
        raise ParetorecError(f"context must be an ItemContext, got {type(context).__name__}")
    items = np.asarray(candidates.items)
    if items.ndim != 2 or not np.issubdtype(items.dtype, np.integer):
        raise ParetorecError(
            "candidates.items must be a 2-D int array (n_users, C), "
            f"got shape {items.shape} and dtype {items.dtype}"
        )
    for name, source in candidates.sources().items():
        shape = np.shape(source)
        if shape != items.shape:
            raise ParetorecError(
                f"score source {name!r} has shape {shape}, but candidates.items has shape "
                f"{items.shape}; every source must be aligned with the candidate items"
            )
    n_items = context.n_items
    if np.shape(context.groups) != (n_items,):
        raise ParetorecError(
            f"context.groups must have one entry per item ({n_items}), "
            f"got shape {np.shape(context.groups)}"
        )
    if items.size:
        low, high = int(items.min()), int(items.max())
        if low < 0 or high >= n_items:
            bad = low if low < 0 else high
            raise ParetorecError(
                f"candidates.items holds item code {bad}, but the context has {n_items} items "
                f"(valid codes 0..{n_items - 1})"
            )


class _SourceCache:
    """Per-candidate-set facts about its score sources that every policy would recompute:
    whether each source is finite and its per-user min-max scaling (``fusion="sum"``).

    Built lazily per source and held weakly per :class:`CandidateSet` object (a search
    applies thousands of policies to the same candidates); like the similarity cache of the
    re-rankers, it assumes the candidate arrays are not modified in place.
    """

    def __init__(self) -> None:
        self.finite: dict[str, bool] = {}
        self.minmax: dict[str, FloatArray] = {}


_SOURCE_CACHE: weakref.WeakKeyDictionary[CandidateSet, _SourceCache] = weakref.WeakKeyDictionary()
_SOURCE_LOCK = threading.Lock()


def _source_cache(candidates: CandidateSet) -> _SourceCache:
    with _SOURCE_LOCK:
        cache = _SOURCE_CACHE.get(candidates)
        if cache is None:
            cache = _SOURCE_CACHE[candidates] = _SourceCache()
    return cache


def _check_sources(policy: Policy, candidates: CandidateSet) -> dict[str, NDArray[Any]]:
    sources = candidates.sources()
    unknown = [name for name in policy.weights if name not in sources]
    if unknown:
        available = ", ".join(repr(name) for name in sources)
        raise ParetorecError(
            f"policy weights name unknown score source {unknown[0]!r}; "
            f"available sources: {available}"
        )
    used = {name: sources[name] for name, weight in policy.weights.items() if weight > 0}
    finite = _source_cache(candidates).finite
    for name, values in used.items():
        if name not in finite:
            finite[name] = bool(np.isfinite(values).all())
        if not finite[name]:
            raise ParetorecError(f"score source {name!r} must hold only finite values")
    return used


def _source_minmax(candidates: CandidateSet, name: str, values: NDArray[Any]) -> FloatArray:
    """``minmax_rows`` of one score source, computed once per candidate set."""
    minmax = _source_cache(candidates).minmax
    scaled = minmax.get(name)
    if scaled is None:
        scaled = minmax[name] = minmax_rows(values)
        scaled.flags.writeable = False
    return scaled


def item_adjustment(policy: Policy, context: ItemContext) -> FloatArray | None:
    """Boosts minus penalty per catalogue item (None when the policy has none)."""
    if not (policy.novelty_boost or policy.long_tail_boost or policy.popularity_penalty):
        return None
    popularity = np.asarray(context.popularity, dtype=np.float64)
    adjustment = np.zeros(context.n_items)
    if policy.novelty_boost:
        if context.n_users <= 0:
            raise ParetorecError(
                f"context.n_users must be a positive int for novelty_boost, got {context.n_users}"
            )
        information = np.maximum(-np.log2(np.maximum(popularity, 1.0) / context.n_users), 0.0)
        top = information.max(initial=0.0)
        if top > 0:
            adjustment += policy.novelty_boost * (information / top)
    if policy.long_tail_boost:
        adjustment += policy.long_tail_boost * (np.asarray(context.groups) == 1)
    if policy.popularity_penalty:
        log_popularity = np.log1p(np.maximum(popularity, 0.0))
        top = log_popularity.max(initial=0.0)
        if top > 0:
            adjustment -= policy.popularity_penalty * (log_popularity / top)
    return adjustment


def fused_scores(
    policy: Policy, candidates: CandidateSet, context: ItemContext
) -> NDArray[np.float32]:
    """One score per candidate, ``(n_users, C)`` float32: fusion + boosts - penalty.

    * ``fusion="sum"``: ``sum_s w_s * minmax_u(x_s)``, min-max over each user's candidates
      (a constant row gives 0).
    * ``fusion="product"``: ``sum_s w_s * log(p_s)``, the log of a weighted product of
      probabilities. A source in ``candidates.predictions`` must be a probability (values
      in [0, 1]; an error otherwise) and is clipped to ``[1e-6, 1]``; the candidate score
      becomes ``1e-6 + (1 - 1e-6) * minmax_u(score)``, in ``[1e-6, 1]``.
    * Then ``+ novelty_boost * info_i / max(info) + long_tail_boost * [group_i == 1]
      - popularity_penalty * log1p(pop_i) / max(log1p(pop))`` with
      ``info_i = -log2(max(pop_i, 1) / n_users)``.

    Raises :class:`~paretorec.ParetorecError` for a weight naming a source the candidate
    set lacks (the message lists the available sources).
    """
    if not isinstance(policy, Policy):
        raise ParetorecError(f"policy must be a Policy, got {type(policy).__name__}")
    check_candidates(candidates, context)
    return fuse_checked(policy, candidates, context)


def fuse_checked(
    policy: Policy, candidates: CandidateSet, context: ItemContext
) -> NDArray[np.float32]:
    """:func:`fused_scores` for inputs that already passed :func:`check_candidates`."""
    used = _check_sources(policy, candidates)
    shape = np.shape(candidates.items)
    total = np.zeros(shape)
    for name, values in used.items():
        weight = policy.weights[name]
        if policy.fusion == "sum":
            total += weight * _source_minmax(candidates, name, values)
        elif name in candidates.predictions:
            probability = np.asarray(values, dtype=np.float64)
            if probability.size and (
                probability.min() < -PROBABILITY_SLACK or probability.max() > 1 + PROBABILITY_SLACK
            ):
                bad = probability.min() if probability.min() < 0 else probability.max()
                raise ParetorecError(
                    f"fusion='product' needs probabilities in [0, 1], but score source "
                    f"{name!r} holds {float(bad):g}; use fusion='sum' for other scores"
                )
            total += weight * np.log(np.clip(probability, PROBABILITY_FLOOR, 1.0))
        else:
            scaled = _source_minmax(candidates, name, values)
            mapped = PROBABILITY_FLOOR + (1.0 - PROBABILITY_FLOOR) * scaled
            total += weight * np.log(mapped)
    adjustment = item_adjustment(policy, context)
    if adjustment is not None:
        total += adjustment[np.asarray(candidates.items)]
    return total.astype(np.float32)
