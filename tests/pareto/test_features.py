"""Diversity vectors, item groups and user groups chosen from what the data has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from paretorec._validation import ParetorecError
from paretorec.config import ParetoConfig
from paretorec.data import Dataset
from paretorec.pareto import run_pareto
from paretorec.pareto._features import choose_item_features, item_groups, item_vectors
from tests.conftest import make_tiny


def _with_items(dataset: Dataset, **columns: Any) -> Dataset:
    items = pd.DataFrame({"item_id": dataset.item_ids, **columns})
    return Dataset.from_frames(
        "shop",
        pd.DataFrame(
            {
                "user_id": dataset.user_ids[dataset.interactions["user"]],
                "item_id": dataset.item_ids[dataset.interactions["item"]],
            }
        ),
        items=items,
    )


def test_auto_prefers_multi_valued_then_text_then_categorical_then_model() -> None:
    tiny = make_tiny()
    n = tiny.n_items
    brand = np.where(np.arange(n) % 2 == 0, "acme", "zed")
    text = [f"item {i}" for i in range(n)]
    cases = [
        (tiny, False, "column:genres"),
        (_with_items(tiny, brand=brand, text=text), False, "text"),
        (_with_items(tiny, brand=brand), False, "column:brand"),
        (_with_items(tiny), True, "model"),
        (_with_items(tiny), False, "none"),
    ]
    for dataset, has_embeddings, expected in cases:
        choice = choose_item_features(
            dataset, "auto", "long_tail", model_has_embeddings=has_embeddings
        )
        assert choice.vectors == expected
    one_hot = item_vectors(cases[2][0], choose_item_features(
        cases[2][0], "brand", "long_tail", model_has_embeddings=False))  # fmt: skip
    assert one_hot.shape == (n, 2) and np.all(one_hot.sum(axis=1) == 1)
    choice = choose_item_features(tiny, "genres", "genres=C", model_has_embeddings=False)
    groups = item_groups(tiny, choice)
    assert groups is not None and groups.sum() == n // 2


BAD_FEATURES = [
    ({"vectors": "brand"}, "got 'brand' (item columns usable as features: {'genres': 'multi'}"),
    ({"vectors": "text"}, "'text' needs item text; dataset 'tiny' has none"),
    ({"vectors": "model"}, "'model' needs a candidate model with item embeddings"),
    ({"groups": "genres"}, "item_groups must be 'long_tail' or 'COLUMN=VALUE'"),
    ({"groups": "genres=Z"}, "no item has genres = 'Z'"),
]


@pytest.mark.parametrize(("change", "message"), BAD_FEATURES)
def test_bad_feature_choices_name_what_the_data_has(change: dict[str, str], message: str) -> None:
    tiny = make_tiny()
    with pytest.raises(ParetorecError, match=re.escape(message)):
        choice = choose_item_features(
            tiny,
            change.get("vectors", "auto"),
            change.get("groups", "long_tail"),
            model_has_embeddings=False,
        )
        item_groups(tiny, choice)


def _quick(tmp_path: Path, model: str, params: dict[str, Any]) -> ParetoConfig:
    return ParetoConfig.from_dict(
        {
            "output_dir": str(tmp_path),
            "candidates": {"model": model, "params": params, "n_candidates": 20},
            "search": {
                "n_trials": 4,
                "population_size": 2,
                "storage": None,
                "compare": {"mmr_only": {"rerankers": ["mmr"], "boosts": []}},
            },
        }
    )


def test_data_without_features_still_runs(tmp_path: Path) -> None:
    bare = _with_items(make_tiny())  # no item columns at all
    console = Console(record=True, width=200)
    run = run_pareto(
        _quick(tmp_path, "ease", {"regularization": 10.0}),
        dataset=bare,
        console=console,
        progress=False,
    )
    assert "ild" not in run.objectives and set(run.holdout) == {"full"}  # mmr_only dropped
    assert "diversity unavailable" in console.export_text()
    assert run.features["item_vectors"] == "none (ILD unavailable)"
    bpr = run_pareto(
        _quick(tmp_path, "bpr", {"factors": 8, "steps": 600}),
        dataset=bare,
        console=Console(record=True),
        progress=False,
    )
    assert "ild" in bpr.objectives
    assert bpr.features["item_vectors"] == "the candidate model's item embeddings"
    assert np.all(bpr.holdout["full"].test[:, bpr.objectives.index("ild")] > 0)
