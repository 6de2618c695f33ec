"""The one dataset object every stage of paretorec reads.

Interactions are a columnar table keyed by contiguous integer codes (``user``, ``item``);
the raw ids live in ``user_ids`` / ``item_ids`` (code -> raw id) and are mapped back with
:meth:`Dataset.user_index` / :meth:`Dataset.item_index`. Splits share the id maps of the
dataset they came from, so a code means the same user or item in train, valid and test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import ParetorecError, check_choice, show

DuplicatePolicy = Literal["error", "first", "last", "keep"]
DUPLICATE_POLICIES = ("error", "first", "last", "keep")

USER = "user"
ITEM = "item"
TIMESTAMP = "timestamp"
RESERVED_COLUMNS = (USER, ITEM)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions plus item and user tables and the id maps both ways.

    Attributes:
        name: dataset name (for reports).
        interactions: one row per (user, item) event with integer codes in ``user`` and
            ``item``, an optional ``timestamp`` and any number of label columns.
        user_ids: raw id of each user code (``user_ids[code] == raw``).
        item_ids: raw id of each item code.
        items: item table, one row per item code in code order (text, categorical and
            multi-valued features such as ``genres`` as tuples of strings).
        users: user table, one row per user code in code order.
        label_columns: names of the interaction label columns (e.g. ``rating``).
    """

    name: str
    interactions: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray
    items: pd.DataFrame = field(default_factory=pd.DataFrame)
    users: pd.DataFrame = field(default_factory=pd.DataFrame)
    label_columns: tuple[str, ...] = ()

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_frames(
        cls,
        name: str,
        interactions: pd.DataFrame,
        *,
        user_col: str = "user_id",
        item_col: str = "item_id",
        timestamp_col: str | None = None,
        label_columns: Sequence[str] = (),
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        duplicates: DuplicatePolicy = "error",
        label_ranges: dict[str, tuple[float, float]] | None = None,
    ) -> Dataset:
        """Build a dataset from raw-id tables.

        ``items`` / ``users`` must carry the id column (``item_col`` / ``user_col``); every
        id they list becomes part of the catalogue / user base even without interactions
        (cold items and users). Ids that appear only in the interactions are added too.

        Duplicate (user, item) rows follow ``duplicates``: ``"error"`` (default) refuses
        them, ``"first"`` / ``"last"`` keep one row per pair, the earliest / latest by
        timestamp when there is one, else by row order; ``"keep"`` keeps every row (for
        event sequences with repeat consumption; user x item matrices then count a pair
        once).

        Label columns must be numeric and free of NaN; ``label_ranges`` maps a label to its
        inclusive valid range (e.g. ``{"rating": (1, 5)}``).
        """
        check_choice(duplicates, "duplicates", DUPLICATE_POLICIES)
        if not isinstance(interactions, pd.DataFrame):
            raise ParetorecError(
                f"interactions must be a pandas DataFrame, got {type(interactions).__name__}"
            )
        required = [user_col, item_col] + ([timestamp_col] if timestamp_col else [])
        required += list(label_columns)
        missing = [c for c in required if c not in interactions.columns]
        if missing:
            raise ParetorecError(
                f"interactions is missing column(s) {missing}; "
                f"columns present: {list(interactions.columns)}"
            )
        frame = interactions[required].copy()
        for col in (user_col, item_col):
            if frame[col].isna().any():
                row = int(np.flatnonzero(frame[col].isna().to_numpy())[0])
                raise ParetorecError(f"column {col!r} has a missing id at row {row}")
        _check_labels(frame, list(label_columns), label_ranges or {})
        if timestamp_col:
            ts = pd.to_numeric(frame[timestamp_col], errors="coerce")
            if ts.isna().any():
                row = int(np.flatnonzero(ts.isna().to_numpy())[0])
                raise ParetorecError(
                    f"column {timestamp_col!r} must be numeric without gaps; "
                    f"row {row} holds {show(interactions[timestamp_col].iloc[row])}"
                )
            frame[timestamp_col] = ts.astype(np.float64)

        frame = _resolve_duplicates(frame, user_col, item_col, timestamp_col, duplicates)

        user_ids = _id_order(frame[user_col], None if users is None else users, user_col, "users")
        item_ids = _id_order(frame[item_col], None if items is None else items, item_col, "items")
        user_codes = pd.Index(user_ids).get_indexer(frame[user_col])
        item_codes = pd.Index(item_ids).get_indexer(frame[item_col])

        table = pd.DataFrame({USER: user_codes.astype(np.int32), ITEM: item_codes.astype(np.int32)})
        if timestamp_col:
            table[TIMESTAMP] = frame[timestamp_col].to_numpy()
        for col in label_columns:
            table[col] = frame[col].to_numpy(dtype=np.float32)

        return cls(
            name=name,
            interactions=table,
            user_ids=np.asarray(user_ids),
            item_ids=np.asarray(item_ids),
            items=_side_table(items, item_col, item_ids, "item_id"),
            users=_side_table(users, user_col, user_ids, "user_id"),
            label_columns=tuple(label_columns),
        )

    def with_interactions(self, interactions: pd.DataFrame) -> Dataset:
        """A dataset over the same users, items and id maps with other interactions."""
        return replace(self, interactions=interactions.reset_index(drop=True))

    # ----------------------------------------------------------------- shape
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    @property
    def has_timestamps(self) -> bool:
        return TIMESTAMP in self.interactions.columns

    def __len__(self) -> int:
        return self.n_interactions

    def __repr__(self) -> str:
        labels = ", ".join(self.label_columns) or "none"
        return (
            f"Dataset(name={self.name!r}, users={self.n_users:,}, items={self.n_items:,}, "
            f"interactions={self.n_interactions:,}, labels=[{labels}], "
            f"timestamps={self.has_timestamps})"
        )

    # ----------------------------------------------------------------- ids
    def user_index(self, raw_ids: Iterable[Any] | Any) -> np.ndarray:
        """Codes of the given raw user ids; unknown ids raise a clear error."""
        return _lookup(self.user_ids, raw_ids, "user")

    def item_index(self, raw_ids: Iterable[Any] | Any) -> np.ndarray:
        """Codes of the given raw item ids; unknown ids raise a clear error."""
        return _lookup(self.item_ids, raw_ids, "item")

    # ----------------------------------------------------------------- views
    def to_csr(self, value: str | None = None, dtype: Any = np.float32) -> sp.csr_matrix:
        """User x item matrix; ones by default, or the given label column."""
        data = (
            np.ones(self.n_interactions, dtype=dtype)
            if value is None
            else self.interactions[value].to_numpy(dtype=dtype)
        )
        matrix = sp.csr_matrix(
            (data, (self.interactions[USER].to_numpy(), self.interactions[ITEM].to_numpy())),
            shape=(self.n_users, self.n_items),
            dtype=dtype,
        )
        matrix.sum_duplicates()  # repeat events of one pair ("keep" policy) add up
        return matrix

    def item_popularity(self) -> np.ndarray:
        """Interaction count of every item code."""
        return np.bincount(self.interactions[ITEM].to_numpy(), minlength=self.n_items)

    def user_activity(self) -> np.ndarray:
        """Interaction count of every user code."""
        return np.bincount(self.interactions[USER].to_numpy(), minlength=self.n_users)

    def item_multi_hot(self, column: str) -> tuple[sp.csr_matrix, list[str]]:
        """Multi-hot item x value matrix of a multi-valued item column (e.g. genres)."""
        if column not in self.items.columns:
            raise ParetorecError(
                f"column must be an item column; got {column!r}, "
                f"item columns are {list(self.items.columns)}"
            )
        values = self.items[column].tolist()
        vocabulary = sorted({v for row in values for v in _as_tuple(row)})
        position = {v: j for j, v in enumerate(vocabulary)}
        rows, cols = [], []
        for i, row in enumerate(values):
            for v in _as_tuple(row):
                rows.append(i)
                cols.append(position[v])
        matrix = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(self.n_items, len(vocabulary)),
        )
        return matrix, vocabulary


