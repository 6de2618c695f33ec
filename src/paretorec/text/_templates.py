"""Item text templates: one string per item code, ready for a sentence encoder.

Every dataset gets a sensible default (:func:`item_texts` with ``template=None``):

- MovieLens (100k, 1m): ``"Title (Year) | Genre, Genre"``. The release titles already end
  in ``(1995)``; the year is written once, and a trailing article is moved back to the
  front (``"Usual Suspects, The"`` -> ``"The Usual Suspects"``) because the language model
  reads natural titles better. The placeholder title ``"unknown"`` and the placeholder
  genre ``"unknown"`` carry no information and are dropped.
- Amazon-Scientific: the release's ``text`` column, which already is
  ``"Title. Category path. Brand."``.
- Any other dataset: its ``text`` column when it has one, else the non-empty text-like
  columns (strings, or lists of strings) joined with ``" | "``; id and URL columns are
  skipped.

A template can also be a format string over item-table columns (``"{title} | {genres}"``;
list-valued columns are joined with ``", "``, missing values become ``""``) or a callable
taking one row (a mapping of column -> value) and returning the text.

Items can also be described field by field (:func:`item_fields`): one text per field
(``{"title": [...], "category": [...], "brand": [...]}``), which
:func:`~paretorec.text.encode_items` with ``fields=True`` encodes separately and
concatenates, so that a long title does not drown the category and the brand in a single
mean-pooled vector. Default fields:

- MovieLens: ``title`` (``"Title (Year)"``) and ``genres`` (``"Genre, Genre"``).
- Amazon-Scientific: ``title``, ``category`` (the path from ``"Industrial & Scientific"``)
  and ``brand``, split from the release's ``"Title. Category path. Brand."`` text.
- Any other dataset: each text-like column (the same columns as the default text).

Empty text is a policy (``empty_text``), applied here, where the item ids are known:

- ``"zero"`` (default): the text stays ``""``; :class:`~paretorec.text.TextEncoder` maps
  blank text to a zero vector, so a hybrid model falls back on its id embedding.
- ``"error"``: refuse, listing how many items have no text and the first ids.
- ``"placeholder"``: use the item id as the text.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._validation import ParetorecError, check_choice, show
from ..data import Dataset
from ._checks import check_texts

EmptyTextPolicy = Literal["zero", "error", "placeholder"]
EMPTY_TEXT_POLICIES: tuple[str, ...] = ("zero", "error", "placeholder")
Template = str | Callable[[Mapping[str, Any]], str]
FieldTemplates = Mapping[str, Template]

MOVIELENS_DATASETS = ("movielens-100k", "movielens-1m")
AMAZON_DATASETS = ("amazon-scientific",)

_TRAILING_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
# Articles MovieLens moves to the end of a title ("Seventh Seal, The", "Cage aux Folles, La").
_ARTICLES = ("The", "A", "An", "La", "Le", "Les", "L'", "Il", "Der", "Die", "Das", "Det",
             "El", "Los", "Las", "Lo", "Un", "Une", "Una", "Den")  # fmt: skip
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+), (?P<article>" + "|".join(_ARTICLES) + r")$")
_PLACEHOLDERS = frozenset({"unknown"})
#: Root of the category path in the Amazon-Scientific release text.
AMAZON_CATEGORY_ROOT = "Industrial & Scientific"
_SKIPPED_COLUMN = re.compile(r"(^id$|_id$|url)", re.IGNORECASE)


def item_texts(
    dataset: Dataset,
    template: Template | None = None,
    *,
    empty_text: EmptyTextPolicy = "zero",
) -> list[str]:
    """One text per item code, in code order (``texts[code]`` describes ``item_ids[code]``).

    Args:
        dataset: any :class:`~paretorec.data.Dataset`; its ``items`` table is read.
        template: ``None`` for the dataset's default (see the module docstring), a format
            string over item-table columns such as ``"{title} | {genres}"``, or a callable
            ``row -> str`` where ``row`` maps column names to the item's values.
        empty_text: what to do with items whose text is empty or whitespace: ``"zero"``
            keeps ``""`` (the encoder returns a zero vector for it), ``"error"`` raises,
            ``"placeholder"`` uses the item id.

    Returns:
        A list of ``dataset.n_items`` strings, stripped of surrounding whitespace.
    """
    _check_inputs(dataset, empty_text)
    if template is None:
        texts = default_texts(dataset)
    else:
        texts = _render(dataset, template, "template", none_ok=True)
    texts = [_collapse(text) for text in texts]
    return _apply_empty_policy(texts, dataset, empty_text)


def item_fields(
    dataset: Dataset,
    fields: FieldTemplates | None = None,
    *,
    empty_text: EmptyTextPolicy = "zero",
) -> dict[str, list[str]]:
    """Several texts per item, one per field, each in code order.

    Args:
        dataset: any :class:`~paretorec.data.Dataset`; its ``items`` table is read.
        fields: ``None`` for the dataset's default fields (see the module docstring), or a
            mapping field name -> template, each template as in :func:`item_texts` (a
            format string over item-table columns or a callable ``row -> str``), e.g.
            ``{"title": "{title}", "genres": "{genres}"}``.
        empty_text: the policy for items whose fields are *all* empty: ``"zero"`` keeps
            them (zero vectors), ``"error"`` raises, ``"placeholder"`` writes the item id
            into the first field. A single empty field is always kept as ``""`` (that
            field's vector is zero).

    Returns:
        An ordered mapping field name -> list of ``dataset.n_items`` strings.
    """
    _check_inputs(dataset, empty_text)
    if fields is None:
        parts = default_fields(dataset)
    else:
        if not isinstance(fields, Mapping) or not fields:
            raise ParetorecError(
                "fields must be None or a non-empty mapping field name -> template, e.g. "
                f"{{'title': '{{title}}', 'genres': '{{genres}}'}}; got {show(fields)}"
            )
        parts = {}
        for name, template in fields.items():
            if not isinstance(name, str) or not name.strip():
                raise ParetorecError(f"fields keys must be non-empty strings, got {show(name)}")
            parts[name] = _render(dataset, template, f"fields[{name!r}]", none_ok=False)
    parts = {name: [_collapse(text) for text in texts] for name, texts in parts.items()}
    joined = [" ".join(p for p in row if p) for row in zip(*parts.values(), strict=True)]
    filled = _apply_empty_policy(list(joined), dataset, empty_text)
    first = next(iter(parts))
    for code, (before, after) in enumerate(zip(joined, filled, strict=True)):
        if before != after:  # "placeholder": the id goes into the first field
            parts[first][code] = after
    return parts


def default_fields(dataset: Dataset) -> dict[str, list[str]]:
    """The dataset's default item fields (before the empty-text policy)."""
    items = _item_table(dataset)
    if dataset.name in MOVIELENS_DATASETS or dataset.name.startswith("movielens"):
        return movielens_fields(items)
    if dataset.name in AMAZON_DATASETS and "text" in items.columns:
        return amazon_fields([display(value) for value in items["text"]])
    columns = ["text"] if "text" in items.columns else _text_like_columns(items)
    if not columns:
        raise ParetorecError(
            f"dataset {dataset.name!r} has no text columns in its item table "
            f"(columns: {', '.join(map(str, items.columns))}); pass fields, e.g. "
            "fields={'title': '{title}', 'genres': '{genres}'}"
        )
    return {column: [display(value) for value in items[column]] for column in columns}


def movielens_fields(items: pd.DataFrame) -> dict[str, list[str]]:
    """``title`` (``"Title (Year)"``) and ``genres`` (``"Genre, Genre"``) of a MovieLens table."""
    names, years, genres = _movielens_columns(items)
    titles = [movielens_text(title, year) for title, year in zip(names, years, strict=True)]
    genre_texts = [movielens_text("", None, row) for row in genres]
    return {"title": titles, "genres": genre_texts}


def amazon_fields(texts: Sequence[str]) -> dict[str, list[str]]:
    """Split Amazon release texts ``"Title. Category path. Brand."`` into three fields.

    The release writes ``f"{title}. {category}. {brand}."``; the category path starts at
    ``"Industrial & Scientific"`` and has no ``". "`` inside, while titles and brands may
    (``"Norton Abrasives - St. Gobain"``). An empty category or brand leaves ``". ."``.

    >>> amazon_fields(["Rye Malt (5 lb). . Briess."])
    {'title': ['Rye Malt (5 lb)'], 'category': [''], 'brand': ['Briess']}
    >>> amazon_fields(["Wheel. Industrial & Scientific Abrasives. Norton - St. Gobain."])["brand"]
    ['Norton - St. Gobain']
    """
    marker = ". " + AMAZON_CATEGORY_ROOT
    titles, categories, brands = [], [], []
    for text in check_texts(texts, "texts"):
        body = text[:-1] if text.endswith(".") else text
        if marker in body:
            title, rest = body.split(marker, 1)
            category, _, brand = (AMAZON_CATEGORY_ROOT + rest).partition(". ")
        elif ". . " in body:
            title, _, brand = body.partition(". . ")
            category = ""
        else:  # no recognisable structure: all of it is the title
            title, category, brand = body, "", ""
        titles.append(title.strip(" ."))
        categories.append(category.strip(" ."))
        brands.append(brand.strip(" ."))
    return {"title": titles, "category": categories, "brand": brands}


def default_texts(dataset: Dataset) -> list[str]:
    """The dataset's default item texts (before the empty-text policy)."""
    items = _item_table(dataset)
    if dataset.name in MOVIELENS_DATASETS or dataset.name.startswith("movielens"):
        return movielens_texts(items)
    if "text" in items.columns:
        return [display(value) for value in items["text"]]
    columns = _text_like_columns(items)
    if not columns:
        raise ParetorecError(
            f"dataset {dataset.name!r} has no text columns in its item table "
            f"(columns: {', '.join(map(str, items.columns))}); pass template, e.g. "
            "template='{title} | {genres}', or a callable row -> str"
        )
    rows = zip(*(items[c].tolist() for c in columns), strict=True)
    return [" | ".join(part for part in map(display, row) if part) for row in rows]


def movielens_texts(items: pd.DataFrame) -> list[str]:
    """``"Title (Year) | Genre, Genre"`` for a MovieLens item table (title, year, genres)."""
    return [
        movielens_text(title, year, genre)
        for title, year, genre in zip(*_movielens_columns(items), strict=True)
    ]


def _movielens_columns(items: pd.DataFrame) -> tuple[list[Any], list[Any], list[Any]]:
    """Titles, years and genres of a MovieLens item table (year and genres optional)."""
    if "title" not in items.columns:
        raise ParetorecError(
            "a MovieLens item table must have a 'title' column; "
            f"columns present: {', '.join(map(str, items.columns))}"
        )
    years = items["year"].tolist() if "year" in items.columns else [None] * len(items)
    genres = items["genres"].tolist() if "genres" in items.columns else [()] * len(items)
    return items["title"].tolist(), years, genres


def movielens_text(title: Any, year: Any = None, genres: Any = ()) -> str:
    """One MovieLens item as ``"Title (Year) | Genre, Genre"`` (parts left out when absent).

    >>> movielens_text("Usual Suspects, The (1995)", 1995, ("Crime", "Thriller"))
    'The Usual Suspects (1995) | Crime, Thriller'
    """
    name = display(title)
    if name.lower() in _PLACEHOLDERS:
        return ""
    found = _TRAILING_YEAR.search(name)
    year_text = display(year)
    if found:
        name = name[: found.start()]
        year_text = year_text or found.group(1)
    name = _front_article(name)
    kept_genres = [
        g for g in map(display, _as_list(genres)) if g and g.lower() not in _PLACEHOLDERS
    ]
    text = f"{name} ({year_text})" if name and year_text else name
    if kept_genres:
        text = f"{text} | {', '.join(kept_genres)}" if text else ", ".join(kept_genres)
    return text


def format_texts(items: pd.DataFrame, template: str, *, dataset_name: str = "dataset") -> list[str]:
    """Fill a format string (``"{title} | {genres}"``) with each row's display values."""
    fields = _template_fields(template)
    missing = [f for f in fields if f not in items.columns]
    if missing:
        raise ParetorecError(
            f"template refers to column {missing[0]!r}, which the item table of "
            f"{dataset_name!r} does not have; available columns: "
            f"{', '.join(map(str, items.columns))}"
        )
    columns = {f: [display(v) for v in items[f].tolist()] for f in fields}
    texts = []
    for row in range(len(items)):
        values = {f: columns[f][row] for f in fields}
        try:
            texts.append(template.format_map(values))
        except (ValueError, TypeError) as exc:  # a format spec that does not fit a string
            raise ParetorecError(f"template {template!r} cannot be applied: {exc}") from exc
    return texts


def display(value: Any) -> str:
    """A cell as text: missing -> ``""``, lists joined with ``", "``, ``1995.0`` -> ``"1995"``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
        return ", ".join(part for part in map(display, value) if part)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value).strip()


# --------------------------------------------------------------------------- helpers
def _check_inputs(dataset: Any, empty_text: Any) -> None:
    if not isinstance(dataset, Dataset):
        raise ParetorecError(f"dataset must be a paretorec Dataset, got {type(dataset).__name__}")
    check_choice(empty_text, "empty_text", EMPTY_TEXT_POLICIES)


def _render(dataset: Dataset, template: Any, name: str, *, none_ok: bool) -> list[str]:
    """Texts from one template (a format string or a callable); errors name ``name``."""
    items = _item_table(dataset)
    if isinstance(template, str):
        return format_texts(items, template, dataset_name=dataset.name)
    if callable(template):
        return _call_template(items, template)
    raise ParetorecError(
        f"{name} must be {'None, ' if none_ok else ''}a format string or a callable row -> str; "
        f"got {show(template)} ({type(template).__name__})"
    )


def _item_table(dataset: Dataset) -> pd.DataFrame:
    items = dataset.items
    if len(items) != dataset.n_items:
        # Datasets built by hand may carry no item table; the ids are then the only text.
        return pd.DataFrame({"item_id": dataset.item_ids})
    return items


def _front_article(title: str) -> str:
    head, sep, rest = title.partition(" (")  # "Seventh Seal, The (Sjunde inseglet, Det)"
    match = _TRAILING_ARTICLE.match(head)
    if match is None:
        return title
    article = match["article"]
    joined = f"{article}{match['body']}" if article.endswith("'") else f"{article} {match['body']}"
    return joined + sep + rest


def _as_list(value: Any) -> list[Any]:
    if value is None or value is pd.NA:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, float) and math.isnan(value):
        return []
    if isinstance(value, Sequence | np.ndarray | set | frozenset):
        return list(value)
    return [value]


def _template_fields(template: str) -> list[str]:
    fields: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ParetorecError(f"template {template!r} is not a valid format string: {exc}") from exc
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if not field or not re.fullmatch(r"[^.\[\]]+", field):
            raise ParetorecError(
                f"template fields must be item-table column names such as {{title}}; "
                f"got {{{field}}} in {template!r}"
            )
        if field not in fields:
            fields.append(field)
    if not fields:
        raise ParetorecError(
            f"template {template!r} names no column; use fields such as '{{title}} | {{genres}}'"
        )
    return fields


def _call_template(items: pd.DataFrame, template: Callable[[Mapping[str, Any]], str]) -> list[str]:
    texts = []
    for position, row in enumerate(items.to_dict(orient="records")):
        text = template({str(key): value for key, value in row.items()})
        if not isinstance(text, str):
            raise ParetorecError(
                f"template callable must return a str; for item code {position} it returned "
                f"{show(text)} ({type(text).__name__})"
            )
        texts.append(text)
    return texts


def _text_like_columns(items: pd.DataFrame) -> list[str]:
    columns = []
    for column in items.columns:
        if _SKIPPED_COLUMN.search(str(column)):
            continue
        values = [v for v in items[column].tolist() if display(v)]
        if values and all(_is_text_like(v) for v in values):
            columns.append(str(column))
    return columns


def _is_text_like(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return all(isinstance(v, str) for v in value)
    return False


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _apply_empty_policy(texts: list[str], dataset: Dataset, policy: str) -> list[str]:
    empty = [code for code, text in enumerate(texts) if not text]
    if not empty or policy == "zero":
        return texts
    if policy == "error":
        first = ", ".join(repr(display(dataset.item_ids[c])) for c in empty[:5])
        raise ParetorecError(
            f"{len(empty)} of {len(texts)} items of {dataset.name!r} have empty text "
            f"(first ids: {first}); pass empty_text='zero' (zero vectors) or "
            "empty_text='placeholder' (the item id as text)"
        )
    for code in empty:  # "placeholder"
        texts[code] = display(dataset.item_ids[code])
    return texts
