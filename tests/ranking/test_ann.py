"""ANN candidate retrieval: exactness of flat, recall of IVF / HNSW, models' vectors, files."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest
import scipy.sparse as sp

from paretorec import ParetorecError
from paretorec.models import create_model
from paretorec.ranking import ANNIndex, exact_top_k, recall_at_k, retrieval_vectors

from ..conftest import make_tiny


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Items around 50 centres: the structure real item vectors have."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    return (centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)


def test_flat_index_is_exact() -> None:
    items = clustered(2_000, 16)
    queries = clustered(30, 16, seed=1)
    index = ANNIndex("auto").build(items)
    assert index.built_kind_ == "flat"  # below flat_below
    found, scores = index.search(queries, 10)
    np.testing.assert_array_equal(found, exact_top_k(queries, items, 10))
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("ivf", {"nlist": 100, "nprobe": 20}),
        ("ivf_sq8", {"nlist": 100, "nprobe": 20}),
        ("hnsw", {"ef_search": 400}),
    ],
)
def test_approximate_indexes_recall_the_exact_top_k(kind: str, params: dict[str, int]) -> None:
    items = clustered(10_000, 16)
    queries = clustered(100, 16, seed=1)
    index = ANNIndex(kind, flat_below=1, **params).build(items)
    assert index.built_kind_ == kind
    found, _ = index.search(queries, 100)
    assert recall_at_k(found, exact_top_k(queries, items, 100)) >= 0.9


def test_auto_uses_quantised_ivf_with_exact_scores_above_flat_below() -> None:
    items = clustered(3_000, 16)
    queries = clustered(20, 16, seed=4)
    index = ANNIndex("auto", flat_below=2_000).build(items)
    assert index.built_kind_ == "ivf_sq8"
    assert index.nlist_ == 3_000 // 39  # 4 sqrt(n) cells, at most n / 39
    assert index.set_nprobe(index.nlist_) is index  # every cell: only the codes approximate
    found, scores = index.search(queries, 10)
    assert recall_at_k(found, exact_top_k(queries, items, 10)) >= 0.99
    # the re-rank returns exact inner products, not the codes' approximations
    np.testing.assert_allclose(
        scores, np.take_along_axis(queries @ items.T, found, axis=1), rtol=1e-5, atol=1e-5
    )


def test_exact_top_k_matches_a_full_sort_across_blocks() -> None:
    rng = np.random.default_rng(5)
    items = rng.normal(size=(70_000, 4)).astype(np.float32)  # two item blocks
    queries = rng.normal(size=(300, 4)).astype(np.float32)  # two query blocks
    expected = np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(exact_top_k(queries, items, 7), expected)
    assert exact_top_k(queries[:2], items[:5], 7).shape == (2, 5)


def test_seen_items_are_excluded() -> None:
    items = clustered(500, 8)
    queries = clustered(4, 8, seed=2)
    index = ANNIndex("flat").build(items)
    top, _ = index.search(queries, 5)
    exclude = sp.csr_matrix(
        (np.ones(4), (np.arange(4), top[:, 0])), shape=(4, 500)
    )  # each query's best item was seen
    found, _ = index.search(queries, 5, exclude=exclude)
    np.testing.assert_array_equal(found[:, :4], top[:, 1:])


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    items = clustered(5_000, 16)
    queries = clustered(20, 16, seed=3)
    index = ANNIndex("ivf_sq8", flat_below=1, nlist=32).build(items).set_nprobe(4)
    index.save(tmp_path / "ann")
    loaded = ANNIndex.load(tmp_path / "ann")
    assert loaded.built_kind_ == "ivf_sq8" and (loaded.nlist_, loaded.nprobe) == (32, 4)
    assert faiss.extract_index_ivf(loaded.index_).nprobe == 4
    np.testing.assert_array_equal(loaded.search(queries, 10)[0], index.search(queries, 10)[0])
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == [
        "config.json",
        "manifest.json",
        "tensors.safetensors",
    ]
    (tmp_path / "ann" / "tensors.safetensors").write_bytes(b"corrupt")
    with pytest.raises(Exception, match="corrupt"):
        ANNIndex.load(tmp_path / "ann")


# small, fast fits on purpose: not meant to converge
@pytest.mark.filterwarnings("ignore::paretorec.models.ConvergenceWarning")
@pytest.mark.parametrize("name", ["bpr", "sequential"])
def test_model_vectors_retrieve_what_the_model_ranks(name: str) -> None:
    params = {
        "bpr": {"factors": 8, "epochs": 5, "seed": 1},
        "sequential": {"item_mode": "id", "hidden": 16, "n_layers": 1, "epochs": 2, "seed": 1},
    }[name]
    model = create_model(name, **params).fit(make_tiny())
    users = np.arange(10)
    queries, items, metric = retrieval_vectors(model, users)
    index = ANNIndex("flat", metric=metric).build(items)
    found, _ = index.search(queries, 5, exclude=model.seen[users])
    np.testing.assert_array_equal(found, model.recommend(users, 5))


def test_models_past_their_size_limit_point_to_ann() -> None:
    data = make_tiny()
    with pytest.raises(ParetorecError, match=r"more than max_items=10 .*ANNIndex"):
        create_model("ease", max_items=10).fit(data)
    with pytest.raises(ParetorecError, match=r"more than max_items=10 .*ANNIndex"):
        create_model("itemknn", max_items=10).fit(data)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ANNIndex("lsh"), r"kind must be one of .*; got 'lsh'"),
        (lambda: ANNIndex(metric="l2"), r"metric must be one of .*; got 'l2'"),
        (lambda: ANNIndex(nlist=0), r"nlist must be a positive int, got 0"),
        (lambda: ANNIndex(refine_factor=0), r"refine_factor must be a positive int, got 0"),
        (lambda: ANNIndex().set_nprobe(-1), r"nprobe must be a positive int, got -1"),
        (lambda: ANNIndex().build(np.zeros((0, 4))), r"item_vectors must be a non-empty 2-D"),
        (
            lambda: ANNIndex().build(np.full((3, 2), np.nan)),
            r"item_vectors must be finite",
        ),
        (lambda: ANNIndex().search(np.zeros((1, 2)), 3), r"ANNIndex is not built"),
        (
            lambda: ANNIndex().build(np.ones((5, 2))).search(np.ones((1, 3)), 2),
            r"queries must have 2 columns \(the index's\), got 3",
        ),
        (
            lambda: retrieval_vectors(create_model("popularity").fit(make_tiny())),
            r"model must be an embedding-based model .*got PopularityModel",
        ),
    ],
)
def test_bad_ann_input(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParetorecError, match=message):
        make()
