"""Any events table through one reader: CSV, TSV, Parquet, JSON Lines (also compressed).

:func:`read_table` reads one file by its format (from the extension, or given);
:func:`read_side_table` reads an item or user table through its mapping (id column, text
fields, categorical and multi-valued columns); :func:`load_events` builds a
:class:`~paretorec.data.Dataset` from an events file and optional side tables, checking
every mapped column and the rating scale; :func:`describe_dataset` says what was understood.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import DataFileError, ParetorecError, check_file, show
from ._dataset import ITEM, TIMESTAMP, USER, Dataset, DuplicatePolicy

FORMATS = ("auto", "csv", "tsv", "parquet", "jsonl")
_COMPRESSIONS = (".gz", ".bz2", ".zip", ".xz", ".zst")
_SUFFIXES = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
#: Common spellings of the id / time / rating columns, tried when no mapping is given.
USER_ALIASES = ("user_id", "user", "userid", "userId", "userID", "uid", "reviewer_id",
                "reviewerID", "customer_id", "visitor_id")  # fmt: skip
ITEM_ALIASES = ("item_id", "item", "itemid", "itemId", "itemID", "iid", "movie_id", "movieId",
                "movieID", "product_id", "asin", "sku", "parent_asin")  # fmt: skip
TIMESTAMP_ALIASES = ("timestamp", "time", "ts", "unixReviewTime", "datetime", "date", "event_time")
RATING_ALIASES = ("rating", "ratings", "stars", "overall", "score")


def table_format(path: str | Path, declared: str = "auto") -> str:
    """The format of ``path``: ``declared`` unless ``"auto"``, else from its extension."""
    if declared not in FORMATS:
        raise ParetorecError(
            f"format must be one of {', '.join(repr(f) for f in FORMATS)}; got {show(declared)}"
        )
    if declared != "auto":
        return declared
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise ParetorecError(
        f"format: cannot tell the format of {Path(path).name!r} from its extension; use one "
        f"of {', '.join(sorted(_SUFFIXES))} (optionally compressed: "
        f"{', '.join(_COMPRESSIONS)}) or set format = 'csv' / 'tsv' / 'parquet' / 'jsonl'"
    )


def read_table(
    path: str | Path, *, name: str = "path", format: str = "auto", **read_options: Any
) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet/JSON Lines file (compressed too) with a clear error on failure.

    A file with a header but no rows is refused (it would load as an empty data set).
    ``read_options`` go to the pandas reader (``sep``, ``names``, ``encoding``, ...).
    """
    file = check_file(path, name)
    kind = table_format(file, format)
    options = dict(read_options)
    try:
        if kind == "parquet":
            frame = pd.read_parquet(file, **options)
        elif kind == "jsonl":
            frame = pd.read_json(file, lines=True, **options)
        else:
            if kind == "tsv":
                options.setdefault("sep", "\t")
            sep = options.get("sep")
            if isinstance(sep, str) and len(sep) > 1:
                options.setdefault("engine", "python")  # multi-character separators ("::")
            frame = pd.read_csv(file, **options)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataFileError(f"{name}: cannot parse {file} as {kind}: {exc}") from exc
    except ImportError as exc:  # pragma: no cover - parquet engine missing
        raise DataFileError(f"{name}: cannot read {file}: {exc}") from exc
    if len(frame) == 0:
        raise DataFileError(
            f"{name}: {file} has no rows (columns: {list(frame.columns)}); nothing to load"
        )
    return frame


@dataclass(frozen=True)
class SideTable:
    """How to read an item or user table.

    Attributes:
        path: the file.
        id: its id column (renamed to the events' id column).
        text: text fields; several are joined into one ``text`` column (``"a | b"``).
        categorical: columns kept as categories (strings).
        multi: multi-valued columns and their separator (``{"tags": "|"}``), split into
            tuples of strings.
        format, read_options: as for :func:`read_table`.
    """

    path: str | Path
    id: str
    text: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    multi: Mapping[str, str] = field(default_factory=dict)
    format: str = "auto"
    read_options: Mapping[str, Any] = field(default_factory=dict)


