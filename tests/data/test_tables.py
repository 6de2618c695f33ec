"""Any events table through one reader: formats, mappings, side tables, DataConfig, errors."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from paretorec._validation import DataFileError, ParetorecError
from paretorec.data import (
    DataConfig,
    Dataset,
    describe_dataset,
    list_datasets,
    load_dataset,
    load_events,
    register_dataset,
)

EVENTS = pd.DataFrame(
    {
        "uid": ["a", "a", "a", "b", "b", "b", "c", "c", "c", "c"],
        "sku": ["x", "y", "z", "x", "y", "w", "y", "z", "w", "x"],
        "stars": [5, 4, 3, 2, 5, 4, 1, 3, 5, 4],
        "when": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0],
    }
)
ITEMS = pd.DataFrame(
    {
        "product": ["x", "y", "z", "w", "v"],
        "name": ["Red pen", "Blue pen", "", "Green ink", "Paper"],
        "blurb": ["fine tip", "", "", "bottled", "A4"],
        "tags": ["office|pen", "office|pen", "", "ink", "office"],
        "brand": ["acme", "acme", "zed", "zed", "acme"],
    }
)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    name = path.name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    elif ".jsonl" in name:
        text = "\n".join(json.dumps(row) for row in frame.to_dict(orient="records")) + "\n"
        if name.endswith(".gz"):
            with gzip.open(path, "wt") as handle:
                handle.write(text)
        else:
            path.write_text(text)
    else:
        frame.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    return path


@pytest.mark.parametrize(
    "file_name", ["e.csv", "e.tsv", "e.parquet", "e.jsonl", "e.csv.gz", "e.jsonl.gz", "e.tsv.gz"]
)
def test_every_format_reads_the_same_events(tmp_path: Path, file_name: str) -> None:
    path = _write(EVENTS, tmp_path / file_name)
    data = load_events(path, user="uid", item="sku", timestamp="when", labels=["stars"])
    assert (data.n_users, data.n_items, data.n_interactions) == (3, 4, 10)
    assert data.label_columns == ("stars",) and data.has_timestamps
    assert data.interactions["stars"].sum() == EVENTS["stars"].sum()


def test_side_tables_text_categorical_and_multi_valued(tmp_path: Path) -> None:
    config = DataConfig.from_dict(
        {
            "path": str(_write(EVENTS, tmp_path / "e.csv")),
            "columns": {"user": "uid", "item": "sku", "timestamp": "when", "labels": ["stars"]},
            "items": {
                "path": str(_write(ITEMS, tmp_path / "items.csv")),
                "id": "product",
                "text": ["name", "blurb"],
                "categorical": ["brand"],
                "multi": {"tags": "|"},
            },
        }
    )
    data = config.load()
    assert data.n_items == 5  # the item table lists a cold item
    row = data.items.set_index("item_id").loc["x"]
    assert row["text"] == "Red pen | fine tip" and row["tags"] == ("office", "pen")
    assert data.items.set_index("item_id").loc["z", "tags"] == ()
    info = describe_dataset(data)
    assert info["items_without_text"] == 1 and info["items_without_interactions"] == 1
    assert info["labels"]["stars"]["min"] == 1 and info["labels"]["stars"]["max"] == 5
    assert info["sparsity"] == pytest.approx(1 - 10 / 15)


def test_columns_are_guessed_and_dates_become_seconds(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "userId": [1, 1, 2, 2],
            "movieId": [10, 11, 10, 12],
            "rating": [4.5, 3.0, 5.0, 1.0],
            "timestamp": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"],
        }
    )
    data = DataConfig.from_dict({"path": str(_write(frame, tmp_path / "r.csv"))}).load()
    assert data.label_columns == ("rating",) and data.has_timestamps
    assert data.interactions["timestamp"].iloc[0] == pd.Timestamp("2020-01-01").timestamp()


@pytest.mark.parametrize("split", ["stratified", "temporal", "leave_one_out"])
def test_every_split_carves_validation(tmp_path: Path, split: str) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(20), 8),
            "item_id": np.concatenate([rng.choice(30, 8, replace=False) for _ in range(20)]),
            "timestamp": np.tile(np.arange(8), 20) + np.repeat(np.arange(20), 8) * 0.01,
        }
    )
    config = DataConfig.from_dict({"path": str(_write(frame, tmp_path / "e.csv")), "split": split})
    data = config.load()
    outer, inner = config.splits(data)
    assert inner.valid is not None and inner.valid.n_interactions > 0
    assert outer.train.n_interactions == inner.train.n_interactions + inner.valid.n_interactions
    assert outer.test.n_interactions + outer.train.n_interactions == data.n_interactions
    if split == "leave_one_out":
        assert outer.test.n_interactions == 20 and inner.valid.n_interactions == 20


def test_register_dataset_then_load_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "my-shop"
    folder.mkdir()
    _write(EVENTS, folder / "events.csv")

    @register_dataset("my-shop")
    def load_my_shop(path: Path) -> Dataset:
        return load_events(path / "events.csv", user="uid", item="sku", name="my-shop")

    try:
        assert "my-shop" in list_datasets()
        assert load_dataset("my-shop", tmp_path).n_interactions == 10  # parent form
        assert load_dataset("my-shop", folder).n_interactions == 10  # the folder itself
        monkeypatch.setenv("PARETOREC_DATA_DIR", str(tmp_path))
        assert DataConfig.from_dict({"name": "my-shop"}).load().name == "my-shop"
        monkeypatch.delenv("PARETOREC_DATA_DIR")
        monkeypatch.setenv("PARETOREC_CACHE_DIR", str(tmp_path / "empty-cache"))
        with pytest.raises(DataFileError, match=r"dataset 'my-shop' \(a registered loader\)"):
            load_dataset("my-shop")
    finally:
        from paretorec.data._loaders import _REGISTRY

        _REGISTRY.pop("my-shop", None)


def test_old_dataset_key_still_reads() -> None:
    config = DataConfig.from_dict({"dataset": "movielens-1m", "ratio": 0.5})
    assert config.name == "movielens-1m" and config.dataset == "movielens-1m"
    assert DataConfig().name == "movielens-100k"
    assert DataConfig.from_dict(config.model_dump(mode="json")) == config


def _events_file(tmp_path: Path) -> str:
    return str(_write(EVENTS, tmp_path / "e.csv"))


def _items_file(tmp_path: Path) -> str:
    return str(_write(ITEMS, tmp_path / "items.csv"))


COLUMNS = {"user": "uid", "item": "sku"}
#: (data section builder, expected message): every bad input names what to fix.
BAD_DATA: list[tuple[str, Any, str]] = [
    (
        "name and path",
        lambda t: {"name": "movielens-100k", "path": _events_file(t)},
        "name a registered data set (name = 'movielens-100k') or a table",
    ),
    (
        "name and dataset disagree",
        lambda t: {"name": "a", "dataset": "b"},
        "name 'a' and dataset 'b' disagree",
    ),
    ("columns without path", lambda t: {"columns": COLUMNS}, "columns describes a table"),
    (
        "unknown format",
        lambda t: {"path": str(_write(EVENTS, t / "e.csv")), "format": "xlsx"},
        "field 'format'",
    ),
    (
        "unknown extension",
        lambda t: {"path": str(_write(EVENTS, t / "e.xlsx"))},
        "cannot tell the format of 'e.xlsx'",
    ),
    (
        "missing mapped column",
        lambda t: {"path": _events_file(t), "columns": {"user": "uid", "item": "product"}},
        "columns.item: e.csv has no column 'product'; columns present: ['uid', 'sku'",
    ),
    (
        "missing label column",
        lambda t: {"path": _events_file(t), "columns": {**COLUMNS, "labels": ["rating"]}},
        "columns.labels[0]: e.csv has no column 'rating'",
    ),
    (
        "item table without the mapped id",
        lambda t: {"path": _events_file(t), "columns": COLUMNS, "items": {"path": _items_file(t)}},
        "items.id: items.csv has no id column 'sku'",
    ),
    (
        "feature column that does not exist",
        lambda t: {
            "path": _events_file(t),
            "columns": COLUMNS,
            "items": {"path": _items_file(t), "id": "product", "multi": {"genres": "|"}},
        },
        "items.multi: items.csv has no column 'genres'",
    ),
    (
        "text field that does not exist",
        lambda t: {
            "path": _events_file(t),
            "columns": COLUMNS,
            "items": {"path": _items_file(t), "id": "product", "text": ["title"]},
        },
        "items.text: items.csv has no column 'title'",
    ),
    (
        "header-only CSV",
        lambda t: {"path": str(_write(EVENTS.iloc[:0], t / "e.csv"))},
        "e.csv has no rows (columns: ['uid', 'sku', 'stars', 'when']); nothing to load",
    ),
    (
        "negative rating",
        lambda t: {
            "path": str(_write(EVENTS.assign(rating=[5, 4, 3, 2, 5, 4, -1, 3, 5, 4]), t / "e.csv")),
            "columns": {**COLUMNS, "labels": ["rating"]},
        },
        "label column 'rating' must be in [1.0, 5.0]; row 6 holds -1",
    ),
    (
        "rating beyond the declared range",
        lambda t: {
            "path": str(_write(EVENTS.rename(columns={"stars": "rating"}), t / "e.csv")),
            "columns": {**COLUMNS, "labels": ["rating"]},
            "label_ranges": {"rating": [1, 4]},
        },
        "label column 'rating' must be in [1.0, 4.0]",
    ),
    (
        "no user column to guess",
        lambda t: {"path": str(_write(EVENTS.rename(columns={"uid": "who"}), t / "e.csv"))},
        "columns.user: e.csv has none of the usual user id columns",
    ),
    (
        "duplicate pairs",
        lambda t: {
            "path": str(_write(pd.concat([EVENTS, EVENTS.iloc[:1]]), t / "e.csv")),
            "columns": COLUMNS,
        },
        "duplicate (user, item) pairs",
    ),
]


@pytest.mark.parametrize(("case", "build", "message"), BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_bad_data_sections_name_the_problem(
    tmp_path: Path, case: str, build: Any, message: str
) -> None:
    with pytest.raises(ParetorecError, match=re.escape(message)):
        DataConfig.from_dict(build(tmp_path), source="data").load()


def test_rating_scale_opt_out(tmp_path: Path) -> None:
    frame = EVENTS.assign(rating=[5, 4, 3, 2, 5, 4, -1, 3, 5, 4])
    raw = {
        "path": str(_write(frame, tmp_path / "e.csv")),
        "columns": {**COLUMNS, "labels": ["rating"]},
        "check_ranges": False,
    }
    assert DataConfig.from_dict(raw).load().interactions["rating"].min() == -1
    assert (
        DataConfig.from_dict({**raw, "check_ranges": True, "label_ranges": {"rating": [-1, 5]}})
        .load()
        .n_interactions
        == 10
    )


def test_item_text_from_training_reviews_only() -> None:
    from paretorec.data import item_text_from_training, stratified_split

    events = EVENTS.assign(
        review=[f"review {u}{i}" for u, i in zip(EVENTS["uid"], EVENTS["sku"], strict=True)]
    )
    data = Dataset.from_frames("r", events, user_col="uid", item_col="sku")
    split = stratified_split(data, ratio=0.6, seed=0)
    texts = item_text_from_training(split.train, events, text="review", user="uid", item="sku")
    assert len(texts) == data.n_items
    train_pairs = {
        (data.user_ids[u], data.item_ids[i])
        for u, i in split.train.interactions[["user", "item"]].to_numpy()
    }
    test_pairs = {
        (data.user_ids[u], data.item_ids[i])
        for u, i in split.test.interactions[["user", "item"]].to_numpy()
    }
    joined = " | ".join(texts)
    assert all(f"review {u}{i}" in joined for u, i in train_pairs)
    assert not any(f"review {u}{i}" in joined for u, i in test_pairs)  # no leakage
    with pytest.raises(ParetorecError, match=r"events has no column 'text'"):
        item_text_from_training(split.train, events, text="text", user="uid", item="sku")
