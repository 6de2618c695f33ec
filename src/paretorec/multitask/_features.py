"""Task specs, feature specs and the row tables a multi-task ranker trains on.

A ranker learns from a *rows table*: one row per (user, item) example with integer codes in
``user`` / ``item``, one column per task label and optional mask columns saying where a
label exists. The user and item side tables of a :class:`~paretorec.data.Dataset` are
encoded once into contiguous arrays (one row per user code, one per item code), so the
model gathers a mini-batch's features from buffers with a few indexing operations: no
per-row Python and no collate step on the hot path.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import (
    ParetorecError,
    check_choice,
    check_nonnegative_int,
    show,
)
from ..data import ITEM, USER, Dataset
from ..data._sampling import draw_unseen

TASK_KINDS = ("binary", "regression")
#: Categorical codes start at 1; 0 stands for a missing or unseen value.
UNKNOWN = 0
#: Columns with more distinct values than this are not inferred as categorical features.
MAX_INFERRED_CARDINALITY = 100
_ID_COLUMNS = ("user_id", "item_id")


# --------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class TaskSpec:
    """One prediction task of a multi-task ranker.

    Args:
        name: task name (the key of its predictions and metrics).
        kind: ``"binary"`` (logistic output, binary cross-entropy) or ``"regression"``
            (real output, squared error).
        column: label column in the rows table; defaults to ``name``.
        mask_column: optional boolean column: the label exists only where it is true (the
            loss and the metrics skip the other rows, whose label may hold anything, NaN
            included). Without it every row must carry a valid label.
        value_range: for regression, predictions are clipped into this inclusive range
            (e.g. ``(1, 5)`` for ratings).
    """

    name: str
    kind: str = "binary"
    column: str | None = None
    mask_column: str | None = None
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ParetorecError(f"task name must be a non-empty str, got {show(self.name)}")
        check_choice(self.kind, f"kind of task {self.name!r}", TASK_KINDS)
        if self.column is None:
            object.__setattr__(self, "column", self.name)
        elif not isinstance(self.column, str) or not self.column:
            raise ParetorecError(
                f"column of task {self.name!r} must be a non-empty str, got {show(self.column)}"
            )
        if self.mask_column is not None and (
            not isinstance(self.mask_column, str) or not self.mask_column
        ):
            raise ParetorecError(
                f"mask_column of task {self.name!r} must be a non-empty str or None, "
                f"got {show(self.mask_column)}"
            )
        if self.value_range is not None:
            if self.kind != "regression":
                raise ParetorecError(
                    f"value_range applies to regression tasks only; task {self.name!r} "
                    f"is {self.kind!r}"
                )
            low, high = _check_range(self.value_range, self.name)
            object.__setattr__(self, "value_range", (low, high))

    @property
    def label_column(self) -> str:
        return self.column if self.column is not None else self.name

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["value_range"] = None if self.value_range is None else list(self.value_range)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TaskSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ParetorecError(f"task has unknown field(s) {unknown}; fields are {sorted(known)}")
        values = dict(raw)
        if values.get("value_range") is not None:
            values["value_range"] = tuple(values["value_range"])
        return cls(**values)

    def __str__(self) -> str:
        mask = f" where {self.mask_column}" if self.mask_column else ""
        column = "" if self.label_column == self.name else f" <- {self.label_column}"
        return f"{self.name}:{self.kind}{column}{mask}"


def _check_range(value: Any, task: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ParetorecError(
            f"value_range of task {task!r} must be a pair (low, high), got {show(value)}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ParetorecError(
            f"value_range of task {task!r} must be finite with low < high, got {show(value)}"
        )
    return low, high


def check_tasks(tasks: Any) -> tuple[TaskSpec, ...]:
    """A non-empty sequence of :class:`TaskSpec` (or dicts) with unique names."""
    if isinstance(tasks, (str, TaskSpec)) or not isinstance(tasks, Sequence) or not tasks:
        raise ParetorecError(f"tasks must be a non-empty list of TaskSpec, got {show(tasks)}")
    out = []
    for task in tasks:
        if isinstance(task, Mapping):
            task = TaskSpec.from_dict(task)
        if not isinstance(task, TaskSpec):
            raise ParetorecError(
                f"tasks must hold TaskSpec objects or dicts, got {type(task).__name__}"
            )
        out.append(task)
    names = [t.name for t in out]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ParetorecError(f"task names must be unique, got {duplicated} more than once")
    return tuple(out)


# --------------------------------------------------------------------------- funnel rows
LIKE_THRESHOLD = 4.0


def funnel_tasks(rating_range: tuple[float, float] | None = (1.0, 5.0)) -> tuple[TaskSpec, ...]:
    """The tasks of :func:`funnel_rows`: engage (all rows), like and rating (rated rows)."""
    return (
        TaskSpec("engage", "binary"),
        TaskSpec("like", "binary", mask_column="rated"),
        TaskSpec("rating", "regression", mask_column="rated", value_range=rating_range),
    )


def funnel_rows(
    dataset: Dataset,
    *,
    negatives_per_positive: int = 1,
    rating_column: str = "rating",
    like_threshold: float = LIKE_THRESHOLD,
    exclude: Dataset | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Read explicit ratings as a funnel: rows of rated pairs plus sampled unrated pairs.

    Every interaction of ``dataset`` becomes a row with ``engage = 1``, ``rated = True``,
    ``like = rating >= like_threshold`` and its ``rating``; ``negatives_per_positive``
    unrated items per interaction (uniform over the items the user has not rated) become
    rows with ``engage = 0``, ``rated = False`` and NaN ``like`` / ``rating`` (those labels
    do not exist there: :func:`funnel_tasks` masks them with ``rated``).

    ``exclude`` is a dataset (same id maps, typically the full one) whose interactions are
    never drawn as unrated pairs, so that a validation or test negative is not a pair the
    user rated in another part. The dataset's own interactions are always excluded.
    Sampled rows follow the rated rows, in draw order; ``seed`` makes the draw repeatable.
    """
    if not isinstance(dataset, Dataset):
        raise ParetorecError(f"dataset must be a paretorec Dataset, got {type(dataset).__name__}")
    n_negatives = check_nonnegative_int(negatives_per_positive, "negatives_per_positive")
    seed = check_nonnegative_int(seed, "seed")
    if rating_column not in dataset.interactions.columns:
        raise ParetorecError(
            f"rating_column must be a label column of dataset {dataset.name!r}; got "
            f"{rating_column!r}, label columns are {list(dataset.label_columns)}"
        )
    if isinstance(like_threshold, bool) or not isinstance(like_threshold, numbers.Real):
        raise ParetorecError(f"like_threshold must be a number, got {show(like_threshold)}")
    if dataset.n_interactions == 0:
        raise ParetorecError(f"dataset {dataset.name!r} has no interactions")
    inter = dataset.interactions
    users = inter[USER].to_numpy(np.int64)
    ratings = inter[rating_column].to_numpy(np.float32)
    rated = pd.DataFrame(
        {
            USER: users,
            ITEM: inter[ITEM].to_numpy(np.int64),
            "engage": np.ones(len(users), dtype=np.float32),
            "rated": np.ones(len(users), dtype=bool),
            "like": (ratings >= like_threshold).astype(np.float32),
            "rating": ratings,
        }
    )
    if n_negatives == 0:
        return rated
    seen = dataset.to_csr()
    if exclude is not None:
        if not isinstance(exclude, Dataset):
            raise ParetorecError(
                f"exclude must be a paretorec Dataset or None, got {type(exclude).__name__}"
            )
        if exclude.n_users != dataset.n_users or exclude.n_items != dataset.n_items:
            raise ParetorecError(
                f"exclude must share the id maps of dataset ({dataset.n_users} users, "
                f"{dataset.n_items} items), got {exclude.n_users} users, {exclude.n_items} items"
            )
        seen = seen + exclude.to_csr()
    seen = sp.csr_matrix(seen)
    full = np.diff(seen.indptr)[users] >= dataset.n_items
    if full.any():
        raise ParetorecError(
            f"user code {int(users[full][0])} has rated every item; no unrated pair can be drawn"
        )
    rows = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr))
    keys = np.sort(rows * dataset.n_items + seen.indices.astype(np.int64))
    neg_users = np.repeat(users, n_negatives)
    neg_items = draw_unseen(neg_users, keys, dataset.n_items, np.random.default_rng(seed))
    n = len(neg_users)
    sampled = pd.DataFrame(
        {
            USER: neg_users,
            ITEM: neg_items,
            "engage": np.zeros(n, dtype=np.float32),
            "rated": np.zeros(n, dtype=bool),
            "like": np.full(n, np.nan, dtype=np.float32),
            "rating": np.full(n, np.nan, dtype=np.float32),
        }
    )
    return pd.concat([rated, sampled], ignore_index=True)