# --------------------------------------------------------------------------- helpers
def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _check_labels(
    frame: pd.DataFrame, label_columns: list[str], ranges: dict[str, tuple[float, float]]
) -> None:
    for col in label_columns:
        if col in RESERVED_COLUMNS:
            raise ParetorecError(f"label column may not be named {col!r} (reserved)")
        numeric = pd.to_numeric(frame[col], errors="coerce")
        bad = numeric.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ParetorecError(
                f"label column {col!r} must be numeric without NaN; "
                f"row {row} holds {show(frame[col].iloc[row])} ({int(bad.sum())} bad row(s))"
            )
        if col in ranges:
            low, high = ranges[col]
            out = ((numeric < low) | (numeric > high)).to_numpy()
            if out.any():
                row = int(np.flatnonzero(out)[0])
                raise ParetorecError(
                    f"label column {col!r} must be in [{low}, {high}]; "
                    f"row {row} holds {show(numeric.iloc[row])} "
                    f"({int(out.sum())} row(s) out of range)"
                )
        frame[col] = numeric


def _resolve_duplicates(
    frame: pd.DataFrame, user_col: str, item_col: str, ts_col: str | None, policy: str
) -> pd.DataFrame:
    if policy == "keep":
        return frame.reset_index(drop=True)
    dup = frame.duplicated([user_col, item_col], keep=False)
    if not dup.any():
        return frame.reset_index(drop=True)
    if policy == "error":
        first_user = frame.loc[dup, user_col].iloc[0]
        first_item = frame.loc[dup, item_col].iloc[0]
        raise ParetorecError(
            f"interactions hold {int(dup.sum())} rows on duplicate (user, item) pairs, e.g. "
            f"({show(first_user)}, {show(first_item)}); pass duplicates='first' or "
            f"duplicates='last' to keep one row per pair"
        )
    ordered = frame.sort_values(ts_col, kind="stable") if ts_col else frame
    keep: Literal["first", "last"] = "first" if policy == "first" else "last"
    kept = ordered.drop_duplicates([user_col, item_col], keep=keep)
    return kept.sort_index().reset_index(drop=True)


