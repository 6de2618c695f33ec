"""Differentiable regularisers for ranker training: list diversity and exposure fairness.

Both take raw model scores (logits) and return a scalar tensor to pass to a strategy as
``extra_loss`` (or, for :func:`diversity_regularized_loss`, to use as the loss itself).

* :func:`negative_entropy` / :func:`diversity_regularized_loss`: the accuracy-plus-diversity
  objective ``lam * accuracy + (1 - lam) * sum p log p``, with ``p`` the softmax of the scores
  over the items of each list. Minimising the negative entropy spreads the predicted
  distribution over the items of a list instead of concentrating it on a few.
* :func:`exposure_fairness`: the spread (variance or max - min) of the mean predicted
  exposure of items across popularity groups, zero when every group gets the same mean
  exposure; :func:`popularity_groups` builds the groups (0 = most popular).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from .._arrays import long_tail_mask
from .._validation import ParetorecError, check_choice, check_fraction, check_positive_int

SpreadKind = Literal["variance", "range"]
SPREAD_KINDS = ("variance", "range")
ExposureModel = Literal["sigmoid", "softmax"]
EXPOSURE_MODELS = ("sigmoid", "softmax")


# --------------------------------------------------------------------------- checks
def _check_scores(scores: Any, name: str = "scores") -> torch.Tensor:
    if not isinstance(scores, torch.Tensor):
        raise ParetorecError(f"{name} must be a torch.Tensor, got {type(scores).__name__}")
    if scores.ndim not in (1, 2) or scores.numel() == 0:
        raise ParetorecError(
            f"{name} must be a non-empty 1-D (items) or 2-D (lists x items) tensor, "
            f"got shape {tuple(scores.shape)}"
        )
    if not scores.is_floating_point():
        raise ParetorecError(f"{name} must hold floating-point scores, got dtype {scores.dtype}")
    if not bool(torch.isfinite(scores.detach()).all()):
        raise ParetorecError(f"{name} must hold only finite values")
    return scores


def _check_ids(values: Any, name: str, scores: torch.Tensor) -> torch.Tensor:
    """An integer tensor of ``scores``' shape on its device."""
    ids = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values))
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ParetorecError(f"{name} must hold integer ids, got dtype {ids.dtype}")
    if tuple(ids.shape) != tuple(scores.shape):
        raise ParetorecError(
            f"{name} must have the shape of scores {tuple(scores.shape)}, got {tuple(ids.shape)}"
        )
    return ids.to(device=scores.device, dtype=torch.int64)


