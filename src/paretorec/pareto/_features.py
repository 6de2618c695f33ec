"""Item vectors (diversity), item groups (fair exposure) and user groups (gap metrics),
chosen from what the data has, so that any data set runs, not only MovieLens.

``item_vectors``:

- ``"auto"`` (default): the first multi-valued item column (tags, genres), else the
  language-model vectors of the item text when items have text, else the first categorical
  item column, else the candidate model's own item embeddings (BPR factors, the
  sequential model's item table), else none;
- an item column: multi-valued -> multi-hot, categorical -> one-hot;
- ``"text"``: language-model vectors of the item text (:func:`paretorec.text.encode_items`);
- ``"model"``: the candidate model's item embeddings;
- ``"none"``: no vectors.

Without vectors the ``ild`` objective is dropped and so are the re-rankers that need item
similarity (MMR, DPP), with a message saying so.

``item_groups``: ``"long_tail"`` (default: group 1 = all but the 20% most popular items) or
``"COLUMN=VALUE"`` (group 1 = items whose categorical / multi-valued COLUMN holds VALUE);
group 1 is the group fair exposure protects and the long-tail boost lifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import ParetorecError
from ..data import Dataset

SPECIAL_VECTORS = ("auto", "text", "model", "none")
#: categorical columns: 2..this many distinct values (titles and ids are not categories)
MAX_CATEGORIES = 100


@dataclass(frozen=True)
class ItemFeatureChoice:
    """What the item vectors and groups are made of (resolved, before anything is fitted)."""

    vectors: str  # "column:<name>", "text", "model" or "none"
    groups: str  # "long_tail" or "<column>=<value>"

    def describe(self) -> str:
        if self.vectors.startswith("column:"):
            return f"item column {self.vectors.split(':', 1)[1]!r}"
        return {
            "text": "language-model vectors of the item text",
            "model": "the candidate model's item embeddings",
            "none": "none (ILD unavailable)",
        }[self.vectors]


def _is_multi(series: pd.Series) -> bool:
    values = series.dropna()
    return len(values) > 0 and all(isinstance(v, (tuple, list)) for v in values.iloc[:50])


def _is_categorical(series: pd.Series) -> bool:
    if _is_multi(series) or pd.api.types.is_numeric_dtype(series):
        return False
    distinct = series.dropna().astype(str).nunique()
    return 2 <= distinct <= MAX_CATEGORIES


def has_text(dataset: Dataset) -> bool:
    items = dataset.items
    if "text" not in items.columns:
        return False
    return bool(items["text"].fillna("").astype(str).str.strip().ne("").any())


def item_columns(dataset: Dataset) -> dict[str, str]:
    """Usable item columns: name -> ``"multi"`` or ``"categorical"``."""
    kinds = {}
    for column in dataset.items.columns:
        if column == "item_id":
            continue
        series = dataset.items[column]
        if _is_multi(series):
            kinds[column] = "multi"
        elif _is_categorical(series):
            kinds[column] = "categorical"
    return kinds


def choose_item_features(
    dataset: Dataset, vectors: str, groups: str, *, model_has_embeddings: bool
) -> ItemFeatureChoice:
    """Resolve the configured choice against the data; errors name what the data has."""
    kinds = item_columns(dataset)
    available = (
        f"item columns usable as features: {kinds or 'none'}; item text: "
        f"{'yes' if has_text(dataset) else 'no'}"
    )
    if vectors == "auto":
        multi = [c for c, k in kinds.items() if k == "multi"]
        categorical = [c for c, k in kinds.items() if k == "categorical"]
        if multi:
            chosen = f"column:{multi[0]}"
        elif has_text(dataset):
            chosen = "text"
        elif categorical:
            chosen = f"column:{categorical[0]}"
        elif model_has_embeddings:
            chosen = "model"
        else:
            chosen = "none"
    elif vectors == "text":
        if not has_text(dataset):
            raise ParetorecError(
                f"objectives.item_vectors: 'text' needs item text; dataset {dataset.name!r} "
                f"has none ({available})"
            )
        chosen = "text"
    elif vectors == "model":
        if not model_has_embeddings:
            raise ParetorecError(
                "objectives.item_vectors: 'model' needs a candidate model with item "
                "embeddings (bpr, sequential)"
            )
        chosen = "model"
    elif vectors == "none":
        chosen = "none"
    else:
        if vectors not in dataset.items.columns:
            raise ParetorecError(
                f"objectives.item_vectors must be one of {', '.join(SPECIAL_VECTORS)} or an "
                f"item column; got {vectors!r} ({available})"
            )
        if vectors not in kinds:
            raise ParetorecError(
                f"objectives.item_vectors: item column {vectors!r} is neither multi-valued nor "
                f"categorical (2..{MAX_CATEGORIES} values); {available}"
            )
        chosen = f"column:{vectors}"
    if groups != "long_tail":
        column, _, value = groups.partition("=")
        if not value or column not in kinds:
            raise ParetorecError(
                f"objectives.item_groups must be 'long_tail' or 'COLUMN=VALUE' over a "
                f"categorical or multi-valued item column; got {groups!r} ({available})"
            )
    return ItemFeatureChoice(vectors=chosen, groups=groups)


def check_user_groups(dataset: Dataset, names: tuple[str, ...]) -> None:
    """Every user grouping must be a user column."""
    for name in names:
        if name not in dataset.users.columns:
            columns = [c for c in dataset.users.columns if c != "user_id"]
            raise ParetorecError(
                f"objectives.user_groups: {name!r} is not a user column; user columns: "
                f"{columns or 'none (add [data.users] with categorical columns)'}"
            )


def item_vectors(dataset: Dataset, choice: ItemFeatureChoice, model: Any = None) -> Any:
    """The item x d matrix of ``choice`` (None for ``"none"``)."""
    if choice.vectors == "none":
        return None
    if choice.vectors.startswith("column:"):
        column = choice.vectors.split(":", 1)[1]
        series = dataset.items[column]
        if _is_multi(series):
            return dataset.item_multi_hot(column)[0]
        codes, _ = pd.factorize(series.astype(object).where(series.notna(), None))
        rows = np.flatnonzero(codes >= 0)
        return sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, codes[rows])),
            shape=(dataset.n_items, max(int(codes.max()) + 1, 1)),
        )
    if choice.vectors == "text":
        from ..text import encode_items

        return encode_items(dataset)
    vectors = model_item_embeddings(model)
    if vectors is None:
        raise ParetorecError("the candidate model has no item embeddings")
    return vectors


def model_item_embeddings(model: Any) -> np.ndarray | None:
    """A candidate model's learned item vectors (BPR factors, sequential item table)."""
    if model is None:
        return None
    factors = getattr(model, "item_factors", None)
    if isinstance(factors, np.ndarray):
        return factors
    method = getattr(model, "item_vectors", None)
    if callable(method) and getattr(model, "is_fitted", False):
        return np.asarray(method())
    return None


def has_item_embeddings(model_name: str) -> bool:
    return model_name in ("bpr", "sequential")


def item_groups(dataset: Dataset, choice: ItemFeatureChoice) -> np.ndarray | None:
    """Group 1 = the protected items of ``"COLUMN=VALUE"``; None for the long tail."""
    if choice.groups == "long_tail":
        return None
    column, _, value = choice.groups.partition("=")
    series = dataset.items[column]
    if _is_multi(series):
        member = [value in tuple(v) if isinstance(v, (tuple, list)) else False for v in series]
    else:
        member = (series.astype(str) == value).tolist()
    groups = np.asarray(member, dtype=np.int64)
    if not groups.any():
        raise ParetorecError(
            f"objectives.item_groups: no item has {column} = {value!r}; values: "
            f"{sorted({str(v) for v in series.dropna()})[:10]}"
        )
    return groups
