"""Quality floors on MovieLens-100k (Microsoft Recommenders protocol): catch silent regressions."""

from __future__ import annotations

import pytest

from paretorec.data import Dataset, stratified_split
from paretorec.evaluation import evaluate_ranking
from paretorec.models import create_model

# Published on this protocol (MS Recommenders README): BiVAE .4751, BPR .4420, SAR .3825.
FLOORS = {
    "popularity": ("ndcg@10", 0.20),
    "itemknn": ("ndcg@10", 0.42),
    "ease": ("ndcg@10", 0.475),
    "bpr": ("ndcg@10", 0.42),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_quality_floor(ml100k: Dataset, name: str) -> None:
    split = stratified_split(ml100k, ratio=0.75, seed=42)
    model = create_model(name, **({"seed": 0} if name == "bpr" else {})).fit(split.train)
    metric, floor = FLOORS[name]
    value = evaluate_ranking(model, split.test, k=10)[metric]
    assert value >= floor, f"{name} {metric} = {value:.4f} fell below the floor {floor}"
