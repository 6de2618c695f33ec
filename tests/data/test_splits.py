"""Splitters: exact reproduction of the Microsoft Recommenders split, and invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretorec import ParetorecError
from paretorec.data import (
    Dataset,
    carve_validation,
    cold_item_split,
    leave_one_out,
    random_split,
    sample_negatives,
    stratified_split,
    temporal_split,
)

from ..conftest import make_tiny


def reference_stratified(frame: pd.DataFrame, ratio: float, seed: int) -> pd.DataFrame:
    """Independent pandas re-statement of python_stratified_split (filter_by='user')."""
    data = frame.copy()
    np.random.seed(seed)  # noqa: NPY002 - the reference uses the legacy global generator
    data["random"] = np.random.rand(data.shape[0])  # noqa: NPY002
    data = data.sort_values(["user_id", "random"])
    groups = data.groupby("user_id")
    data["rank"] = (groups.cumcount() + 1) / groups["user_id"].transform("count")
    return data[data["rank"] <= ratio]


def test_stratified_split_matches_reference_row_for_row(ml100k: Dataset) -> None:
    split = stratified_split(ml100k, ratio=0.75, seed=42)
    frame = pd.DataFrame(
        {
            "user_id": ml100k.user_ids[ml100k.interactions["user"]],
            "item_id": ml100k.item_ids[ml100k.interactions["item"]],
        }
    )
    expected = reference_stratified(frame, 0.75, 42)
    ours = set(
        zip(
            split.train.user_ids[split.train.interactions["user"]],
            split.train.item_ids[split.train.interactions["item"]],
            strict=True,
        )
    )
    assert ours == set(zip(expected["user_id"], expected["item_id"], strict=True))
    assert (split.train.n_interactions, split.test.n_interactions) == (74_646, 25_354)


def _pairs(ds: Dataset) -> set[tuple[int, int]]:
    return set(zip(ds.interactions["user"], ds.interactions["item"], strict=True))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    ratio=st.floats(0.05, 0.95),
    splitter=st.sampled_from(["stratified", "random", "temporal"]),
)
def test_splits_partition_the_data(seed: int, ratio: float, splitter: str) -> None:
    ds = make_tiny(seed=seed % 7)
    if splitter == "stratified":
        split = stratified_split(ds, ratio=ratio, seed=seed)
    elif splitter == "random":
        split = random_split(ds, ratio=ratio, seed=seed)
    else:
        split = temporal_split(ds, ratio=ratio)
    train, test = _pairs(split.train), _pairs(split.test)
    assert not train & test
    assert train | test == _pairs(ds)
    if splitter == "stratified":  # per user, the training share is floor(ratio * n) or more
        counts = ds.user_activity()
        train_counts = split.train.user_activity()
        assert np.all(np.abs(train_counts - ratio * counts) <= 1)


def test_splits_are_seeded() -> None:
    ds = make_tiny()
    a, b = stratified_split(ds, seed=3), stratified_split(ds, seed=3)
    assert _pairs(a.train) == _pairs(b.train)
    assert _pairs(stratified_split(ds, seed=4).train) != _pairs(a.train)


def test_temporal_split_puts_the_past_in_train() -> None:
    ds = make_tiny()
    split = temporal_split(ds, ratio=0.5)
    assert split.train.interactions["timestamp"].max() <= split.test.interactions["timestamp"].min()


def test_leave_one_out_by_time_and_by_order() -> None:
    ds = make_tiny()
    split = leave_one_out(ds, by="timestamp")
    assert split.valid is not None
    assert split.test.n_interactions == ds.n_users == split.valid.n_interactions
    last = ds.interactions.sort_values("timestamp").groupby("user").tail(1)
    assert _pairs(split.test) == set(zip(last["user"], last["item"], strict=True))
    by_order = leave_one_out(ds, by="order", validation=False)
    assert by_order.valid is None
    assert _pairs(by_order.test) == set(
        zip(*[ds.interactions.groupby("user").tail(1)[c] for c in ("user", "item")], strict=True)
    )


def test_leave_one_out_keeps_short_histories_in_train() -> None:
    frame = pd.DataFrame(
        {"user_id": [1, 1, 2, 2, 2], "item_id": [1, 2, 1, 2, 3], "t": [0, 1, 0, 1, 2]}
    )
    ds = Dataset.from_frames("t", frame, timestamp_col="t")
    split = leave_one_out(ds)
    assert split.train.user_activity().tolist() == [2, 1]
    assert split.test.n_interactions == 1


def test_cold_item_split_keeps_cold_items_out_of_training() -> None:
    ds = make_tiny()
    split = cold_item_split(ds, item_fraction=0.25, seed=1)
    assert split.cold_items is not None and len(split.cold_items) == 10
    assert not np.isin(split.train.interactions["item"], split.cold_items).any()
    cold_test = np.isin(split.test.interactions["item"], split.cold_items)
    assert cold_test.sum() == np.isin(ds.interactions["item"], split.cold_items).sum()
    assert _pairs(split.train) | _pairs(split.test) == _pairs(ds)


def test_carve_validation_splits_train_only() -> None:
    ds = make_tiny()
    outer = stratified_split(ds, ratio=0.75, seed=0)
    inner = carve_validation(outer, ratio=0.8, seed=1)
    assert inner.valid is not None
    assert _pairs(inner.train) | _pairs(inner.valid) == _pairs(outer.train)
    assert _pairs(inner.test) == _pairs(outer.test)


def test_negative_sampling_never_returns_a_positive() -> None:
    ds = make_tiny()
    matrix = ds.to_csr()
    users = np.repeat(np.arange(ds.n_users), 5)
    for distribution in ("uniform", "popularity"):
        negatives = sample_negatives(matrix, users, 4, rng=0, distribution=distribution)
        assert negatives.shape == (len(users), 4)
        assert not matrix.toarray()[users[:, None], negatives].any()
    assert np.array_equal(
        sample_negatives(matrix, users, 2, rng=5), sample_negatives(matrix, users, 2, rng=5)
    )


def test_negative_sampling_with_nearly_full_rows() -> None:
    frame = pd.DataFrame({"user_id": [0] * 9, "item_id": list(range(9))})
    items = pd.DataFrame({"item_id": list(range(10))})
    ds = Dataset.from_frames("t", frame, items=items)
    negatives = sample_negatives(ds.to_csr(), np.zeros(50, dtype=int), 1, rng=0)
    assert set(negatives.ravel()) == {9}


BAD = [
    (lambda ds: stratified_split(ds, ratio=1.5), r"ratio must be in \(0, 1\), got 1.5"),
    (lambda ds: stratified_split(ds, ratio="half"), r"ratio must be a number in \(0, 1\), got 'half'"),
    (lambda ds: random_split(ds, ratio=0), r"ratio must be in \(0, 1\), got 0"),
    (lambda ds: leave_one_out(ds, by="clock"), r"by must be one of 'timestamp', 'order'; got 'clock'"),
    (lambda ds: leave_one_out(ds, min_events=1), r"min_events must be at least 3, got 1"),
    (lambda ds: cold_item_split(ds, item_fraction=-0.1), r"item_fraction must be in \(0, 1\)"),
    (lambda ds: sample_negatives(ds.to_csr(), [0], 0), r"n_negatives must be a positive int, got 0"),
    (lambda ds: sample_negatives(ds.to_csr(), [0], 1, distribution="zipf"), r"distribution must be one of"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "message"), BAD)
def test_bad_split_arguments(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParetorecError, match=message):
        call(make_tiny())


def test_temporal_needs_timestamps() -> None:
    ds = Dataset.from_frames("t", pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2]}))
    with pytest.raises(ParetorecError, match=r"temporal_split needs timestamps; dataset 't'"):
        temporal_split(ds)
    with pytest.raises(ParetorecError, match=r"by='timestamp' needs timestamps"):
        leave_one_out(ds)


def test_leave_one_out_warns_about_tied_last_timestamps() -> None:
    import pandas as pd

    from paretorec.data import TiedTimestampsWarning

    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3],
            "item_id": [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4],
            # user 1: test and validation tie; user 2: validation ties with train; 3: clean
            "timestamp": [1, 2, 3, 3, 1, 2, 2, 3, 1, 2, 3, 4],
        }
    )
    ds = Dataset.from_frames("ties", frame, timestamp_col="timestamp")
    with pytest.warns(TiedTimestampsWarning, match=r"^leave_one_out: 1 user\(s\) .*row order"):
        leave_one_out(ds)  # user 2's validation event ties with a training event
    with pytest.warns(TiedTimestampsWarning, match=r"1 user\(s\)"):
        leave_one_out(ds, validation=False)  # user 1's test event ties with a kept one
    leave_one_out(ds, by="order")  # row order: no ties to report
    leave_one_out(ds, warn_ties=False)