def _id_order(
    seen: pd.Series, table: pd.DataFrame | None, id_col: str, table_name: str
) -> np.ndarray:
    """Catalogue order: ids of the side table first (its order), then unseen ids sorted."""
    if table is None:
        return _as_array(pd.unique(seen.sort_values(kind="stable")))
    if id_col not in table.columns:
        raise ParetorecError(
            f"{table_name} table must have the id column {id_col!r}; "
            f"columns present: {list(table.columns)}"
        )
    listed = table[id_col]
    if listed.duplicated().any():
        dup = listed[listed.duplicated()].iloc[0]
        raise ParetorecError(f"{table_name} table lists id {show(dup)} more than once")
    known = _as_array(listed)
    extra = _as_array(pd.unique(seen[~seen.isin(listed)].sort_values(kind="stable")))
    if len(extra) == 0:
        return known
    if known.dtype != extra.dtype:
        return np.concatenate([known.astype(object), extra.astype(object)])
    return np.concatenate([known, extra])


def _as_array(values: Any) -> np.ndarray:
    """Plain numpy array of ids (pandas string/extension arrays become object arrays)."""
    array = np.asarray(values)
    return array.astype(object) if array.dtype.kind not in "iufbO" else array


def _side_table(
    table: pd.DataFrame | None, id_col: str, ids: np.ndarray, out_col: str
) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame({out_col: ids})
    aligned = table.set_index(id_col).reindex(ids)
    aligned.index.name = out_col
    return aligned.reset_index()


def _lookup(ids: np.ndarray, raw: Iterable[Any] | Any, kind: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(list(raw) if not np.isscalar(raw) else [raw]))
    codes = pd.Index(ids).get_indexer(values)
    unknown = codes < 0
    if unknown.any():
        raise ParetorecError(
            f"unknown {kind} id {show(values[unknown][0])} ({int(unknown.sum())} unknown); "
            f"the dataset has {len(ids):,} {kind}s"
        )
    return codes.astype(np.int64)