def _lists(scores: torch.Tensor, group: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Flat scores, the list index (0..n_lists-1) of each and the number of lists."""
    if scores.ndim == 2:
        if group is not None:
            raise ParetorecError(
                "group must be None when scores is 2-D (each row is already one list)"
            )
        n_lists, length = scores.shape
        codes = torch.arange(n_lists, device=scores.device).repeat_interleave(length)
        return scores.reshape(-1), codes, n_lists
    if group is None:
        return scores, torch.zeros(scores.shape[0], dtype=torch.int64, device=scores.device), 1
    ids = _check_ids(group, "group", scores)
    _, codes = torch.unique(ids, return_inverse=True)
    return scores, codes, int(codes.max()) + 1


def _segment_log_softmax(
    flat: torch.Tensor, codes: torch.Tensor, n_lists: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and log-probabilities within each list."""
    peak = torch.full((n_lists,), -math.inf, dtype=flat.dtype, device=flat.device)
    peak = peak.scatter_reduce(0, codes, flat.detach(), reduce="amax", include_self=True)
    shifted = flat - peak[codes]  # log-softmax is shift invariant: the peak is a constant
    exp = shifted.exp()
    total = torch.zeros(n_lists, dtype=flat.dtype, device=flat.device).index_add(0, codes, exp)
    log_p = shifted - total.log()[codes]
    return log_p.exp(), log_p


# --------------------------------------------------------------------------- diversity
def negative_entropy(scores: torch.Tensor, group: Any = None) -> torch.Tensor:
    r"""Mean over lists of :math:`\sum_i p_i \log p_i`, ``p`` the softmax of a list's scores.

    ``scores`` is 1-D (one score per item) with ``group`` giving each item's list id (any
    integers; ``None``: the whole batch is one list), or 2-D with one list per row. The value
    lies in ``[-log k, 0]`` for a list of k items: ``-log k`` when the scores are equal
    (uniform distribution, maximal entropy), 0 when one item takes all the mass. Lists of
    one item contribute 0.
    """
    scores = _check_scores(scores)
    flat, codes, n_lists = _lists(scores, group)
    p, log_p = _segment_log_softmax(flat, codes, n_lists)
    per_list = torch.zeros(n_lists, dtype=flat.dtype, device=flat.device).index_add(
        0, codes, p * log_p
    )
    return per_list.mean()


def diversity_regularized_loss(
    accuracy_loss: torch.Tensor, scores: torch.Tensor, *, lam: float, group: Any = None
) -> torch.Tensor:
    """``lam * accuracy_loss + (1 - lam) * negative_entropy(scores, group)``.

    ``lam`` lies in [0, 1]: 1 is the accuracy loss alone (returned as is), 0 pure
    diversity. ``accuracy_loss`` must be a scalar tensor.
    """
    lam = check_fraction(lam, "lam", low_open=False, high_open=False)
    if not isinstance(accuracy_loss, torch.Tensor) or accuracy_loss.numel() != 1:
        shape = tuple(accuracy_loss.shape) if isinstance(accuracy_loss, torch.Tensor) else None
        raise ParetorecError(
            "accuracy_loss must be a scalar torch.Tensor, got "
            f"{type(accuracy_loss).__name__}{'' if shape is None else f' of shape {shape}'}"
        )
    diversity = negative_entropy(scores, group)
    if lam == 1.0:
        return accuracy_loss
    return lam * accuracy_loss.reshape(()) + (1.0 - lam) * diversity


# --------------------------------------------------------------------------- fairness
def exposure_fairness(
    scores: torch.Tensor,
    item_groups: Any,
    *,
    n_groups: int,
    kind: SpreadKind = "variance",
    exposure: ExposureModel = "sigmoid",
    group: Any = None,
) -> torch.Tensor:
    """Spread of the mean predicted exposure across item (popularity) groups.

    Each scored item gets an exposure: ``"sigmoid"``, its predicted probability
    ``sigmoid(score)``; ``"softmax"``, its share of the softmax over its list (``group``
    ids as in :func:`negative_entropy`, or the rows of a 2-D ``scores``; the whole batch
    when ``None``). Exposures are averaged within each item group (``item_groups``: the group
    id in ``[0, n_groups)`` of each score, same shape as ``scores``), and ``kind`` measures
    how unequal the group means are: ``"variance"`` (population variance of the means) or
    ``"range"`` (largest minus smallest mean). It is 0 when every group has the same mean
    exposure. Groups absent from the batch are left out; with fewer than two groups present
    the result is 0 (still attached to the graph, with zero gradient).
    """
    scores = _check_scores(scores)
    n_groups = check_positive_int(n_groups, "n_groups")
    kind = check_choice(kind, "kind", SPREAD_KINDS)  # type: ignore[assignment]
    exposure = check_choice(exposure, "exposure", EXPOSURE_MODELS)  # type: ignore[assignment]
    item_ids = _check_ids(item_groups, "item_groups", scores).reshape(-1)
    if item_ids.numel() and (int(item_ids.min()) < 0 or int(item_ids.max()) >= n_groups):
        bad = item_ids[(item_ids < 0) | (item_ids >= n_groups)][0]
        raise ParetorecError(
            f"item_groups must hold group ids in [0, {n_groups}) (n_groups={n_groups}), "
            f"got {int(bad)}"
        )
    if exposure == "sigmoid":
        if group is not None:
            raise ParetorecError("group is only used with exposure='softmax'")
        values = torch.sigmoid(scores).reshape(-1)
    else:
        flat, codes, n_lists = _lists(scores, group)
        values, _ = _segment_log_softmax(flat, codes, n_lists)

    zeros = torch.zeros(n_groups, dtype=values.dtype, device=values.device)
    sums = zeros.index_add(0, item_ids, values)
    counts = zeros.index_add(0, item_ids, torch.ones_like(values))
    present = counts > 0
    if int(present.sum()) < 2:
        return values.sum() * 0.0
    means = sums[present] / counts[present]
    if kind == "variance":
        return ((means - means.mean()) ** 2).mean()
    return means.max() - means.min()


def popularity_groups(
    item_counts: Any, n_groups: int = 2, *, head_fraction: float | None = None
) -> np.ndarray:
    """Popularity group of every item, 0 = most popular, ``n_groups - 1`` = least popular.

    By default items are cut into ``n_groups`` equal-count groups by popularity rank (the
    first ``n_items % n_groups`` groups hold one item more; ties broken by the lower item
    code, as in :func:`paretorec._arrays.long_tail_mask`). With ``head_fraction`` (two groups
    only) the split is head / long tail: the ``ceil(head_fraction * n_items)`` most popular
    items form group 0 and the rest group 1, exactly ``long_tail_mask`` (the convention of
    ``ItemContext.groups``; 0.2 is the usual 20 / 80 split).
    """
    n_groups = check_positive_int(n_groups, "n_groups")
    if head_fraction is not None:
        if n_groups != 2:
            raise ParetorecError(
                f"head_fraction splits items into head and tail: it needs n_groups=2, "
                f"got n_groups={n_groups}"
            )
        return long_tail_mask(item_counts, head_fraction=head_fraction).astype(np.int64)
    # long_tail_mask validates the counts; with head_fraction 0 every item is "tail"
    long_tail_mask(item_counts, head_fraction=0.0)
    popularity = np.asarray(item_counts, dtype=np.float64)
    n_items = popularity.size
    if n_groups > n_items:
        raise ParetorecError(
            f"n_groups must be at most the number of items ({n_items}), got {n_groups}"
        )
    most_popular_first = np.lexsort((np.arange(n_items), -popularity))
    rank = np.empty(n_items, dtype=np.int64)
    rank[most_popular_first] = np.arange(n_items)
    # the first n_items % n_groups (most popular) groups hold one item more
    sizes = np.full(n_groups, n_items // n_groups) + (np.arange(n_groups) < n_items % n_groups)
    return np.searchsorted(np.cumsum(sizes)[:-1], rank, side="right").astype(np.int64)
