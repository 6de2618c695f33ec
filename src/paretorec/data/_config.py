"""The ``[data]`` section every config shares: a registered name or a table, and the split.

``name = "movielens-100k"`` loads a registered data set; ``path = "events.csv"`` reads any
events table (CSV, TSV, Parquet, JSON Lines, compressed too) through ``[data.columns]``,
with optional ``[data.items]`` / ``[data.users]`` tables. ``split`` chooses the protocol
(``stratified``, ``temporal``, ``leave_one_out``); validation is carved from training the
same way (stratified per user, the latest share in time, or each user's second-last event).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from .._settings import StrictModel
from .._validation import ParetorecError
from ._dataset import Dataset
from ._splits import (
    Split,
    carve_validation,
    leave_one_out,
    merge_parts,
    stratified_split,
    temporal_split,
)
from ._tables import FORMATS, SideTable, load_events

DEFAULT_DATASET = "movielens-100k"
TableFormat = Literal["auto", "csv", "tsv", "parquet", "jsonl"]
if set(FORMATS) != {"auto", "csv", "tsv", "parquet", "jsonl"}:  # pragma: no cover
    raise RuntimeError("TableFormat and FORMATS disagree")


class ColumnsConfig(StrictModel):
    """Which events column plays which role (``[data.columns]``)."""

    user: str
    item: str
    timestamp: str | None = None
    labels: tuple[str, ...] = ()


class SideTableConfig(StrictModel):
    """An item or user table (``[data.items]`` / ``[data.users]``)."""

    path: str
    #: id column of this table (default: the events' user / item column name)
    id: str | None = None
    format: TableFormat = "auto"
    #: text fields, joined into one ``text`` column (the language model's input)
    text: tuple[str, ...] = ()
    #: categorical columns (item groups, user groups, ranker features)
    categorical: tuple[str, ...] = ()
    #: multi-valued columns and their separator, e.g. ``{ genres = "|" }``
    multi: dict[str, str] = Field(default_factory=dict)
    read_options: dict[str, Any] = Field(default_factory=dict)


class DataConfig(StrictModel):
    """A registered data set (``name``) or any events table (``path``), and the split.

    ``dataset`` is the older spelling of ``name`` (still read). With neither ``name`` nor
    ``path`` the data set is MovieLens-100k. Relative paths are looked up in ``data_dir``,
    then ``$PARETOREC_DATA_DIR``, then the working directory.
    """

    name: str | None = None
    path: str | None = None
    format: TableFormat = "auto"
    #: column roles; omitted: guessed from common names (user_id, userId, item_id, rating, ...)
    columns: ColumnsConfig | None = None
    items: SideTableConfig | None = None
    users: SideTableConfig | None = None
    duplicates: Literal["error", "first", "last", "keep"] = "error"
    #: declared ranges of label columns, e.g. ``{ rating = [1, 5] }``
    label_ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    #: check a rating-like label against its declared or inferred scale (1-5, 0-10, ...)
    check_ranges: bool = True
    read_options: dict[str, Any] = Field(default_factory=dict)
    data_dir: str | None = None
    download: bool = False
    split: Literal["stratified", "temporal", "leave_one_out"] = "stratified"
    ratio: float = Field(0.75, gt=0, lt=1)
    seed: int = 42
    validation_ratio: float = Field(0.8, gt=0, lt=1)
    validation_seed: int = 1
    #: leave_one_out: users with fewer events stay in training entirely
    min_events: int = Field(3, ge=3)

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        legacy = raw.pop("dataset", None)
        if legacy is not None:
            if raw.get("name") not in (None, legacy):
                raise ValueError(
                    f"name {raw['name']!r} and dataset {legacy!r} disagree (dataset is the "
                    "older spelling of name; keep one)"
                )
            raw["name"] = legacy
        if raw.get("name") is not None and raw.get("path") is not None:
            raise ValueError(
                f"name a registered data set (name = {raw['name']!r}) or a table "
                f"(path = {raw['path']!r}), not both"
            )
        if raw.get("path") is None:
            for key in ("columns", "items", "users"):
                if raw.get(key) is not None:
                    raise ValueError(f"{key} describes a table; it needs path = '...'")
            raw.setdefault("name", None)
            if raw["name"] is None:
                raw["name"] = DEFAULT_DATASET
        return raw

    # ------------------------------------------------------------------ reading
    @property
    def dataset(self) -> str:
        """A short label of the data: the registered name or the table's file name."""
        return self.name if self.name is not None else Path(str(self.path)).name

    def resolve(self, path: str) -> Path:
        """``path`` as given when absolute or found, else looked up in the data folders."""
        candidate = Path(path).expanduser()
        if candidate.is_absolute():
            return candidate
        roots = [self.data_dir, os.environ.get("PARETOREC_DATA_DIR", "").strip() or None]
        for root in roots:
            if root and (Path(root).expanduser() / candidate).exists():
                return Path(root).expanduser() / candidate
        return candidate

    def load(self) -> Dataset:
        """The data set this section names (registered loader or generic table reader)."""
        if self.name is not None:
            from ._loaders import load_dataset

            return load_dataset(self.name, self.data_dir, download=self.download)
        if self.path is None:  # _one_source guarantees a name or a path
            raise ParetorecError("data: name or path is required")
        columns = self.columns
        return load_events(
            self.resolve(self.path),
            user=columns.user if columns else None,
            item=columns.item if columns else None,
            timestamp=columns.timestamp if columns else None,
            labels=list(columns.labels) if columns else None,
            guess=columns is None,
            format=self.format,
            read_options=self.read_options,
            items=self._side(self.items, columns.item if columns else None),
            users=self._side(self.users, columns.user if columns else None),
            duplicates=self.duplicates,
            label_ranges=self.label_ranges,
            check_ranges=self.check_ranges,
        )

    def _side(self, table: SideTableConfig | None, default_id: str | None) -> SideTable | None:
        if table is None:
            return None
        id_column = table.id or default_id
        if id_column is None:
            raise ParetorecError(
                f"items/users table {table.path!r} needs id = '...' when columns are guessed"
            )
        return SideTable(
            path=self.resolve(table.path),
            id=id_column,
            text=table.text,
            categorical=table.categorical,
            multi=table.multi,
            format=table.format,
            read_options=table.read_options,
        )

    # ------------------------------------------------------------------ splitting
    def splits(self, dataset: Dataset) -> tuple[Split, Split]:
        """``(outer, inner)``: train / test, and train / validation / test inside it.

        ``outer.train`` is everything the test check may train on; ``inner`` carves the
        validation part out of it (the same rule as the split) and keeps ``outer.test``.
        """
        if self.split == "stratified":
            outer = stratified_split(dataset, ratio=self.ratio, seed=self.seed)
            inner = carve_validation(outer, ratio=self.validation_ratio, seed=self.validation_seed)
        elif self.split == "temporal":
            outer = temporal_split(dataset, ratio=self.ratio)
            carved = temporal_split(outer.train, ratio=self.validation_ratio)
            inner = Split(train=carved.train, valid=carved.test, test=outer.test)
        else:
            by = "timestamp" if dataset.has_timestamps else "order"
            inner = leave_one_out(dataset, by=by, validation=True, min_events=self.min_events)
            if inner.valid is None:  # validation=True always sets it
                raise RuntimeError("leave_one_out returned no validation part")
            outer = Split(train=merge_parts(inner.train, inner.valid), test=inner.test)
        return outer, inner

    def describe(self) -> str:
        """One line: the data and the split."""
        carve = (
            f"validation {1 - self.validation_ratio:.0%} of train"
            if self.split != "leave_one_out"
            else "validation = each user's second-last event"
        )
        share = f" {self.ratio:.0%} train" if self.split != "leave_one_out" else ""
        return f"{self.dataset}: {self.split} split{share}, {carve}"