def read_side_table(spec: SideTable, *, role: str, id_column: str) -> pd.DataFrame:
    """The table ``spec`` describes, its id column renamed to ``id_column``."""
    frame = read_table(spec.path, name=f"{role}.path", format=spec.format, **spec.read_options)
    columns = list(frame.columns)
    if spec.id not in columns:
        raise ParetorecError(
            f"{role}.id: {Path(spec.path).name} has no id column {spec.id!r}; "
            f"columns present: {columns}"
        )
    for kind, names in (("text", spec.text), ("categorical", spec.categorical),
                        ("multi", tuple(spec.multi))):  # fmt: skip
        for column in names:
            if column not in columns:
                raise ParetorecError(
                    f"{role}.{kind}: {Path(spec.path).name} has no column {column!r}; "
                    f"columns present: {columns}"
                )
    out = frame.rename(columns={spec.id: id_column}) if spec.id != id_column else frame.copy()
    for column, separator in spec.multi.items():
        out[column] = [_split_values(value, separator) for value in out[column]]
    for column in spec.categorical:
        out[column] = out[column].map(lambda v: None if _missing(v) else str(v)).astype(object)
    if spec.text:
        fields = [out[c].map(lambda v: "" if _missing(v) else str(v).strip()) for c in spec.text]
        joined = [" | ".join(part for part in parts if part) for parts in zip(*fields, strict=True)]
        out["text"] = joined
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _split_values(value: Any, separator: str) -> tuple[str, ...]:
    if _missing(value):
        return ()
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(separator) if part.strip())


def guess_column(columns: Sequence[str], aliases: Sequence[str]) -> str | None:
    """The first of ``aliases`` present in ``columns`` (case-insensitive), or None."""
    lower = {str(c).lower(): str(c) for c in columns}
    for alias in aliases:
        if alias.lower() in lower:
            return lower[alias.lower()]
    return None


def infer_scale(values: pd.Series, column: str) -> tuple[float, float]:
    """The usual rating scale of ``values``: the smallest top (5, 10, 100) holding the largest
    value, starting at 0 when some value lies in [0, 1), else at 1 (negatives never fit)."""
    numeric = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=np.float64)
    if len(numeric) == 0:
        raise ParetorecError(f"label column {column!r} has no numeric value")
    tops = [top for top in (5.0, 10.0, 100.0) if numeric.max() <= top]
    if not tops:
        raise ParetorecError(
            f"label column {column!r}: cannot infer its rating scale (values up to "
            f"{numeric.max():g} exceed 100); declare it (label_ranges = "
            f"{{ {column} = [low, high] }}) or set check_ranges = false"
        )
    low = 0.0 if ((numeric >= 0) & (numeric < 1)).any() else 1.0
    return low, tops[0]


