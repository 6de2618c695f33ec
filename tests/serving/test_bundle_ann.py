"""The candidate retrieval index in the serving bundle (ANNIndex over BPR / sequential item
vectors): exported, checksummed, loaded, and used by the Recommender."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paretorec import ParetorecError
from paretorec.data import Dataset
from paretorec.models import create_model
from paretorec.ranking import ANNIndex, Policy, retrieval_items
from paretorec.serving import Recommender, load_bundle, write_bundle

from .conftest import WordEncoder, build_tiny_bundle

# small, fast fits on purpose: not meant to converge
pytestmark = pytest.mark.filterwarnings("ignore::paretorec.models.ConvergenceWarning")


@pytest.fixture(scope="module")
def bpr_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bundle(tmp_path_factory.mktemp("ann") / "bundle", model="bpr")


def _lists(recommender: Recommender, **kwargs: object) -> tuple[list, list]:
    out = recommender.recommend(**kwargs)  # type: ignore[arg-type]
    return [i.item_id for i in out.items], [i.candidate_score for i in out.items]


def test_embedding_bundle_carries_a_checksummed_index(bpr_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(bpr_bundle)
    assert bundle.ann is not None and bundle.ann.built_kind_ == "flat"  # 60 items: exact
    assert bundle.meta["ann"]["kind"] == "flat" and bundle.meta["ann"]["n_items"] == 60
    assert "ann='flat'" in repr(bundle)
    manifest = json.loads((bpr_bundle / "manifest.json").read_text())
    assert any(name.startswith("ann/") for name in manifest["files"])
    assert not list(bpr_bundle.rglob("*.pkl"))
    # a flat index under "auto" keeps the exact path
    assert Recommender(bundle).ann is None
    damaged = tmp_path / "damaged"
    shutil.copytree(bpr_bundle, damaged)
    target = next(p for p in (damaged / "ann").iterdir() if p.suffix == ".safetensors")
    target.write_bytes(target.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(ParetorecError, match="ann/"):
        load_bundle(damaged)


def test_models_without_vectors_have_no_index(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)  # EASE
    assert bundle.ann is None and bundle.meta["ann"] is None
    with pytest.raises(ParetorecError, match="retrieval='ann' needs a bundle with an ANN"):
        Recommender(bundle, retrieval="ann")
    with pytest.raises(ParetorecError, match="retrieval must be one of"):
        Recommender(bundle, retrieval="faiss")


@pytest.mark.parametrize("model", ["bpr", "sequential"])
def test_exact_index_serves_the_exact_lists(tmp_path: Path, model: str) -> None:
    path = build_tiny_bundle(tmp_path / "bundle", model=model)
    bundle = load_bundle(path)
    exact = Recommender(bundle, retrieval="exact")
    via_index = Recommender(bundle, retrieval="ann")
    assert via_index.ann is not None and exact.ann is None
    requests: list[dict[str, object]] = [
        {"user_id": user, "point": point} for user in ("u0", "u1", "u7") for point in (0, 1, 6)
    ]
    requests += [
        {"user_id": "u2", "exclude": ["m3", "m5"]},
        {"history": ["m31", "m33", "m40"]},  # fold-in
        {"user_id": "new", "history": ["m2", "m4"], "k": 10},
        {"user_id": "nobody"},  # popularity fallback, no index involved
    ]
    for request in requests:
        ids_exact, scores_exact = _lists(exact, **request)
        ids_ann, scores_ann = _lists(via_index, **request)
        assert ids_ann == ids_exact, request
        np.testing.assert_allclose(scores_ann, scores_exact, rtol=1e-5, atol=1e-5)


def _synthetic(n_items: int = 3000, n_users: int = 120, seed: int = 0) -> Dataset:
    """Users drawn to items by latent tastes (a BPR-friendly catalogue)."""
    rng = np.random.default_rng(seed)
    tastes, factors = rng.normal(size=(n_users, 8)), rng.normal(size=(n_items, 8))
    rows = []
    for user in range(n_users):
        affinity = factors @ tastes[user]
        p = np.exp(affinity - affinity.max())
        items = rng.choice(n_items, size=30, replace=False, p=p / p.sum())
        rows += [(f"u{user}", f"i{item}", 1.0, float(t)) for t, item in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    words = ["amber", "basil", "cedar", "dune", "ember", "fjord", "grove", "heath"]
    titles = [f"{words[int(np.argmax(f))]} item {i}" for i, f in enumerate(factors)]
    table = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": titles})
    return Dataset.from_frames("synthetic-ann", frame, timestamp_col="timestamp", items=table)


@pytest.fixture(scope="module")
def synthetic_bpr() -> tuple[Dataset, object]:
    dataset = _synthetic()
    return dataset, create_model("bpr", factors=16, epochs=3, seed=0).fit(dataset)


def _write_synthetic(path: Path, dataset: Dataset, model: object, ann: ANNIndex) -> Path:
    front = [{"policy": Policy(k=10).to_dict(), "validation": {"ndcg": 0.1}, "test": {"ndcg": 0.1}}]
    return write_bundle(
        path,
        dataset=dataset,
        model=model,  # type: ignore[arg-type]
        ranker=None,
        vectors=np.zeros((dataset.n_items, 1), dtype=np.float32),
        objectives=["ndcg"],
        directions=["maximize"],
        front=front,
        n_candidates=100,
        text_encoder=WordEncoder(),
        ann=ann,
    )


def test_export_chooses_nprobe_on_training_users(synthetic_bpr, tmp_path: Path) -> None:
    dataset, model = synthetic_bpr
    path = _write_synthetic(tmp_path / "b", dataset, model, ANNIndex("ivf", nlist=64))
    bundle = load_bundle(path)
    meta = bundle.meta["ann"]
    assert meta["kind"] == "ivf" and meta["nlist"] == 64
    assert meta["nprobe_recall"] >= 0.97 and 1 <= meta["nprobe"] < 64
    assert bundle.ann is not None and bundle.ann.nprobe == meta["nprobe"]  # saved with it


def test_forced_ivf_index_recalls_the_exact_candidates_and_serves_new_items(
    synthetic_bpr, tmp_path: Path
) -> None:
    dataset, model = synthetic_bpr
    forced = ANNIndex("ivf_sq8", nlist=64, nprobe=4)  # a given nprobe is kept
    bundle = load_bundle(_write_synthetic(tmp_path / "bundle", dataset, model, forced))
    assert bundle.ann is not None and bundle.ann.built_kind_ == "ivf_sq8"
    assert bundle.meta["ann"]["nprobe"] == 4 and bundle.meta["ann"]["nprobe_recall"] is None
    approximate = Recommender(bundle, encoder=WordEncoder())  # "auto" uses an approximate index
    exact = Recommender(bundle, retrieval="exact")
    assert approximate.ann is bundle.ann
    recalls = []
    for user in range(0, 120, 4):
        found = approximate._rank(f"u{user}", None, 10, (), 0).candidates.items[0]
        wanted = exact._rank(f"u{user}", None, 10, (), 0).candidates.items[0]
        assert len(found) == len(wanted) == 100
        seen = model.seen[exact._users[f"u{user}"]].indices
        assert not np.isin(found, seen).any()
        recalls.append(len(np.intersect1d(found, wanted)) / len(wanted))
    assert np.mean(recalls) >= 0.9, recalls  # 0.98 when written (4 of 64 cells scanned)
    # a folded-in history retrieves through the index too, and its lists agree at the top
    history = list(dataset.item_ids[model.seen[3].indices[:10]])
    top_ann, _ = _lists(approximate, history=history, k=10)
    top_exact, _ = _lists(exact, history=history, k=10)
    assert len(set(top_ann) & set(top_exact)) >= 7
    # items added at run time (text only) are merged from an exact side list
    liked = list(dataset.item_ids[:5])
    approximate.add_items(
        [{"item_id": "fresh", "text": " ".join(bundle.texts[i] for i in range(5))}]
    )
    out = approximate.recommend(history=liked, k=10)
    assert "fresh" in [item.item_id for item in out.items]
    assert approximate.ann is bundle.ann and bundle.ann.n_items_ == dataset.n_items


def test_export_index_choices(tmp_path: Path) -> None:
    path = build_tiny_bundle(tmp_path / "seq", model="sequential")
    assert load_bundle(path).meta["ann"]["metric"] in ("ip", "cosine")
    with pytest.raises(ParetorecError, match="has no item vectors to index"):
        _write_tiny(tmp_path / "ease", "ease", ANNIndex("flat"))
    with pytest.raises(ParetorecError, match="the index holds 5 x 3 item vectors"):
        _write_tiny(tmp_path / "bpr", "bpr", ANNIndex("flat").build(np.ones((5, 3))))
    assert load_bundle(_write_tiny(tmp_path / "none", "bpr", None)).ann is None
    stale = ANNIndex("flat").build(np.random.default_rng(0).normal(size=(60, 17)))
    with pytest.raises(ParetorecError, match="does not hold the candidate model's item vectors"):
        _write_tiny(tmp_path / "stale", "bpr", stale)
    from .conftest import MODELS, tiny_catalogue

    model = create_model("bpr", **MODELS["bpr"]).fit(tiny_catalogue())
    prebuilt = ANNIndex("ivf", nlist=2, nprobe=2).build(retrieval_items(model)[0])
    bundle = load_bundle(_write_tiny(tmp_path / "prebuilt", "bpr", prebuilt, model))
    assert bundle.ann is not None and bundle.meta["ann"]["nlist"] == 2
    flat = ANNIndex("flat").build(np.eye(4))
    with pytest.raises(
        ParetorecError, match="tune_nprobe needs a built IVF index, got kind 'flat'"
    ):
        flat.tune_nprobe(np.eye(4), np.eye(4), 2)


def _write_tiny(path: Path, model_name: str, ann: object, model: object = None) -> Path:
    from .conftest import MODELS, tiny_catalogue

    dataset = tiny_catalogue()
    if model is None:
        model = create_model(model_name, **MODELS[model_name]).fit(dataset)
    front = [{"policy": Policy(k=5).to_dict(), "validation": {"ndcg": 0.1}, "test": {"ndcg": 0.1}}]
    return write_bundle(
        path,
        dataset=dataset,
        model=model,
        ranker=None,
        vectors=np.zeros((dataset.n_items, 1), dtype=np.float32),
        objectives=["ndcg"],
        directions=["maximize"],
        front=front,
        text_encoder=None,
        ann=ann,  # type: ignore[arg-type]
    )


def test_service_retrieval_setting(
    bpr_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from paretorec.serving import ServiceSettings, create_app
    from paretorec.serving._app import RETRIEVAL_ENV

    monkeypatch.setenv(RETRIEVAL_ENV, "ann")
    settings = ServiceSettings(
        feedback_url=str(tmp_path / "f.db"), encoder=WordEncoder(), freeze_gc=False
    )
    assert settings.retrieval == "ann"
    app = create_app(bpr_bundle, settings)
    with TestClient(app) as client:
        served = client.post("/recommend", json={"user_id": "u1", "k": 5, "point": 0})
        assert served.status_code == 200
        assert client.app.state.service.get().ann is not None  # type: ignore[attr-defined]
    exact = Recommender(bpr_bundle, retrieval="exact").recommend("u1", k=5, point=0)
    assert [item["item_id"] for item in served.json()["items"]] == [
        item.item_id for item in exact.items
    ]
