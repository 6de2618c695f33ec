"""Dataset loaders and their registry.

``load_dataset(name)`` finds the files (explicit folder, ``PARETOREC_DATA_DIR``, the user
cache, or a verified download of the official release) and parses them into a
:class:`~paretorec.data.Dataset`. ``load_table`` reads any CSV/Parquet interaction file
through a column mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import DataFileError, ParetorecError, check_file
from ._dataset import Dataset, DuplicatePolicy
from ._tables import read_table

Loader = Callable[..., Dataset]
_REGISTRY: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Decorator adding a loader ``fn(folder: Path, **options) -> Dataset`` to the registry.

    :func:`load_dataset` then finds the folder: ``data_dir`` itself or ``data_dir/<name>``,
    else ``$PARETOREC_DATA_DIR/<name>``, else the cache's ``<name>`` folder (names with a
    :data:`~paretorec.data.DATASETS` entry use their pinned layout instead).
    """
    if not isinstance(name, str) or not name.strip():
        raise ParetorecError(f"name must be a non-empty string, got {name!r}")

    def decorate(fn: Loader) -> Loader:
        _REGISTRY[name] = fn
        return fn

    return decorate


def list_datasets() -> list[str]:
    return sorted(_REGISTRY)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    download: bool = False,
    **options: Any,
) -> Dataset:
    """Load a registered dataset by name.

    Files are looked for in ``data_dir`` (the dataset folder or its parent), then
    ``$PARETOREC_DATA_DIR``, then the user cache; ``download=True`` fetches the official
    release (sha256-verified) into the cache when none has them. An explicit ``data_dir``
    wins: when it is given and does not hold the data, the error says so instead of
    silently reading another copy.
    """
    if name not in _REGISTRY:
        raise ParetorecError(f"dataset must be one of {', '.join(list_datasets())}; got {name!r}")
    from ._download import DATASETS, locate_dataset

    if name in DATASETS:
        folder = locate_dataset(name, data_dir, download=download)
        if data_dir is not None and not _inside(folder, Path(data_dir)):
            raise DataFileError(
                f"data_dir: {data_dir} does not hold {name!r} (it was found only in {folder}); "
                "the explicit data_dir wins over $PARETOREC_DATA_DIR: fix it or leave it out"
            )
    else:
        folder = _registered_folder(name, data_dir)
    return _REGISTRY[name](Path(folder), **options)


def _inside(folder: Path, root: Path) -> bool:
    try:
        Path(folder).resolve().relative_to(root.expanduser().resolve())
    except ValueError:
        return False
    return True


def _registered_folder(name: str, data_dir: str | Path | None) -> Path:
    """The folder of a user-registered data set (no pinned layout): see register_dataset."""
    import os

    from ._download import DATA_DIR_ENV, default_cache_dir

    places: list[Path] = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        places += [root / name, root]
    else:
        env = os.environ.get(DATA_DIR_ENV, "").strip()
        if env:
            places.append(Path(env).expanduser() / name)
        places.append(default_cache_dir() / name)
    for place in places:
        if place.is_dir():
            return place
    raise DataFileError(
        f"name: dataset {name!r} (a registered loader) needs its folder; looked in "
        f"{', '.join(str(p) for p in places)}. Pass data_dir=... (command line: --data-dir) "
        f"or put the files in ${DATA_DIR_ENV}/{name}/"
    )