def _timestamps(frame: pd.DataFrame, column: str, source: str) -> None:
    """Numeric timestamps stay; date strings become unix seconds."""
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values):
        return
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().all():
            frame[column] = numeric
            return
        parsed = pd.to_datetime(values, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ParetorecError(
            f"columns.timestamp: column {column!r} of {source} must hold numbers or dates; "
            f"row {row} holds {show(values.iloc[row])}"
        )
    stamps = pd.DatetimeIndex(parsed)
    if stamps.tz is None:
        stamps = stamps.tz_localize("UTC")
    frame[column] = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def load_events(
    path: str | Path,
    *,
    user: str | None = None,
    item: str | None = None,
    timestamp: str | None = None,
    labels: Sequence[str] | None = None,
    guess: bool = False,
    name: str | None = None,
    format: str = "auto",
    read_options: Mapping[str, Any] | None = None,
    items: SideTable | None = None,
    users: SideTable | None = None,
    duplicates: DuplicatePolicy = "error",
    label_ranges: Mapping[str, tuple[float, float]] | None = None,
    check_ranges: bool = True,
) -> Dataset:
    """A dataset from an events file through a column mapping.

    ``user`` / ``item`` name the id columns, ``timestamp`` the time column (numbers or
    dates), ``labels`` any numeric label columns. With ``guess`` the unmapped roles are
    looked up among common spellings (``user_id``, ``userId``, ``uid`` ...; a ``rating``
    column becomes a label). A label called like a rating (``rating``, ``stars``,
    ``overall``, ``score``) is checked against its declared range in ``label_ranges`` or,
    with ``check_ranges`` (default), the usual scale it fits (see :func:`infer_scale`).
    """
    source = Path(path).name
    frame = read_table(path, name="path", format=format, **dict(read_options or {}))
    columns = [str(c) for c in frame.columns]
    if guess:
        user = user or guess_column(columns, USER_ALIASES)
        item = item or guess_column(columns, ITEM_ALIASES)
        timestamp = timestamp or guess_column(columns, TIMESTAMP_ALIASES)
        if labels is None:
            rating = guess_column(columns, RATING_ALIASES)
            labels = [rating] if rating else []
    for role, column, aliases in (("user", user, USER_ALIASES), ("item", item, ITEM_ALIASES)):
        if column is None:
            raise ParetorecError(
                f"columns.{role}: {source} has none of the usual {role} id columns "
                f"({', '.join(aliases[:5])}, ...); map it (columns.{role} = '...'); "
                f"columns present: {columns}"
            )
    labels = list(labels or [])
    mapped = {"user": user, "item": item, "timestamp": timestamp}
    mapped.update({f"labels[{i}]": c for i, c in enumerate(labels)})
    for role, column in mapped.items():
        if column is not None and column not in columns:
            raise ParetorecError(
                f"columns.{role}: {source} has no column {column!r}; columns present: {columns}"
            )
    user, item = str(user), str(item)  # both checked just above
    if timestamp is not None:
        frame = frame.copy()
        _timestamps(frame, timestamp, source)
    ranges = {k: (float(v[0]), float(v[1])) for k, v in (label_ranges or {}).items()}
    unknown = sorted(set(ranges) - set(labels))
    if unknown:
        raise ParetorecError(
            f"label_ranges names {unknown}, which are not label columns; labels: {labels}"
        )
    if check_ranges:
        for column in labels:
            if column not in ranges and str(column).lower() in RATING_ALIASES:
                ranges[column] = infer_scale(frame[column], column)
    item_table = read_side_table(items, role="items", id_column=item) if items else None
    user_table = read_side_table(users, role="users", id_column=user) if users else None
    frame, item_table = _same_id_kind(frame, item_table, item)
    frame, user_table = _same_id_kind(frame, user_table, user)
    try:
        return Dataset.from_frames(
            name or _stem(path),
            frame,
            user_col=user,
            item_col=item,
            timestamp_col=timestamp,
            label_columns=labels,
            items=item_table,
            users=user_table,
            duplicates=duplicates,
            label_ranges=ranges,
        )
    except ParetorecError as exc:
        hint = " (declared or inferred scale; set check_ranges = false to skip)"
        message = str(exc) + (hint if "must be in [" in str(exc) else "")
        raise ParetorecError(f"{source}: {message}") from None


def _same_id_kind(
    frame: pd.DataFrame, table: pd.DataFrame | None, column: str
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Ids read as numbers in one file and as text in the other are compared as text."""
    if table is None:
        return frame, table
    numeric = pd.api.types.is_numeric_dtype
    if numeric(frame[column]) == numeric(table[column]):
        return frame, table
    frame, table = frame.copy(), table.copy()
    frame[column] = frame[column].astype(str).str.strip()
    table[column] = table[column].astype(str).str.strip()
    return frame, table


def _stem(path: str | Path) -> str:
    name = Path(path).name
    return name.split(".")[0] or name


def describe_dataset(dataset: Dataset) -> dict[str, Any]:
    """What a dataset holds: counts, columns, label ranges, time span, sparsity, gaps."""
    frame = dataset.interactions
    n_users, n_items, n = dataset.n_users, dataset.n_items, dataset.n_interactions
    info: dict[str, Any] = {
        "name": dataset.name,
        "users": n_users,
        "items": n_items,
        "interactions": n,
        "density": n / (n_users * n_items) if n_users and n_items else 0.0,
        "items_without_interactions": int((dataset.item_popularity() == 0).sum()),
        "users_without_interactions": int((dataset.user_activity() == 0).sum()),
        "interactions_per_user_median": float(np.median(dataset.user_activity())),
        "labels": {
            col: {
                "min": float(frame[col].min()),
                "max": float(frame[col].max()),
                "mean": float(frame[col].mean()),
                "distinct": int(frame[col].nunique()),
            }
            for col in dataset.label_columns
        },
        "item_columns": [c for c in dataset.items.columns if c != "item_id"],
        "user_columns": [c for c in dataset.users.columns if c != "user_id"],
    }
    info["sparsity"] = 1.0 - info["density"]
    if dataset.has_timestamps:
        stamps = frame[TIMESTAMP]
        info["timestamps"] = {"min": float(stamps.min()), "max": float(stamps.max())}
        if stamps.min() > 1e8:  # looks like unix seconds
            info["timestamps"]["from"] = str(pd.Timestamp(stamps.min(), unit="s").date())
            info["timestamps"]["to"] = str(pd.Timestamp(stamps.max(), unit="s").date())
    if "text" in dataset.items.columns:
        text = dataset.items["text"].map(lambda v: "" if _missing(v) else str(v).strip())
        info["items_without_text"] = int((text == "").sum())
    else:
        info["items_without_text"] = None
    duplicates = frame.duplicated([USER, ITEM]).sum()
    info["repeat_events"] = int(duplicates)
    return info


def item_text_from_training(
    train: Dataset,
    events: pd.DataFrame,
    *,
    text: str,
    user: str,
    item: str,
    max_texts: int = 5,
    separator: str = " | ",
) -> list[str]:
    """Item text built from per-interaction text (reviews) of the training pairs only.

    Text written with an interaction (a review) is known only once the interaction happened:
    joining every review of an item into its text leaks the held-out interactions (a test
    item's text then quotes the test user). This builds each item's text from the
    ``text`` column of the ``events`` rows whose (``user``, ``item``) raw ids form a pair of
    ``train``, at most ``max_texts`` per item (the first in the table), in item-code order;
    items without a training review get ``""``.
    """
    for column in (text, user, item):
        if column not in events.columns:
            raise ParetorecError(
                f"events has no column {column!r}; columns present: {list(events.columns)}"
            )
    pairs = train.interactions
    known = pd.DataFrame(
        {
            "_user": train.user_ids[pairs[USER].to_numpy()],
            "_item": train.item_ids[pairs[ITEM].to_numpy()],
        }
    ).drop_duplicates()
    rows = events[[user, item, text]].rename(columns={user: "_user", item: "_item", text: "_text"})
    for column in ("_user", "_item"):
        reference = known[column]
        if pd.api.types.is_numeric_dtype(reference) != pd.api.types.is_numeric_dtype(rows[column]):
            known[column] = reference.astype(str)
            rows[column] = rows[column].astype(str)
    kept = rows.merge(known, on=["_user", "_item"], how="inner")
    kept = kept[kept["_text"].map(lambda v: not _missing(v) and str(v).strip() != "")]
    joined = (
        kept.groupby("_item", sort=False)["_text"]
        .apply(lambda s: separator.join(str(v).strip() for v in s.iloc[:max_texts]))
        .to_dict()
    )
    return [joined.get(raw, "") for raw in train.item_ids]
