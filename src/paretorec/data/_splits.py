"""Seeded train / validation / test splits over a :class:`Dataset`.

Every splitter returns a :class:`Split` whose parts share the parent's id maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import ParetorecError, ParetorecWarning, check_choice, check_fraction
from ._dataset import ITEM, TIMESTAMP, USER, Dataset


@dataclass(frozen=True)
class Split:
    """Train / test (and optional validation) parts of one dataset.

    ``cold_items`` lists item codes kept out of training entirely (cold-start split).
    """

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    cold_items: np.ndarray | None = None

    def __repr__(self) -> str:
        parts = [f"train={self.train.n_interactions:,}"]
        if self.valid is not None:
            parts.append(f"valid={self.valid.n_interactions:,}")
        parts.append(f"test={self.test.n_interactions:,}")
        if self.cold_items is not None:
            parts.append(f"cold_items={len(self.cold_items):,}")
        return f"Split({self.train.name!r}: {', '.join(parts)})"


def _take(dataset: Dataset, mask: np.ndarray) -> Dataset:
    return dataset.with_interactions(dataset.interactions[mask])


def group_ranks(groups: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based rank of each row within its group when ordered by ``keys``, and the group size.

    Equal keys keep their row order, so the ranks are a pure function of the inputs.
    """
    order = np.lexsort((np.arange(len(groups)), keys, groups))
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    counts = np.diff(np.r_[starts, len(groups)])
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(groups)) - np.repeat(starts, counts) + 1
    sizes = np.empty(len(groups), dtype=np.int64)
    sizes[order] = np.repeat(counts, counts)
    return ranks, sizes


def stratified_mask(groups: np.ndarray, draws: np.ndarray, ratio: float) -> np.ndarray:
    """Rows kept for training: per group, the ``round(ratio * count)`` rows with lowest draws.

    ``round`` is numpy's (half to even), as in the released ``python_stratified_split``: a
    group of 2 keeps 2 rows at ratio 0.75 (1.5 rounds to 2), a group of 6 keeps 4 (4.5 to 4).
    """
    ranks, sizes = group_ranks(groups, draws)
    return ranks <= np.round(ratio * sizes)


FILTER_BY = {"user": USER, "item": ITEM}


def stratified_split(
    dataset: Dataset, ratio: float = 0.75, seed: int = 42, *, filter_by: str = "user"
) -> Split:
    """Stratified random split: Microsoft Recommenders 1.2.1 ``python_stratified_split``.

    Each interaction draws a uniform number (``numpy.random.RandomState(seed).rand``, in row
    order); within each user (``filter_by="user"``) or item (``filter_by="item"``) the rows
    are ordered by their draw and the first ``round(ratio * count)`` go to train (numpy
    rounding, half to even), the rest to test. With the same row order, ratio and seed it
    gives the released function's split (its ``min_rating=1``, no filtering).
    """
    ratio = check_fraction(ratio, "ratio")
    check_choice(filter_by, "filter_by", tuple(FILTER_BY))
    groups = dataset.interactions[FILTER_BY[filter_by]].to_numpy()
    draws = np.random.RandomState(seed).rand(len(groups))
    in_train = stratified_mask(groups, draws, ratio)
    return Split(train=_take(dataset, in_train), test=_take(dataset, ~in_train))


def random_split(dataset: Dataset, ratio: float = 0.8, seed: int = 0) -> Split:
    """Global random split: a ``ratio`` share of all interactions goes to train."""
    ratio = check_fraction(ratio, "ratio")
    n = dataset.n_interactions
    order = np.random.default_rng(seed).permutation(n)
    in_train = np.zeros(n, dtype=bool)
    in_train[order[: round(ratio * n)]] = True
    return Split(train=_take(dataset, in_train), test=_take(dataset, ~in_train))


def temporal_split(dataset: Dataset, ratio: float = 0.8) -> Split:
    """Global temporal split: the earliest ``ratio`` share of interactions goes to train.

    Ties in time are broken by row order, so the split is deterministic.
    """
    ratio = check_fraction(ratio, "ratio")
    if not dataset.has_timestamps:
        raise ParetorecError(f"temporal_split needs timestamps; dataset {dataset.name!r} has none")
    n = dataset.n_interactions
    order = np.argsort(dataset.interactions[TIMESTAMP].to_numpy(), kind="stable")
    in_train = np.zeros(n, dtype=bool)
    in_train[order[: round(ratio * n)]] = True
    return Split(train=_take(dataset, in_train), test=_take(dataset, ~in_train))


