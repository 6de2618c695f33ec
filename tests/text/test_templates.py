"""Item-text templates: dataset defaults, overrides, errors, the empty-text policy."""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from paretorec import ParetorecError
from paretorec.data import Dataset
from paretorec.text import _templates, amazon_fields, item_fields, item_texts, movielens_text

from ..conftest import make_tiny


def _dataset(name: str, items: pd.DataFrame) -> Dataset:
    """A small dataset with the given item table (every item interacted with once)."""
    frame = pd.DataFrame(
        {"user_id": [f"u{i % 3}" for i in range(len(items))], "item_id": items["item_id"]}
    )
    return Dataset.from_frames(name, frame, items=items)


def movielens_like(name: str = "movielens-100k") -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": [1, 2, 3, 4, 5],
            "title": [
                "Star Wars (1977)",
                "Usual Suspects, The (1995)",
                "Seventh Seal, The (Sjunde inseglet, Det) (1957)",
                "unknown",
                "Land Before Time III: The Time of the Great Giving (1995) (V)",
            ],
            "year": pd.array([1977, 1995, 1957, None, None], dtype="Int64"),
            "release_date": ["01-Jan-1977", "", "", "", ""],
            "imdb_url": ["http://x", "", "", "", ""],
            "genres": [
                ("Action", "Sci-Fi"),
                ("Crime", "Thriller"),
                ("Drama",),
                ("unknown",),
                ("Animation", "Children's"),
            ],
        }
    )
    return _dataset(name, items)


def amazon_like() -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": ["B01", "B02", "B03"],
            "text": [
                "Gorilla Glue, 8 ounce. Industrial & Scientific Adhesives. Gorilla.",
                "  DEWALT   Grinding Wheel.  Abrasives. DEWALT. ",
                "",
            ],
        }
    )
    return _dataset("amazon-scientific", items)


# --------------------------------------------------------------------------- defaults
def test_movielens_default_writes_title_year_genres_once() -> None:
    texts = item_texts(movielens_like())
    assert texts == [
        "Star Wars (1977) | Action, Sci-Fi",
        "The Usual Suspects (1995) | Crime, Thriller",
        "The Seventh Seal (Sjunde inseglet, Det) (1957) | Drama",
        "",  # placeholder title and genre: nothing to say
        "Land Before Time III: The Time of the Great Giving (1995) (V) | Animation, Children's",
    ]


def test_movielens_1m_uses_the_same_default() -> None:
    assert item_texts(movielens_like("movielens-1m")) == item_texts(movielens_like())


@pytest.mark.parametrize(
    ("title", "year", "genres", "expected"),
    [
        ("Toy Story (1995)", 1995, ("Animation",), "Toy Story (1995) | Animation"),
        ("Toy Story (1995)", None, (), "Toy Story (1995)"),  # year read from the title
        ("Toy Story", 1995.0, [], "Toy Story (1995)"),  # year from the column, float
        ("Cage aux Folles, La (1978)", 1978, (), "La Cage aux Folles (1978)"),
        ("Appartement, L' (1996)", 1996, (), "L'Appartement (1996)"),
        ("Love, Texas (1990)", 1990, (), "Love, Texas (1990)"),  # not an article
        ("unknown", None, ("unknown",), ""),
        (None, None, ("Drama",), "Drama"),
    ],
)
def test_movielens_text(title: Any, year: Any, genres: Any, expected: str) -> None:
    assert movielens_text(title, year, genres) == expected


def test_module_examples_run() -> None:
    assert doctest.testmod(_templates).failed == 0


def test_amazon_default_is_the_release_text_tidied() -> None:
    texts = item_texts(amazon_like())
    assert texts == [
        "Gorilla Glue, 8 ounce. Industrial & Scientific Adhesives. Gorilla.",
        "DEWALT Grinding Wheel. Abrasives. DEWALT.",
        "",
    ]


def test_unknown_dataset_joins_its_text_columns() -> None:
    tiny = make_tiny()
    texts = item_texts(tiny)
    assert len(texts) == tiny.n_items
    assert texts[0] == "A" and texts[-1] == "B, C"  # genres tuples joined with ", "


def test_unknown_dataset_without_text_columns_is_an_error() -> None:
    items = pd.DataFrame({"item_id": [1, 2], "price": [1.5, 2.0]})
    with pytest.raises(ParetorecError, match=r"no text columns.*price.*pass template"):
        item_texts(_dataset("shop", items))


# --------------------------------------------------------------------------- overrides
def test_format_template_over_item_columns() -> None:
    texts = item_texts(movielens_like(), "{title} :: {genres} :: {year}")
    assert texts[0] == "Star Wars (1977) :: Action, Sci-Fi :: 1977"
    assert texts[3] == "unknown :: unknown ::"  # missing year -> "" (then stripped)


