"""A tiny serving bundle built from a synthetic catalogue (fast, no data needed).

Two user communities: even users read space stories (items 0..29), odd users cookery
(items 30..59); titles say so, so text similarity knows the communities too. The front is
a handful of real policies evaluated on a carved validation part and on test.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paretorec.data import Dataset, carve_validation, stratified_split
from paretorec.models import create_model
from paretorec.pareto import PolicyEvaluator
from paretorec.ranking import CandidateSet, ItemContext, Policy

SPACE = ["rocket", "galaxy", "planet", "orbit", "alien", "starship"]
COOKING = ["recipe", "kitchen", "baking", "pasta", "soup", "spice"]
N_ITEMS = 60
OBJECTIVES = ("ndcg", "ild", "coverage", "novelty")
POLICIES = (
    Policy(k=5),
    Policy(k=5, reranker="mmr", mmr_lambda=0.5),
    Policy(k=5, reranker="mmr", mmr_lambda=0.2),
    Policy(k=5, novelty_boost=0.5),
    Policy(k=5, novelty_boost=1.5, reranker="mmr", mmr_lambda=0.7),
    Policy(k=5, popularity_penalty=1.0),
    Policy(k=5, long_tail_boost=1.0, reranker="dpp", dpp_theta=0.5),
)


class WordEncoder:
    """Deterministic stand-in for a language model: hashed bag of words, unit rows."""

    model_name = "word-hash-64"

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def tiny_catalogue(n_users: int = 40, per_user: int = 10, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    titles, genres = [], []
    for i in range(N_ITEMS):
        words = SPACE if i < N_ITEMS // 2 else COOKING
        chosen = rng.choice(words, size=2, replace=False)
        titles.append(f"{chosen[0].title()} {chosen[1]} {i}")
        genres.append(("Space", "Adventure") if i < N_ITEMS // 2 else ("Food",))
    popular = np.exp(-np.arange(N_ITEMS // 2) / 8.0)
    rows = []
    for user in range(n_users):
        offset = 0 if user % 2 == 0 else N_ITEMS // 2
        items = rng.choice(N_ITEMS // 2, size=per_user, replace=False, p=popular / popular.sum())
        for t, item in enumerate(items):
            rows.append((f"u{user}", f"m{item + offset}", float(rng.integers(1, 6)), float(t)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    table = pd.DataFrame(
        {"item_id": [f"m{i}" for i in range(N_ITEMS)], "title": titles, "genres": genres}
    )
    return Dataset.from_frames(
        "tiny-serving",
        frame,
        timestamp_col="timestamp",
        label_columns=["rating"],
        items=table,
        label_ranges={"rating": (1, 5)},
    )


MODELS = {
    "ease": {"regularization": 10.0},
    "bpr": {"factors": 16, "epochs": 5},
    "sequential": {"item_mode": "id", "hidden": 16, "n_layers": 1, "epochs": 2, "seed": 0},
}


def _evaluate(
    dataset: Dataset, train: Dataset, target: Dataset, vectors: np.ndarray, model_name: str
) -> tuple:
    model = create_model(model_name, **MODELS[model_name]).fit(train)
    relevant = target.to_csr()
    users = np.flatnonzero((np.diff(relevant.indptr) > 0) & (np.diff(model.seen.indptr) > 0))
    evaluator = PolicyEvaluator(
        candidates=CandidateSet.from_model(model, users, 20),
        relevant=relevant[users],
        context=ItemContext.from_training(model.seen, vectors),
        objectives=OBJECTIVES,
        k=5,
    )
    return [evaluator.evaluate(policy) for policy in POLICIES], model


def build_tiny_bundle(
    path: Path, *, ranker: bool = False, encoder: object = None, model: str = "ease"
) -> Path:
    """Write the tiny bundle to ``path`` (text vectors from ``encoder``, default WordEncoder;
    candidates from ``model``, "ease", "bpr" or "sequential")."""
    from paretorec.serving import write_bundle

    dataset = tiny_catalogue()
    vectors = dataset.item_multi_hot("genres")[0].toarray().astype(np.float32)
    split = stratified_split(dataset, ratio=0.75, seed=0)
    inner = carve_validation(split, ratio=0.8, seed=1)
    assert inner.valid is not None
    validation, _ = _evaluate(dataset, inner.train, inner.valid, vectors, model)
    test, fitted = _evaluate(dataset, split.train, split.test, vectors, model)
    fitted_ranker = None
    if ranker:
        from paretorec.multitask import MultiTaskRanker, funnel_rows

        rows = funnel_rows(split.train, seed=0)
        fitted_ranker = MultiTaskRanker(
            "mmoe", epochs=2, embedding_dim=8, tower_units=(8,), seed=0, num_threads=1
        ).fit(rows, dataset=dataset)
    front = [
        {"policy": policy.to_dict(), "validation": v, "test": t}
        for policy, v, t in zip(POLICIES, validation, test, strict=True)
    ]
    return write_bundle(
        path,
        dataset=dataset,
        model=fitted,
        ranker=fitted_ranker,
        vectors=vectors,
        objectives=OBJECTIVES,
        directions=["maximize"] * 4,
        front=front,
        config={"name": "tiny"},
        name="tiny",
        n_candidates=20,
        text_encoder=encoder or WordEncoder(),
    )


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "bundle")


@pytest.fixture(scope="session")
def tiny_bundle_ranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("bundle_ranker") / "bundle", ranker=True)