# --------------------------------------------------------------------------- generic
def load_table(
    path: str | Path,
    *,
    columns: Mapping[str, Any],
    name: str | None = None,
    items: str | Path | None = None,
    users: str | Path | None = None,
    duplicates: DuplicatePolicy = "error",
    label_ranges: dict[str, tuple[float, float]] | None = None,
    read_options: Mapping[str, Any] | None = None,
) -> Dataset:
    """Load interactions from a CSV/TSV/Parquet/JSON Lines file through a column mapping.

    ``columns`` maps the roles ``user`` and ``item`` (required), ``timestamp`` (optional)
    and ``labels`` (optional list) to column names of the file, e.g.
    ``{"user": "uid", "item": "sku", "timestamp": "ts", "labels": ["click", "buy"]}``.
    Optional ``items`` / ``users`` files must hold the same id column names.
    """
    unknown = set(columns) - {"user", "item", "timestamp", "labels"}
    if unknown:
        raise ParetorecError(
            f"columns has unknown role(s) {sorted(unknown)}; "
            "roles are user, item, timestamp, labels"
        )
    for role in ("user", "item"):
        if role not in columns:
            raise ParetorecError(f"columns must map the role {role!r} to a column name")
    labels = columns.get("labels", [])
    if isinstance(labels, str):
        labels = [labels]
    frame = read_table(path, name="path", **dict(read_options or {}))
    item_table = read_table(items, name="items") if items is not None else None
    user_table = read_table(users, name="users") if users is not None else None
    return Dataset.from_frames(
        name or Path(path).stem,
        frame,
        user_col=columns["user"],
        item_col=columns["item"],
        timestamp_col=columns.get("timestamp"),
        label_columns=list(labels),
        items=item_table,
        users=user_table,
        duplicates=duplicates,
        label_ranges=label_ranges,
    )


def _read_delimited(
    path: Path, name: str, sep: str, names: Sequence[str], encoding: str = "utf-8"
) -> pd.DataFrame:
    """Strict reader for the fixed-layout MovieLens files."""
    check_file(path, name)
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            names=list(names),
            header=None,
            engine="python" if len(sep) > 1 else "c",
            encoding=encoding,
            dtype=str,
            keep_default_na=False,
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{name}: cannot parse {path}: {exc}") from exc
    if frame.empty:
        raise DataFileError(f"{name}: {path} is empty")
    if (frame[names[-1]] == "").all() and len(names) > 2:
        raise DataFileError(
            f"{name}: {path} does not have the expected {len(names)} {sep!r}-separated fields"
        )
    return frame


def _to_int(frame: pd.DataFrame, column: str, file: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFileError(
            f"{file}: column {column!r} must be an integer; line {row + 1} holds "
            f"{frame[column].iloc[row]!r}"
        )
    return values.astype(np.int64)


_YEAR = re.compile(r"\((\d{4})\)\s*$")


def _title_year(title: pd.Series) -> pd.Series:
    return title.str.extract(_YEAR, expand=False).astype("Int64")


AGE_BANDS = ((0, 18, "<18"), (18, 25, "18-24"), (25, 35, "25-34"), (35, 45, "35-44"),
             (45, 50, "45-49"), (50, 56, "50-55"), (56, 200, "56+"))  # fmt: skip


def age_band(age: pd.Series) -> pd.Series:
    """MovieLens-1M age bands (<18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+)."""
    out = pd.Series(pd.NA, index=age.index, dtype="object")
    for low, high, label in AGE_BANDS:
        out[(age >= low) & (age < high)] = label
    return out


# --------------------------------------------------------------------------- MovieLens
@register_dataset("movielens-100k")
def load_movielens_100k(folder: str | Path) -> Dataset:
    """MovieLens-100k: ``u.data`` (ratings), ``u.item`` (titles, genres), ``u.user``.

    Interactions keep the file order of ``u.data`` (the order splitters see), with
    ``rating`` (1-5) as label and the unix ``timestamp``. Items carry ``title``,
    ``year``, ``release_date`` and ``genres`` (a tuple of genre names; "unknown" is kept
    as a genre); users carry ``age``, ``age_band``, ``gender``, ``occupation``, ``zip``.
    """
    root = Path(folder)
    ratings = _read_delimited(
        root / "u.data", "u.data", "\t", ["user_id", "item_id", "rating", "timestamp"]
    )
    for col in ("user_id", "item_id", "timestamp"):
        ratings[col] = _to_int(ratings, col, "u.data")
    ratings["rating"] = pd.to_numeric(ratings["rating"], errors="coerce")

    genre_table = _read_delimited(root / "u.genre", "u.genre", "|", ["genre", "index"])
    genre_table = genre_table[genre_table["genre"] != ""]
    genre_names = genre_table.sort_values("index", key=lambda s: s.astype(int))["genre"].tolist()
    item_cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *genre_names]
    items = _read_delimited(root / "u.item", "u.item", "|", item_cols, encoding="latin-1")
    items["item_id"] = _to_int(items, "item_id", "u.item")
    flags = items[genre_names].to_numpy() == "1"
    items["genres"] = [tuple(np.asarray(genre_names)[row].tolist()) for row in flags]
    items["year"] = _title_year(items["title"])
    items = items[["item_id", "title", "year", "release_date", "imdb_url", "genres"]]

    users = _read_delimited(
        root / "u.user", "u.user", "|", ["user_id", "age", "gender", "occupation", "zip"]
    )
    users["user_id"] = _to_int(users, "user_id", "u.user")
    users["age"] = _to_int(users, "age", "u.user")
    users["age_band"] = age_band(users["age"])
    return Dataset.from_frames(
        "movielens-100k",
        ratings,
        user_col="user_id",
        item_col="item_id",
        timestamp_col="timestamp",
        label_columns=["rating"],
        items=items.sort_values("item_id"),
        users=users.sort_values("user_id"),
        label_ranges={"rating": (1, 5)},
    )


