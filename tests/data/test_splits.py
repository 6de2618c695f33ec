"""Splitters: exact reproduction of the Microsoft Recommenders split, and invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretorec import ParetorecError
from paretorec.benchmarks._peers import msr_python, run_peer
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


def reference_stratified(
    frame: pd.DataFrame, ratio: float, seed: int, filter_by: str = "user"
) -> pd.DataFrame:
    """Independent pandas restatement of the released (1.2.1) ``python_stratified_split``.

    Per group, rows ordered by a legacy-global uniform draw; ``rank <= round(ratio * count)``
    (``round`` on a Series: numpy's, half to even) goes to train.
    """
    column = "user_id" if filter_by == "user" else "item_id"
    data = frame.copy()
    np.random.seed(seed)  # noqa: NPY002 - the reference uses the legacy global generator
    data["random"] = np.random.rand(data.shape[0])  # noqa: NPY002
    data = data.sort_values([column, "random"])
    groups = data.groupby(column)
    data["count"] = groups[column].transform("count")
    data["rank"] = groups.cumcount() + 1
    return data[data["rank"] <= round(ratio * data["count"])]


def _id_frame(ds: Dataset) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ds.user_ids[ds.interactions["user"]],
            "item_id": ds.item_ids[ds.interactions["item"]],
        }
    )


def _id_pairs(ds: Dataset) -> set[tuple[int, int]]:
    frame = _id_frame(ds)
    return set(zip(frame["user_id"], frame["item_id"], strict=True))


@pytest.mark.parametrize(
    ("filter_by", "n_train"), [("user", 74_992), ("item", None)], ids=["user", "item"]
)
def test_stratified_split_matches_released_rule_row_for_row(
    ml100k: Dataset, filter_by: str, n_train: int | None
) -> None:
    split = stratified_split(ml100k, ratio=0.75, seed=42, filter_by=filter_by)
    expected = reference_stratified(_id_frame(ml100k), 0.75, 42, filter_by)
    assert _id_pairs(split.train) == set(zip(expected["user_id"], expected["item_id"], strict=True))
    assert split.train.n_interactions + split.test.n_interactions == 100_000
    if n_train is not None:  # the released function's count (the issue measured it)
        assert split.train.n_interactions == n_train


def test_stratified_split_rounds_half_to_even() -> None:
    # Users with 2, 6 and 10 events: 0.75 * n = 1.5, 4.5, 7.5 -> 2, 4, 8 training rows.
    frame = pd.DataFrame(
        {
            "user_id": [1] * 2 + [2] * 6 + [3] * 10,
            "item_id": list(range(2)) + list(range(6)) + list(range(10)),
        }
    )
    split = stratified_split(Dataset.from_frames("t", frame), ratio=0.75, seed=0)
    assert split.train.user_activity().tolist() == [2, 4, 8]


def test_stratified_split_by_item_stratifies_items(ml100k: Dataset) -> None:
    split = stratified_split(ml100k, ratio=0.75, seed=42, filter_by="item")
    counts = np.bincount(ml100k.interactions["item"], minlength=ml100k.n_items)
    kept = np.bincount(split.train.interactions["item"], minlength=ml100k.n_items)
    assert np.array_equal(kept, np.round(0.75 * counts))


@pytest.mark.skipif(
    msr_python(required=False) is None,
    reason="no Microsoft Recommenders environment (.venv-msr or $PARETOREC_MSR_PYTHON)",
)
@pytest.mark.parametrize("filter_by", ["user", "item"])
def test_stratified_split_equals_the_released_package(
    ml100k: Dataset, filter_by: str, tmp_path: Path
) -> None:
    """Ours against ``recommenders`` 1.2.1 itself, run in its own environment."""
    path = tmp_path / "interactions.csv"
    frame = _id_frame(ml100k).rename(columns={"user_id": "user", "item_id": "item"})
    frame.to_csv(path, index=False)
    run = run_peer(
        "msr_stratified_split",
        {"interactions": path, "ratio": 0.75, "seed": 42, "filter_by": filter_by},
        python=msr_python(),
        stream=False,
        threads=1,
        timeout=600,
    )
    assert run.result["recommenders"] == "1.2.1"
    split = stratified_split(ml100k, ratio=0.75, seed=42, filter_by=filter_by)
    released = frame.iloc[run.result["train_rows"]]
    assert _id_pairs(split.train) == set(zip(released["user"], released["item"], strict=True))
    assert split.train.n_interactions == run.result["n_train"]
    if filter_by == "user":
        assert run.result["n_train"] == 74_992


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
    (lambda ds: stratified_split(ds, filter_by="session"), r"filter_by must be one of 'user', 'item'; got 'session'"),
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