# --------------------------------------------------------------------------- features
@dataclass(frozen=True)
class FeatureSpec:
    """Which columns feed the ranker (declarative; :func:`encode_features` does the work).

    Args:
        user_id / item_id: learn an embedding per user / item code.
        user_categorical / item_categorical: scalar columns of ``dataset.users`` /
            ``dataset.items``, one embedding per distinct value (missing values share one).
        item_multi: multi-valued item columns (tuples, e.g. ``genres``): the mean of the
            values' embeddings (an EmbeddingBag); an item without values gets zeros.
        user_dense / item_dense: numeric columns of the side tables, standardised with the
            training rows' mean and standard deviation; missing values become the mean.
        row_dense: numeric columns of the rows table itself (context features), standardised
            the same way.
        user_history: a boolean (or 0/1) column of the *training* rows marking the pairs
            that form each user's history (e.g. ``"rated"``); the user is then also
            represented by the mean embedding of their history items, as in SVD++. A
            training row's own item is left out of its history mean, so the model cannot
            learn "the item is in the history" (true of every training positive, of no
            test pair). ``None``: no history field.
    """

    user_id: bool = True
    item_id: bool = True
    user_categorical: tuple[str, ...] = ()
    item_categorical: tuple[str, ...] = ()
    item_multi: tuple[str, ...] = ()
    user_dense: tuple[str, ...] = ()
    item_dense: tuple[str, ...] = ()
    row_dense: tuple[str, ...] = ()
    user_history: str | None = None

    def __post_init__(self) -> None:
        for name in ("user_id", "item_id"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ParetorecError(f"{name} must be a bool, got {show(value)}")
        if self.user_history is not None and (
            not isinstance(self.user_history, str) or not self.user_history
        ):
            raise ParetorecError(
                f"user_history must be a column name or None, got {show(self.user_history)}"
            )
        for f in fields(self):
            if f.name in ("user_id", "item_id", "user_history"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ParetorecError(f"{f.name} must be a list of column names, got {show(value)}")
            if any(not isinstance(c, str) or not c for c in value):
                raise ParetorecError(f"{f.name} must hold column names (str), got {show(value)}")
            object.__setattr__(self, f.name, tuple(value))

    @classmethod
    def infer(cls, dataset: Dataset) -> FeatureSpec:
        """Ids plus every usable side-table column, by a documented rule.

        Tuple-valued item columns are multi-valued features; other non-numeric columns with
        2 to 100 distinct values are categorical (so titles, dates and zip codes are left
        out); numeric columns (not bool, not ids) are dense.
        """
        user_cat, user_dense = _infer_columns(dataset.users)
        item_cat, item_dense = _infer_columns(dataset.items)
        multi = [c for c in dataset.items.columns if _is_multi(dataset.items[c])]
        return cls(
            user_categorical=tuple(user_cat),
            item_categorical=tuple(item_cat),
            item_multi=tuple(multi),
            user_dense=tuple(user_dense),
            item_dense=tuple(item_dense),
        )

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FeatureSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ParetorecError(
                f"features has unknown field(s) {unknown}; fields are {sorted(known)}"
            )
        return cls(**dict(raw))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _is_multi(series: pd.Series) -> bool:
    values = series.dropna()
    return len(values) > 0 and all(isinstance(v, (tuple, list)) for v in values.iloc[:50])


def _infer_columns(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    categorical, dense = [], []
    for column in table.columns:
        if column in _ID_COLUMNS:
            continue
        series = table[column]
        if _is_multi(series):
            continue
        if pd.api.types.is_bool_dtype(series):
            categorical.append(column)
        elif pd.api.types.is_numeric_dtype(series):
            dense.append(column)
        elif 2 <= series.nunique(dropna=True) <= MAX_INFERRED_CARDINALITY:
            categorical.append(column)
    return categorical, dense


@dataclass(frozen=True, eq=False)
class EncodedFeatures:
    """A :class:`FeatureSpec` fitted to one dataset: vocabularies, statistics, tables.

    The tables are what the model keeps as buffers:

    * ``user_fields`` (n_users, F_u) / ``item_fields`` (n_items, F_i): indices into one
      shared embedding table, each field occupying its own block of rows
      (``field_offsets``); the user id block comes first, so a lookup of every field of a
      batch is one gather.
    * ``bag.<column>`` (n_items, L): value codes of each multi-valued column, padded with
      the column's vocabulary size (the padding index of its EmbeddingBag).
    * ``user_dense`` / ``item_dense``: standardised dense values, float32.
    * ``item_vectors``: an optional frozen item matrix (e.g. language-model embeddings).
    """

    spec: FeatureSpec
    n_users: int
    n_items: int
    vocabularies: dict[str, list[str]]
    dense_stats: dict[str, tuple[float, float]]
    tables: dict[str, np.ndarray] = field(repr=False)

    # ----------------------------------------------------------------- layout
    @property
    def user_field_names(self) -> list[str]:
        return (["user_id"] if self.spec.user_id else []) + [
            f"user.{c}" for c in self.spec.user_categorical
        ]

    @property
    def item_field_names(self) -> list[str]:
        return (["item_id"] if self.spec.item_id else []) + [
            f"item.{c}" for c in self.spec.item_categorical
        ]

    def field_sizes(self) -> dict[str, int]:
        """Embedding rows per field (categorical fields get one extra row for unknown)."""
        sizes: dict[str, int] = {}
        for name in self.user_field_names + self.item_field_names:
            if name == "user_id":
                sizes[name] = self.n_users
            elif name == "item_id":
                sizes[name] = self.n_items
            else:
                sizes[name] = len(self.vocabularies[name]) + 1
        return sizes

    @property
    def n_embeddings(self) -> int:
        return int(sum(self.field_sizes().values()))

    @property
    def bag_sizes(self) -> dict[str, int]:
        """Vocabulary size of each multi-valued column (its padding index)."""
        return {c: len(self.vocabularies[f"item.{c}"]) for c in self.spec.item_multi}

    @property
    def item_vector_dim(self) -> int:
        vectors = self.tables.get("item_vectors")
        return 0 if vectors is None else int(vectors.shape[1])

    @property
    def has_history(self) -> bool:
        return "history_items" in self.tables

    @property
    def n_dense(self) -> int:
        return len(self.spec.user_dense) + len(self.spec.item_dense) + len(self.spec.row_dense)

    def table_shapes(self) -> dict[str, list[int]]:
        return {name: list(array.shape) for name, array in self.tables.items()}

    # ----------------------------------------------------------------- persistence
    def schema(self) -> dict[str, Any]:
        """JSON description (everything but the tables, which the model saves as buffers)."""
        return {
            "spec": self.spec.to_dict(),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "vocabularies": self.vocabularies,
            "dense_stats": {k: list(v) for k, v in self.dense_stats.items()},
            "table_shapes": self.table_shapes(),
            "table_dtypes": {k: str(v.dtype) for k, v in self.tables.items()},
        }

    @classmethod
    def from_schema(
        cls, schema: Mapping[str, Any], tables: Mapping[str, np.ndarray] | None = None
    ) -> EncodedFeatures:
        """Rebuild from :meth:`schema`; tables are zero-filled unless given (load fills them)."""
        shapes = schema["table_shapes"]
        dtypes = schema["table_dtypes"]
        filled = {
            name: np.asarray(tables[name])
            if tables is not None and name in tables
            else np.zeros(shape, dtype=dtypes[name])
            for name, shape in shapes.items()
        }
        return cls(
            spec=FeatureSpec.from_dict(schema["spec"]),
            n_users=int(schema["n_users"]),
            n_items=int(schema["n_items"]),
            vocabularies={k: list(v) for k, v in schema["vocabularies"].items()},
            dense_stats={k: (float(v[0]), float(v[1])) for k, v in schema["dense_stats"].items()},
            tables=filled,
        )

    def __repr__(self) -> str:
        fields_ = self.user_field_names + self.item_field_names
        multi = [f"item.{c}[bag]" for c in self.spec.item_multi]
        dense = list(self.dense_stats)
        vec = [f"item_vectors[{self.item_vector_dim}]"] if self.item_vector_dim else []
        history = [f"user_history[{self.spec.user_history}]"] if self.has_history else []
        return f"EncodedFeatures({', '.join(fields_ + multi + history + dense + vec)})"

    # ----------------------------------------------------------------- rows
    def row_dense(self, rows: pd.DataFrame) -> np.ndarray:
        """The rows table's own dense columns, standardised: float32 (n_rows, n_row_dense)."""
        columns = self.spec.row_dense
        out = np.zeros((len(rows), len(columns)), dtype=np.float32)
        for j, column in enumerate(columns):
            if column not in rows.columns:
                raise ParetorecError(
                    f"rows lack the dense feature column {column!r}; "
                    f"columns present: {list(rows.columns)}"
                )
            mean, std = self.dense_stats[f"row.{column}"]
            values = _numeric(rows[column], f"rows column {column!r}")
            out[:, j] = np.nan_to_num((values - mean) / std, nan=0.0)
        return out


def encode_features(
    spec: FeatureSpec,
    dataset: Dataset,
    train_rows: pd.DataFrame,
    item_vectors: np.ndarray | None = None,
) -> EncodedFeatures:
    """Fit ``spec`` to ``dataset``: vocabularies from the side tables, statistics from rows.

    Dense statistics (mean, standard deviation) are those of the training rows (a user's
    age counts once per training row of that user), never of validation or test.
    """
    if not isinstance(spec, FeatureSpec):
        raise ParetorecError(f"features must be a FeatureSpec, got {type(spec).__name__}")
    users_codes, items_codes = check_rows(train_rows, dataset.n_users, dataset.n_items, "rows")
    vocabularies: dict[str, list[str]] = {}
    dense_stats: dict[str, tuple[float, float]] = {}
    tables: dict[str, np.ndarray] = {}
    sizes_so_far = 0

    def categorical_block(table: pd.DataFrame, side: str, columns: Sequence[str]) -> np.ndarray:
        nonlocal sizes_so_far
        n = len(table)
        id_on = spec.user_id if side == "user" else spec.item_id
        blocks = []
        if id_on:
            blocks.append(np.arange(n, dtype=np.int64) + sizes_so_far)
            sizes_so_far += n
        for column in columns:
            _require_column(table, column, side)
            series = table[column]
            present = series.dropna()
            vocabulary = sorted({str(v) for v in present})
            vocabularies[f"{side}.{column}"] = vocabulary
            position = {v: j + 1 for j, v in enumerate(vocabulary)}
            codes = np.array(
                [UNKNOWN if _missing(v) else position[str(v)] for v in series], dtype=np.int64
            )
            blocks.append(codes + sizes_so_far)
            sizes_so_far += len(vocabulary) + 1
        if not blocks:
            return np.zeros((n, 0), dtype=np.int64)
        return np.stack(blocks, axis=1)

    users_table = _side(dataset.users, dataset.n_users, "user_id")
    items_table = _side(dataset.items, dataset.n_items, "item_id")
    tables["user_fields"] = categorical_block(users_table, "user", spec.user_categorical)
    tables["item_fields"] = categorical_block(items_table, "item", spec.item_categorical)

    for column in spec.item_multi:
        _require_column(items_table, column, "item")
        values = [_as_tuple(v) for v in items_table[column]]
        vocabulary = sorted({str(v) for row in values for v in row})
        vocabularies[f"item.{column}"] = vocabulary
        position = {v: j for j, v in enumerate(vocabulary)}
        width = max(1, max((len(row) for row in values), default=1))
        bag = np.full((len(values), width), len(vocabulary), dtype=np.int64)  # padding
        for i, row in enumerate(values):
            codes = sorted({position[str(v)] for v in row})
            bag[i, : len(codes)] = codes
        tables[f"bag.{column}"] = bag

    for side, table, columns, row_codes in (
        ("user", users_table, spec.user_dense, users_codes),
        ("item", items_table, spec.item_dense, items_codes),
    ):
        block = np.zeros((len(table), len(columns)), dtype=np.float32)
        for j, column in enumerate(columns):
            _require_column(table, column, side)
            numbers = _numeric(table[column], f"{side} column {column!r}")
            mean, std = _stats(numbers[row_codes])  # weighted by training rows
            dense_stats[f"{side}.{column}"] = (mean, std)
            block[:, j] = np.nan_to_num((numbers - mean) / std, nan=0.0)
        tables[f"{side}_dense"] = block
    for column in spec.row_dense:
        if column not in train_rows.columns:
            raise ParetorecError(
                f"rows lack the dense feature column {column!r}; "
                f"columns present: {list(train_rows.columns)}"
            )
        dense_stats[f"row.{column}"] = _stats(_numeric(train_rows[column], f"rows {column!r}"))

    if spec.user_history is not None:
        tables.update(
            _history_tables(train_rows, spec.user_history, users_codes, items_codes, dataset)
        )

    if item_vectors is not None:
        vectors = np.asarray(item_vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != dataset.n_items or vectors.shape[1] == 0:
            raise ParetorecError(
                f"item_vectors must be a matrix with one row per item ({dataset.n_items}, d), "
                f"got shape {vectors.shape}"
            )
        if not np.isfinite(vectors).all():
            raise ParetorecError("item_vectors must be finite (no NaN or inf)")
        tables["item_vectors"] = np.ascontiguousarray(vectors)

    return EncodedFeatures(
        spec=spec,
        n_users=dataset.n_users,
        n_items=dataset.n_items,
        vocabularies=vocabularies,
        dense_stats=dense_stats,
        tables=tables,
    )


def _history_tables(
    rows: pd.DataFrame, column: str, users: np.ndarray, items: np.ndarray, dataset: Dataset
) -> dict[str, np.ndarray]:
    """Each user's history items as CSR (``history_indptr``, ``history_items``).

    ``history_keys`` (``user * n_items + item`` of each entry) are sorted, so membership of
    a (user, item) pair is one binary search.
    """
    if column not in rows.columns:
        raise ParetorecError(
            f"user_history column {column!r} is not in the training rows; "
            f"columns present: {list(rows.columns)}"
        )
    flags = rows[column]
    values = np.asarray(flags)
    if flags.isna().any() or not (values.dtype == bool or np.isin(values, (0, 1)).all()):
        raise ParetorecError(
            f"user_history column {column!r} must be boolean (or 0/1) without missing values"
        )
    chosen = values.astype(bool)
    keys = np.unique(users[chosen] * dataset.n_items + items[chosen])
    history_users = keys // dataset.n_items
    indptr = np.zeros(dataset.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(history_users, minlength=dataset.n_users), out=indptr[1:])
    return {"history_indptr": indptr, "history_items": keys % dataset.n_items, "history_keys": keys}


def _side(table: pd.DataFrame, n: int, id_column: str) -> pd.DataFrame:
    if len(table) == n:
        return table.reset_index(drop=True)
    # A dataset built without a side table still has one id row per code.
    return pd.DataFrame({id_column: np.arange(n)})


def _require_column(table: pd.DataFrame, column: str, side: str) -> None:
    if column not in table.columns:
        raise ParetorecError(
            f"{side} feature column {column!r} is not in the {side} table; "
            f"columns present: {list(table.columns)}"
        )


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if _missing(value):
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _numeric(series: pd.Series, what: str) -> np.ndarray:
    numeric = pd.to_numeric(series, errors="coerce")
    bad = numeric.isna() & series.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ParetorecError(f"{what} must be numeric; row {row} holds {show(series.iloc[row])}")
    return numeric.to_numpy(dtype=np.float64, na_value=np.nan)


def _stats(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    mean = float(finite.mean())
    std = float(finite.std())
    return mean, std if std > 0 else 1.0


# --------------------------------------------------------------------------- row checks
def check_rows(
    rows: Any, n_users: int, n_items: int, name: str = "rows"
) -> tuple[np.ndarray, np.ndarray]:
    """The ``user`` and ``item`` codes of a rows table, checked against the catalogue."""
    if not isinstance(rows, pd.DataFrame):
        raise ParetorecError(f"{name} must be a pandas DataFrame, got {type(rows).__name__}")
    missing = [c for c in (USER, ITEM) if c not in rows.columns]
    if missing:
        raise ParetorecError(
            f"{name} must have integer code columns 'user' and 'item'; missing {missing}, "
            f"columns present: {list(rows.columns)}"
        )
    users = _codes(rows[USER], f"{name} column 'user'", n_users, "users")
    items = _codes(rows[ITEM], f"{name} column 'item'", n_items, "items")
    return users, items


def _codes(series: Any, what: str, upper: int, kind: str) -> np.ndarray:
    values = np.asarray(series)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise ParetorecError(f"{what} must hold integer codes, got dtype {values.dtype}")
    values = values.astype(np.int64, copy=False)
    bad = (values < 0) | (values >= upper)
    if bad.any():
        raise ParetorecError(
            f"{what} holds code {int(values[bad][0])} outside 0..{upper - 1} "
            f"(the dataset has {upper} {kind})"
        )
    return values


@dataclass(frozen=True, eq=False)
class LabelArrays:
    """Labels (n_rows, n_tasks) float32, zero where masked, and the mask (bool)."""

    labels: np.ndarray
    mask: np.ndarray


def task_labels(rows: pd.DataFrame, tasks: Sequence[TaskSpec], name: str = "rows") -> LabelArrays:
    """Labels and masks of every task; masked labels are replaced by 0 (NaN never leaks)."""
    n = len(rows)
    labels = np.zeros((n, len(tasks)), dtype=np.float32)
    mask = np.ones((n, len(tasks)), dtype=bool)
    for k, task in enumerate(tasks):
        column = task.label_column
        if column not in rows.columns:
            raise ParetorecError(
                f"{name} lack the label column {column!r} of task {task.name!r}; "
                f"columns present: {list(rows.columns)}"
            )
        if task.mask_column is not None:
            if task.mask_column not in rows.columns:
                raise ParetorecError(
                    f"{name} lack the mask column {task.mask_column!r} of task {task.name!r}; "
                    f"columns present: {list(rows.columns)}"
                )
            raw_mask = rows[task.mask_column]
            if raw_mask.isna().any():
                raise ParetorecError(
                    f"mask column {task.mask_column!r} of task {task.name!r} must be "
                    "boolean without missing values"
                )
            values = np.asarray(raw_mask)
            if not (values.dtype == bool or np.isin(values, (0, 1)).all()):
                bad = values[~np.isin(values, (0, 1))][0]
                raise ParetorecError(
                    f"mask column {task.mask_column!r} of task {task.name!r} must be boolean "
                    f"(or 0/1), got {show(bad)}"
                )
            mask[:, k] = values.astype(bool)
        where = mask[:, k]
        raw = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64)
        label = raw[where]
        if not np.isfinite(label).all():
            row = int(np.flatnonzero(where)[np.flatnonzero(~np.isfinite(label))[0]])
            hint = "" if task.mask_column else " (give the task a mask_column if it is missing)"
            raise ParetorecError(
                f"label column {column!r} of task {task.name!r} must be numeric and finite "
                f"where the label exists; row {row} holds {show(rows[column].iloc[row])}{hint}"
            )
        if task.kind == "binary" and not np.isin(label, (0.0, 1.0)).all():
            bad = label[~np.isin(label, (0.0, 1.0))][0]
            raise ParetorecError(
                f"label column {column!r} of binary task {task.name!r} must hold 0 or 1, "
                f"got {show(bad)}"
            )
        labels[where, k] = label
    return LabelArrays(labels=labels, mask=mask)