ML1M_AGES = {1: "<18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}


@register_dataset("movielens-1m")
def load_movielens_1m(folder: str | Path) -> Dataset:
    """MovieLens-1M: the official ``ratings.dat`` layout, or the implicit pairs parquet.

    With ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``) the dataset has a
    ``rating`` label and timestamps. With only ``ratings_user_movie_pairs.parquet`` (the
    partial copy: every (user, movie) pair, no rating, no time) it is implicit feedback
    with no labels; the row order of the original file is kept.
    """
    root = Path(folder)
    ratings_file = root / "ratings.dat"
    pairs_file = root / "ratings_user_movie_pairs.parquet"
    if ratings_file.exists():
        ratings = _read_delimited(
            ratings_file, "ratings.dat", "::", ["user_id", "item_id", "rating", "timestamp"]
        )
        for col in ("user_id", "item_id", "timestamp"):
            ratings[col] = _to_int(ratings, col, "ratings.dat")
        ratings["rating"] = pd.to_numeric(ratings["rating"], errors="coerce")
        timestamp_col: str | None = "timestamp"
        labels = ["rating"]
    elif pairs_file.exists():
        raw = read_table(pairs_file, name="ratings_user_movie_pairs.parquet")
        missing = {"userID", "movieID"} - set(raw.columns)
        if missing:
            raise DataFileError(
                f"ratings_user_movie_pairs.parquet: missing column(s) {sorted(missing)}; "
                f"columns present: {list(raw.columns)}"
            )
        ratings = pd.DataFrame(
            {
                "user_id": _to_int(raw, "userID", "ratings_user_movie_pairs.parquet"),
                "item_id": _to_int(raw, "movieID", "ratings_user_movie_pairs.parquet"),
            }
        )
        timestamp_col, labels = None, []
    else:
        raise DataFileError(
            f"folder: {root} has neither ratings.dat nor ratings_user_movie_pairs.parquet"
        )
    movies = _read_delimited(
        root / "movies.dat", "movies.dat", "::", ["item_id", "title", "genres"], encoding="latin-1"
    )
    movies["item_id"] = _to_int(movies, "item_id", "movies.dat")
    movies["genres"] = [tuple(g.split("|")) if g else () for g in movies["genres"]]
    movies["year"] = _title_year(movies["title"])
    users = _read_delimited(
        root / "users.dat", "users.dat", "::", ["user_id", "gender", "age", "occupation", "zip"]
    )
    for col in ("user_id", "age", "occupation"):
        users[col] = _to_int(users, col, "users.dat")
    users["age_band"] = users["age"].map(ML1M_AGES)
    # The catalogue is the set of rated movies (3,706), as in every published ML-1M result;
    # listed-but-unrated movies would only add items nobody can ever have in a test set.
    rated = movies[movies["item_id"].isin(ratings["item_id"])]
    return Dataset.from_frames(
        "movielens-1m",
        ratings,
        user_col="user_id",
        item_col="item_id",
        timestamp_col=timestamp_col,
        label_columns=labels,
        items=rated.sort_values("item_id"),
        users=users.sort_values("user_id"),
        label_ranges={"rating": (1, 5)} if labels else None,
    )


# --------------------------------------------------------------------------- Amazon
@register_dataset("amazon-scientific")
def load_amazon_scientific(folder: str | Path) -> Dataset:
    """Amazon 2018 Industrial & Scientific in the UniSRec release format.

    The release has no timestamps, only each user's chronological sequence split
    leave-one-out (train / valid / test). The sequences are rebuilt and stored with the
    0-based sequence position in ``timestamp``, so that
    ``leave_one_out(dataset, by="timestamp")`` reproduces the release's own split exactly.
    Raw ids are the Amazon ASINs / reviewer ids; items carry their ``text``.
    """
    root = Path(folder)
    item_map = _read_index(root / "Scientific.item2index", "Scientific.item2index")
    user_map = _read_index(root / "Scientific.user2index", "Scientific.user2index")
    text_file = check_file(root / "Scientific.text", "Scientific.text")
    texts = pd.read_csv(text_file, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    texts.columns = ["item_id", "text"]
    parts = {}
    for part in ("train", "valid", "test"):
        name = f"Scientific.{part}.inter"
        frame = pd.read_csv(
            check_file(root / name, name), sep="\t", dtype=str, keep_default_na=False
        )
        if frame.shape[1] != 3:
            raise DataFileError(f"{name}: expected 3 tab-separated columns, got {frame.shape[1]}")
        frame.columns = ["user", "history", "target"]
        frame["user"] = _to_int(frame, "user", name)
        frame["target"] = _to_int(frame, "target", name)
        parts[part] = frame
    train = parts["train"]
    # Rows of one user are listed newest first; the oldest row's history is [first item].
    oldest = train.groupby("user", sort=True).tail(1)
    first_items = oldest["history"].str.split().str[0].astype(np.int64)
    rows = [
        pd.DataFrame({"user": oldest["user"].to_numpy(), "item": first_items.to_numpy(), "key": 0})
    ]
    reversed_train = train.iloc[::-1]
    rows.append(pd.DataFrame({
        "user": reversed_train["user"].to_numpy(),
        "item": reversed_train["target"].to_numpy(),
        "key": 1,
    }))  # fmt: skip
    for key, part in ((2, "valid"), (3, "test")):
        frame = parts[part]
        rows.append(pd.DataFrame({"user": frame["user"], "item": frame["target"], "key": key}))
    events = pd.concat(rows, ignore_index=True)
    events["order"] = np.arange(len(events))
    events = events.sort_values(["user", "key", "order"], kind="stable")
    events["timestamp"] = events.groupby("user").cumcount().astype(np.float64)

    code_to_asin = pd.Series(item_map.index.to_numpy(), index=item_map.to_numpy())
    code_to_user = pd.Series(user_map.index.to_numpy(), index=user_map.to_numpy())
    unknown = ~events["item"].isin(code_to_asin.index)
    if unknown.any():
        raise DataFileError(
            f"item id {int(events['item'][unknown].iloc[0])} is not in Scientific.item2index"
        )
    interactions = pd.DataFrame({
        "user_id": code_to_user.reindex(events["user"]).to_numpy(),
        "item_id": code_to_asin.reindex(events["item"]).to_numpy(),
        "timestamp": events["timestamp"].to_numpy(),
    })  # fmt: skip
    items = pd.DataFrame({"item_id": code_to_asin.sort_index().to_numpy()})
    items = items.merge(texts, on="item_id", how="left")
    items["text"] = items["text"].fillna("").str.strip()
    users = pd.DataFrame({"user_id": code_to_user.sort_index().to_numpy()})
    return Dataset.from_frames(
        "amazon-scientific",
        interactions,
        user_col="user_id",
        item_col="item_id",
        timestamp_col="timestamp",
        items=items,
        users=users,
        duplicates="keep",  # 291 repeat purchases are real events of the sequences
    )


def _read_index(path: Path, name: str) -> pd.Series:
    frame = pd.read_csv(
        check_file(path, name), sep="\t", header=None, dtype=str, keep_default_na=False
    )
    if frame.shape[1] != 2:
        raise DataFileError(f"{name}: expected 2 tab-separated columns, got {frame.shape[1]}")
    frame.columns = ["raw", "code"]
    return pd.Series(_to_int(frame, "code", name).to_numpy(), index=frame["raw"].to_numpy())
