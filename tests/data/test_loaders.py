"""Loaders on the real files (skipped without them) and on malformed copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paretorec import DataFileError, ParetorecError
from paretorec.data import (
    leave_one_out,
    list_datasets,
    load_amazon_scientific,
    load_dataset,
    load_movielens_1m,
    load_movielens_100k,
    load_table,
)


def test_registry_lists_every_loader() -> None:
    assert {"movielens-100k", "movielens-1m", "amazon-scientific"} <= set(list_datasets())
    with pytest.raises(ParetorecError, match=r"dataset must be one of .*; got 'ml-20m'"):
        load_dataset("ml-20m")


def test_movielens_100k(ml100k_dir: Path) -> None:
    ds = load_movielens_100k(ml100k_dir)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1682, 100_000)
    assert ds.label_columns == ("rating",)
    assert ds.interactions["rating"].value_counts().sort_index().tolist() == [
        6110, 11370, 27145, 34174, 21201
    ]  # fmt: skip
    toy = ds.items.iloc[ds.item_index(1)[0]]
    assert toy["title"] == "Toy Story (1995)" and toy["year"] == 1995
    assert toy["genres"] == ("Animation", "Children's", "Comedy")
    assert (ds.users["gender"] == "M").sum() == 670
    assert set(ds.users["age_band"]) <= {"<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"}
    # first row of u.data is (196, 242, 3, 881250949): file order is kept
    first_user, first_item = ds.interactions[["user", "item"]].to_numpy()[0]
    assert ds.user_ids[first_user] == 196 and ds.item_ids[first_item] == 242


def test_load_dataset_through_env_var(ml100k_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARETOREC_DATA_DIR", str(ml100k_dir.parent))
    assert load_dataset("movielens-100k").n_interactions == 100_000


def test_movielens_1m_pairs(ml1m_dir: Path) -> None:
    ds = load_movielens_1m(ml1m_dir)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (6040, 3706, 1_000_209)
    assert ds.label_columns == () and not ds.has_timestamps
    assert (ds.users["gender"] == "M").sum() == 4331
    assert ds.items["genres"].iloc[0] == ("Animation", "Children's", "Comedy")


def test_movielens_1m_official_layout(tmp_path: Path, ml1m_dir: Path) -> None:
    for name in ("movies.dat", "users.dat"):
        shutil.copy(ml1m_dir / name, tmp_path / name)
    (tmp_path / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    )
    ds = load_movielens_1m(tmp_path)
    assert ds.n_interactions == 3 and ds.label_columns == ("rating",) and ds.has_timestamps
    (tmp_path / "ratings.dat").write_text("1::1193::9::978300760\n")
    with pytest.raises(ParetorecError, match=r"'rating' must be in \[1, 5\]; row 0 holds 9"):
        load_movielens_1m(tmp_path)


def test_amazon_scientific_rebuilds_the_release_split(amazon_dir: Path) -> None:
    ds = load_amazon_scientific(amazon_dir)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (8442, 4385, 59_427)
    assert (ds.items["text"].str.len() > 0).all()
    split = leave_one_out(ds, by="timestamp")
    test = pd.read_csv(amazon_dir / "Scientific.test.inter", sep="\t")
    valid = pd.read_csv(amazon_dir / "Scientific.valid.inter", sep="\t")
    item2index = pd.read_csv(amazon_dir / "Scientific.item2index", sep="\t", header=None)
    code_of_asin = dict(zip(item2index[0], item2index[1], strict=True))
    for part, frame in ((split.test, test), (split.valid, valid)):
        assert part is not None and part.n_interactions == 8442
        ours = part.interactions.sort_values("user")
        asins = ds.item_ids[ours["item"].to_numpy()]
        assert [code_of_asin[a] for a in asins] == frame["item_id:token"].tolist()
    assert split.train.n_interactions == 34_101 + 8442  # targets + each user's first item


def _copy_ml100k(src: Path, dst: Path) -> Path:
    for name in ("u.data", "u.item", "u.user", "u.genre"):
        shutil.copy(src / name, dst / name)
    return dst


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("u.data", None, r"u.data: file not found"),
        ("u.data", "1\t2\t3\n", r"u.data: .* does not have the expected 4"),
        ("u.data", "1\t2\t9\t5\n", r"'rating' must be in \[1, 5\]; row 0 holds 9"),
        ("u.data", "1\t2\t\t5\n", r"'rating' must be numeric without NaN; row 0"),
        (
            "u.data",
            "x\t2\t3\t5\n",
            r"u.data: column 'user_id' must be an integer; line 1 holds 'x'",
        ),
        ("u.data", "1\t2\t3\t5\n1\t2\t4\t6\n", r"duplicate \(user, item\) pairs, e.g. \(1, 2\)"),
        ("u.data", "", r"u.data: .* is empty"),
    ],
)
def test_malformed_movielens_files(
    ml100k_dir: Path, tmp_path: Path, file: str, content: str | None, message: str
) -> None:
    folder = _copy_ml100k(ml100k_dir, tmp_path)
    if content is None:
        (folder / file).unlink()
    else:
        (folder / file).write_text(content)
    with pytest.raises(ParetorecError, match=message):
        load_movielens_100k(folder)


def test_unreadable_file_is_named(ml100k_dir: Path, tmp_path: Path) -> None:
    folder = _copy_ml100k(ml100k_dir, tmp_path)
    (folder / "u.user").unlink()
    (folder / "u.user").mkdir()
    with pytest.raises(DataFileError, match=r"u.user: not a regular file"):
        load_movielens_100k(folder)


def test_load_table_csv_and_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "uid": [1, 1, 2],
            "sku": ["x", "y", "x"],
            "ts": [3, 4, 5],
            "click": [1, 0, 1],
            "buy": [0, 0, 1],
        }
    )
    frame.to_csv(tmp_path / "events.csv", index=False)
    frame.to_parquet(tmp_path / "events.parquet")
    mapping = {"user": "uid", "item": "sku", "timestamp": "ts", "labels": ["click", "buy"]}
    for path in (tmp_path / "events.csv", tmp_path / "events.parquet"):
        ds = load_table(path, columns=mapping)
        assert ds.n_interactions == 3 and ds.label_columns == ("click", "buy")
        assert np.array_equal(ds.to_csr("buy").toarray(), [[0, 0], [1, 0]])


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"user": "uid"}, r"columns must map the role 'item'"),
        ({"user": "uid", "item": "sku", "rating": "r"}, r"unknown role\(s\) \['rating'\]"),
        ({"user": "uid", "item": "SKU"}, r"missing column\(s\) \['SKU'\]; columns present"),
    ],
)
def test_load_table_bad_mapping(tmp_path: Path, columns: dict[str, str], message: str) -> None:
    pd.DataFrame({"uid": [1], "sku": ["x"]}).to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(ParetorecError, match=message):
        load_table(tmp_path / "e.csv", columns=columns)


def test_load_table_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"path: file not found: .*nope.csv"):
        load_table(tmp_path / "nope.csv", columns={"user": "u", "item": "i"})
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataFileError, match=r"path: cannot parse .*bad.parquet"):
        load_table(tmp_path / "bad.parquet", columns={"user": "u", "item": "i"})