def leave_one_out(
    dataset: Dataset,
    by: str = "timestamp",
    *,
    validation: bool = True,
    min_events: int = 3,
    warn_ties: bool = True,
) -> Split:
    """Each user's last interaction is the test item (and the one before, validation).

    ``by="timestamp"`` orders events by time (ties by row order); ``by="order"`` uses the
    row order as given. Users with fewer than ``min_events`` events stay entirely in
    train (documented policy: they cannot be held out without emptying their history).

    Tie rule: when a user's last events share one timestamp, the one listed last in the
    file is the held-out item, which is arbitrary (the test item is then not "the next"
    event). With ``warn_ties`` (default) a :class:`TiedTimestampsWarning` gives the count of
    users whose held-out event ties with a kept one.
    """
    check_choice(by, "by", ("timestamp", "order"))
    needed = 3 if validation else 2
    if min_events < needed:
        raise ParetorecError(f"min_events must be at least {needed}, got {min_events}")
    users = dataset.interactions[USER].to_numpy()
    if by == "timestamp":
        if not dataset.has_timestamps:
            raise ParetorecError(
                f"by='timestamp' needs timestamps; dataset {dataset.name!r} has none "
                "(use by='order')"
            )
        keys = dataset.interactions[TIMESTAMP].to_numpy()
    else:
        keys = np.arange(len(users), dtype=np.float64)
    order = np.lexsort((np.arange(len(users)), keys, users))
    sorted_users = users[order]
    counts = np.bincount(users, minlength=dataset.n_users)
    from_end = np.empty(len(users), dtype=np.int64)
    ends = np.cumsum(counts)[sorted_users] - 1
    from_end[order] = ends - np.arange(len(users))  # 0 = last event of the user
    eligible = counts[users] >= min_events
    if by == "timestamp" and warn_ties:
        _warn_tied_ends(users, keys, from_end, eligible, 2 if validation else 1)
    test_mask = eligible & (from_end == 0)
    valid_mask = eligible & (from_end == 1) if validation else np.zeros(len(users), dtype=bool)
    train_mask = ~(test_mask | valid_mask)
    return Split(
        train=_take(dataset, train_mask),
        test=_take(dataset, test_mask),
        valid=_take(dataset, valid_mask) if validation else None,
    )


class TiedTimestampsWarning(ParetorecWarning):
    """Leave-one-out held out an event whose timestamp ties with a kept one."""


def _warn_tied_ends(
    users: np.ndarray, keys: np.ndarray, from_end: np.ndarray, eligible: np.ndarray, held: int
) -> None:
    """Warn with the number of users whose held-out events tie in time with a kept event."""
    n_users = int(users.max()) + 1 if len(users) else 0
    boundary = np.full(n_users, np.nan)  # time of the earliest held-out event per user
    kept_last = np.full(n_users, np.nan)  # time of the latest kept event per user
    held_rows = eligible & (from_end == held - 1)
    kept_rows = eligible & (from_end == held)
    boundary[users[held_rows]] = keys[held_rows]
    kept_last[users[kept_rows]] = keys[kept_rows]
    tied = int(np.sum(boundary == kept_last))
    if tied:
        import warnings

        warnings.warn(
            f"leave_one_out: {tied} user(s) have their held-out event at the same timestamp as "
            "a training event; the tie is broken by row order (the row listed last is held "
            "out), so their test item is not reliably the next one. Break ties in the data, "
            "use by='order' if the file order is the true order, or pass warn_ties=False",
            TiedTimestampsWarning,
            stacklevel=3,
        )


def cold_item_split(
    dataset: Dataset, item_fraction: float = 0.1, ratio: float = 0.75, seed: int = 0
) -> Split:
    """Hold a random ``item_fraction`` of items out of training entirely.

    Every interaction with a cold item goes to test; the warm interactions are split per
    user (stratified, ``round(ratio * count)`` to train, as :func:`stratified_split`).
    ``Split.cold_items`` lists the cold item codes,
    so warm and cold results can be reported separately.
    """
    item_fraction = check_fraction(item_fraction, "item_fraction")
    ratio = check_fraction(ratio, "ratio")
    items = dataset.interactions[ITEM].to_numpy()
    present = np.unique(items)
    rng = np.random.default_rng(seed)
    n_cold = max(1, round(item_fraction * len(present)))
    cold = np.sort(rng.choice(present, size=n_cold, replace=False))
    is_cold = np.isin(items, cold)
    users = dataset.interactions[USER].to_numpy()
    draws = rng.random(len(users))
    warm_train = stratified_mask(users[~is_cold], draws[~is_cold], ratio)
    in_train = np.zeros(len(users), dtype=bool)
    in_train[np.flatnonzero(~is_cold)[warm_train]] = True
    return Split(train=_take(dataset, in_train), test=_take(dataset, ~in_train), cold_items=cold)


def carve_validation(
    split: Split, ratio: float = 0.8, seed: int = 0, *, filter_by: str = "user"
) -> Split:
    """Split ``split.train`` (stratified by user or item) into a smaller train and a validation."""
    inner = stratified_split(split.train, ratio=ratio, seed=seed, filter_by=filter_by)
    return Split(train=inner.train, test=split.test, valid=inner.test, cold_items=split.cold_items)


def merge_parts(first: Dataset, second: Dataset) -> Dataset:
    """The interactions of two parts of one dataset (same id maps) as one part."""
    import pandas as pd

    if first.user_ids is not second.user_ids or first.item_ids is not second.item_ids:
        raise ParetorecError("merge_parts needs two parts of the same dataset (same id maps)")
    return first.with_interactions(
        pd.concat([first.interactions, second.interactions], ignore_index=True)
    )