def test_callable_template_gets_the_row() -> None:
    texts = item_texts(amazon_like(), lambda row: f"{row['item_id']}: {row['text'][:6]}")
    assert texts == ["B01: Gorill", "B02: DEWA", "B03:"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{title} | {cast}", r"column 'cast'.*available columns: item_id, title, year"),
        ("no fields", r"names no column"),
        ("{title[0]}", r"column names such as \{title\}; got \{title\[0\]\}"),
        ("{}", r"column names such as \{title\}; got \{\}"),
        ("{title", r"not a valid format string"),
        ("{year:d}", r"cannot be applied"),
        (3, r"template must be None, a format string or a callable.*got 3 \(int\)"),
        (lambda row: 5, r"must return a str; for item code 0 it returned 5 \(int\)"),
    ],
)
def test_bad_templates(template: Any, message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        item_texts(movielens_like(), template)


def test_dataset_must_be_a_dataset() -> None:
    with pytest.raises(ParetorecError, match="dataset must be a paretorec Dataset, got list"):
        item_texts([1, 2])


# --------------------------------------------------------------------------- empty text
def test_empty_text_zero_keeps_blank_strings() -> None:
    assert item_texts(amazon_like(), empty_text="zero")[2] == ""


def test_empty_text_placeholder_uses_the_item_id() -> None:
    assert item_texts(amazon_like(), empty_text="placeholder")[2] == "B03"
    assert item_texts(movielens_like(), empty_text="placeholder")[3] == "4"


def test_empty_text_error_lists_count_and_first_ids() -> None:
    with pytest.raises(
        ParetorecError,
        match=r"1 of 3 items of 'amazon-scientific' have empty text \(first ids: 'B03'\); "
        r"pass empty_text='zero'",
    ):
        item_texts(amazon_like(), empty_text="error")


def test_empty_text_policy_is_validated() -> None:
    with pytest.raises(ParetorecError, match="empty_text must be one of 'zero', 'error'"):
        item_texts(amazon_like(), empty_text="skip")


def test_whitespace_only_counts_as_empty() -> None:
    items = pd.DataFrame({"item_id": ["a", "b"], "text": ["  \t ", "ok"]})
    texts = item_texts(_dataset("x", items), empty_text="placeholder")
    assert texts == ["a", "ok"]


# --------------------------------------------------------------------------- real data
def test_movielens_100k_texts(ml100k: Dataset) -> None:
    texts = item_texts(ml100k)
    assert len(texts) == ml100k.n_items == 1682
    code = int(ml100k.item_index(1)[0])
    assert texts[code] == "Toy Story (1995) | Animation, Children's, Comedy"
    assert texts[int(ml100k.item_index(50)[0])].startswith("Star Wars (1977) | Action, Adventure")
    assert not any("(1995) (1995)" in t for t in texts)
    empty = [ml100k.item_ids[i] for i, t in enumerate(texts) if not t]
    assert empty == [267]  # the release's "unknown" movie


def test_amazon_scientific_texts(amazon_dir: Path) -> None:
    from paretorec.data import load_amazon_scientific

    dataset = load_amazon_scientific(amazon_dir)
    texts = item_texts(dataset)
    assert len(texts) == dataset.n_items == 4385
    code = int(dataset.item_index("B0000223SI")[0])
    assert texts[code] == (
        "PORTER-CABLE 740000801 4 1/2-Inch x 10yd 80 Grit Adhesive-Backed Sanding Roll. "
        "Industrial & Scientific Abrasive & Finishing Products Manual Sanding Products "
        "Sanding Rolls. PORTER-CABLE."
    )
    lengths = np.array([len(t) for t in texts])
    assert (lengths > 0).mean() > 0.99


# --------------------------------------------------------------------------- fields
def test_movielens_fields_split_title_and_genres() -> None:
    fields = item_fields(movielens_like())
    assert list(fields) == ["title", "genres"]
    assert fields["title"][:2] == ["Star Wars (1977)", "The Usual Suspects (1995)"]
    assert fields["genres"][:2] == ["Action, Sci-Fi", "Crime, Thriller"]
    assert fields["title"][3] == fields["genres"][3] == ""  # placeholders carry nothing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Gorilla Glue, 8 ounce. Industrial & Scientific Adhesives. Gorilla.",
            ("Gorilla Glue, 8 ounce", "Industrial & Scientific Adhesives", "Gorilla"),
        ),
        (  # a brand with ". " inside stays whole
            "Wheel. Industrial & Scientific Abrasives. Norton Abrasives - St. Gobain.",
            ("Wheel", "Industrial & Scientific Abrasives", "Norton Abrasives - St. Gobain"),
        ),
        (  # a title with ". " inside stays whole
            "Stick. Made of Grit. Industrial & Scientific Abrasives. Norton.",
            ("Stick. Made of Grit", "Industrial & Scientific Abrasives", "Norton"),
        ),
        ("Rye Malt (5 lb). . Briess.", ("Rye Malt (5 lb)", "", "Briess")),  # no category
        (  # no brand
            "Lugs 8 AWG. Industrial & Scientific Terminals. .",
            ("Lugs 8 AWG", "Industrial & Scientific Terminals", ""),
        ),
        ("Eyewear, Clear. . .", ("Eyewear, Clear", "", "")),
        ("DEWALT Grinding Wheel", ("DEWALT Grinding Wheel", "", "")),  # no structure
        ("", ("", "", "")),
    ],
)
def test_amazon_fields_split(text: str, expected: tuple[str, str, str]) -> None:
    fields = amazon_fields([text])
    assert (fields["title"][0], fields["category"][0], fields["brand"][0]) == expected


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ("Rye Malt. . Briess.", r"texts must be a sequence of strings, got a single str"),
        (["ok", 3], r"texts must hold only strings; texts\[1\] is 3 \(int\)"),
    ],
)
def test_amazon_fields_rejects_bad_texts(texts: Any, message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        amazon_fields(texts)


def test_amazon_default_fields() -> None:
    fields = item_fields(amazon_like())
    assert list(fields) == ["title", "category", "brand"]
    assert fields["title"][0] == "Gorilla Glue, 8 ounce"
    assert fields["brand"][0] == "Gorilla"


def test_unknown_dataset_fields_are_its_text_columns() -> None:
    tiny = make_tiny()
    fields = item_fields(tiny)
    joined = [" | ".join(p for p in row if p) for row in zip(*fields.values(), strict=True)]
    assert joined == item_texts(tiny)
    with pytest.raises(ParetorecError, match=r"no text columns.*pass fields"):
        item_fields(_dataset("shop", pd.DataFrame({"item_id": [1, 2], "price": [1.5, 2.0]})))


def test_custom_fields_use_templates() -> None:
    fields = item_fields(
        movielens_like(), {"name": "{title}", "kind": lambda row: display_genres(row)}
    )
    assert fields["name"][1] == "Usual Suspects, The (1995)"
    assert fields["kind"][0] == "Action/Sci-Fi"


def display_genres(row: Any) -> str:
    return "/".join(row["genres"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, r"fields must be None or a non-empty mapping.*got \{\}"),
        ("{title}", r"fields must be None or a non-empty mapping.*got '\{title\}'"),
        ({"": "{title}"}, r"fields keys must be non-empty strings, got ''"),
        ({"t": 3}, r"fields\['t'\] must be a format string or a callable.*got 3 \(int\)"),
        ({"t": "{cast}"}, r"column 'cast'"),
    ],
)
def test_bad_fields(fields: Any, message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        item_fields(movielens_like(), fields)


def test_fields_empty_policy_counts_items_with_no_field_at_all() -> None:
    assert item_fields(amazon_like())["title"][2] == ""
    placeholder = item_fields(amazon_like(), empty_text="placeholder")
    assert placeholder["title"][2] == "B03" and placeholder["brand"][2] == ""
    with pytest.raises(ParetorecError, match=r"1 of 3 items .* \(first ids: 'B03'\)"):
        item_fields(amazon_like(), empty_text="error")
    # an item with only some fields empty is kept as it is under every policy
    items = pd.DataFrame({"item_id": ["a"], "text": ["Rye Malt. . Briess."]})
    kept = item_fields(_dataset("amazon-scientific", items), empty_text="error")
    assert kept == {"title": ["Rye Malt"], "category": [""], "brand": ["Briess"]}


def test_amazon_scientific_fields_rebuild_the_release_text(amazon_dir: Path) -> None:
    from paretorec.data import load_amazon_scientific

    dataset = load_amazon_scientific(amazon_dir)
    texts, fields = item_texts(dataset), item_fields(dataset)
    rebuilt = [
        f"{title}. {category}. {brand}."
        for title, category, brand in zip(*fields.values(), strict=True)
    ]
    same = [
        a.replace(" .", ".") == b.replace(" .", ".") for a, b in zip(rebuilt, texts, strict=True)
    ]
    assert sum(same) == len(texts)  # every text is exactly its three fields
    assert sum(not c for c in fields["category"]) == 134
    assert all(". " not in c for c in fields["category"])
