"""The dataset object: construction, id maps, policies and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paretorec import ParetorecError
from paretorec.data import Dataset

FRAME = pd.DataFrame(
    {
        "user_id": ["a", "a", "b", "c"],
        "item_id": [10, 11, 10, 12],
        "rating": [5.0, 3.0, 4.0, 1.0],
        "timestamp": [1, 2, 3, 4],
    }
)


def build(frame: pd.DataFrame = FRAME, **kwargs: object) -> Dataset:
    options: dict[str, object] = {
        "timestamp_col": "timestamp",
        "label_columns": ["rating"],
        "label_ranges": {"rating": (1, 5)},
    }
    options.update(kwargs)
    return Dataset.from_frames("t", frame, **options)  # type: ignore[arg-type]


def test_codes_and_id_maps_round_trip() -> None:
    ds = build()
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 3, 4)
    assert list(ds.user_ids[ds.interactions["user"]]) == list(FRAME["user_id"])
    assert list(ds.item_ids[ds.interactions["item"]]) == list(FRAME["item_id"])
    assert list(ds.user_index(["c", "a"])) == [2, 0]
    assert list(ds.item_index(12)) == [2]
    assert ds.to_csr("rating")[0, 0] == 5.0
    assert "users=3" in repr(ds)


def test_side_tables_add_cold_items_in_their_order() -> None:
    items = pd.DataFrame({"item_id": [12, 99, 10, 11], "genres": [("x",), ("y", "z"), (), ("x",)]})
    ds = build(items=items)
    assert list(ds.item_ids) == [12, 99, 10, 11]
    assert ds.item_popularity().tolist() == [1, 0, 2, 1]
    matrix, vocabulary = ds.item_multi_hot("genres")
    assert vocabulary == ["x", "y", "z"]
    assert matrix.toarray().tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 0]]


@pytest.mark.parametrize(
    ("policy", "expected_rating"),
    [("first", 5.0), ("last", 2.0)],
)
def test_duplicate_policies(policy: str, expected_rating: float) -> None:
    frame = pd.concat([FRAME, FRAME.iloc[[0]].assign(rating=2.0, timestamp=9)])
    ds = build(frame, duplicates=policy)
    assert ds.n_interactions == 4
    assert ds.to_csr("rating")[0, 0] == expected_rating


def test_keep_policy_keeps_repeat_events_and_counts_pairs_once_in_matrices() -> None:
    frame = pd.concat([FRAME, FRAME.iloc[[0]].assign(timestamp=9)])
    ds = build(frame, duplicates="keep")
    assert ds.n_interactions == 5
    assert ds.to_csr().nnz == 4


BAD_INPUT = [
    (dict(frame=FRAME.drop(columns=["rating"])), r"missing column\(s\) \['rating'\]"),
    (dict(frame=FRAME.rename(columns={"user_id": "uid"})), r"missing column\(s\) \['user_id'\]"),
    (dict(frame=FRAME.assign(rating=[5.0, np.nan, 4.0, 1.0])), r"'rating' must be numeric without NaN; row 1"),
    (dict(frame=FRAME.assign(rating=[5.0, 7.0, 4.0, 1.0])), r"'rating' must be in \[1, 5\]; row 1 holds 7.0"),
    (dict(frame=FRAME.assign(rating=["5", "x", "4", "1"])), r"row 1 holds 'x'"),
    (dict(frame=FRAME.assign(timestamp=[1, 2, "late", 4])), r"'timestamp' must be numeric.*row 2 holds 'late'"),
    (dict(frame=pd.concat([FRAME, FRAME.iloc[[1]]])), r"duplicate \(user, item\) pairs, e.g. \('a', 11\)"),
    (dict(frame=FRAME.assign(user_id=["a", None, "b", "c"])), r"'user_id' has a missing id at row 1"),
    (dict(duplicates="sum"), r"duplicates must be one of 'error', 'first', 'last', 'keep'; got 'sum'"),
    (dict(items=pd.DataFrame({"sku": [1]})), r"items table must have the id column 'item_id'"),
    (dict(items=pd.DataFrame({"item_id": [10, 10]})), r"items table lists id 10 more than once"),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "message"), BAD_INPUT)
def test_bad_input_is_named(kwargs: dict[str, object], message: str) -> None:
    frame = kwargs.pop("frame", FRAME)
    with pytest.raises(ParetorecError, match=message):
        build(frame, **kwargs)  # type: ignore[arg-type]


def test_unknown_ids_are_named() -> None:
    ds = build()
    with pytest.raises(ParetorecError, match=r"unknown user id 'zz' \(1 unknown\)"):
        ds.user_index(["a", "zz"])
    with pytest.raises(ParetorecError, match=r"unknown item id 5"):
        ds.item_index([5])
    with pytest.raises(ParetorecError, match=r"column must be an item column; got 'genre'"):
        ds.item_multi_hot("genre")


def test_interactions_must_be_a_frame() -> None:
    with pytest.raises(ParetorecError, match=r"interactions must be a pandas DataFrame, got list"):
        Dataset.from_frames("t", [1, 2])  # type: ignore[arg-type]
