"""One contract every candidate model passes (STYLE: implicit's recommender_base_test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from paretorec import ParetorecError
from paretorec.data import Dataset, stratified_split
from paretorec.models import CandidateModel, create_model, list_models
from tests._float32 import assert_close_f32

from ..conftest import make_tiny

# Small, fast settings per model; every registered model must appear here.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "random": {"seed": 3},
    "popularity": {},
    "itemknn": {"neighbors": 10, "shrink": 1.0},
    "ease": {"regularization": 10.0},
    "bpr": {"factors": 16, "epochs": 40, "learning_rate": 0.05, "batch_size": 16, "seed": 1},
    "sequential": {
        "item_mode": "id",
        "hidden": 16,
        "n_layers": 1,
        "epochs": 25,
        "batch_size": 8,
        "learning_rate": 0.02,
        "dropout": 0.1,
        "seed": 1,
    },
}
PERSONALISED = {"itemknn", "ease", "bpr", "sequential"}


def test_every_registered_model_is_covered() -> None:
    assert set(list_models()) == set(FAST_PARAMS)


@pytest.fixture(params=sorted(FAST_PARAMS))
def model_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fitted(model_name: str) -> tuple[CandidateModel, Dataset]:
    train = stratified_split(make_tiny(per_user=10), ratio=0.7, seed=0).train
    return create_model(model_name, **FAST_PARAMS[model_name]).fit(train), train


def test_scores_shape_and_dtype(fitted: tuple[CandidateModel, Dataset]) -> None:
    model, train = fitted
    scores = model.score(np.arange(train.n_users))
    assert scores.shape == (train.n_users, train.n_items) and scores.dtype == np.float32
    assert np.isfinite(scores).all()


def test_batch_scores_equal_single_user_scores(fitted: tuple[CandidateModel, Dataset]) -> None:
    model, train = fitted
    users = np.arange(train.n_users)
    batched = model.score(users, batch_size=7)
    singles = np.vstack([model.score([u]) for u in users])
    assert_close_f32(batched, singles)


def test_seen_items_are_excluded(fitted: tuple[CandidateModel, Dataset]) -> None:
    model, train = fitted
    top = model.recommend(np.arange(train.n_users), 10)
    seen = train.to_csr().toarray() > 0
    assert not np.take_along_axis(seen, top, axis=1).any()
    assert all(len(set(row)) == 10 for row in top)  # no repeats


def test_known_answer_communities(model_name: str, fitted: tuple[CandidateModel, Dataset]) -> None:
    """Even users like items 0-19, odd users 20-39: personalised models must see that."""
    if model_name not in PERSONALISED:
        pytest.skip("not a personalised model")
    model, train = fitted
    top = model.recommend(np.arange(train.n_users), 5)
    block = np.where(np.arange(train.n_users) % 2 == 0, 0, 1)[:, None]
    own = (top >= 20).astype(int) == block
    assert own.mean() >= 0.9


def test_save_load_round_trip(fitted: tuple[CandidateModel, Dataset], tmp_path: Path) -> None:
    model, train = fitted
    model.save(tmp_path / "m")
    loaded = CandidateModel.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    np.testing.assert_array_equal(loaded.recommend(users, 5), model.recommend(users, 5))


def test_corrupt_artifact_is_refused(
    fitted: tuple[CandidateModel, Dataset], tmp_path: Path
) -> None:
    model, _ = fitted
    path = model.save(tmp_path / "m")
    blob = path / "tensors.safetensors"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ParetorecError, match=r"is corrupt: sha256"):
        CandidateModel.load(path)


def test_refit_with_same_seed_is_identical(model_name: str) -> None:
    train = make_tiny()
    a = create_model(model_name, **FAST_PARAMS[model_name]).fit(train)
    b = create_model(model_name, **FAST_PARAMS[model_name]).fit(train)
    users = np.arange(train.n_users)
    np.testing.assert_array_equal(a.score(users), b.score(users))


def test_repr_names_params(fitted: tuple[CandidateModel, Dataset]) -> None:
    model, _ = fitted
    assert type(model).__name__ in repr(model)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.recommend([0], 0), r"k must be a positive int, got 0"),
        (lambda m: m.recommend([0], 2.5), r"k must be a positive int, got 2.5 \(float\)"),
        (lambda m: m.recommend([0], "3"), r"k must be a positive int, got '3' \(str\)"),
        (
            lambda m: m.recommend([0], 10_000),
            r"k must be at most the number of items \(40\), got 10000",
        ),
        (lambda m: m.score([999]), r"users holds unknown index 999; valid indices are 0..29"),
        (lambda m: m.score([-1]), r"users holds unknown index -1"),
        (lambda m: m.score([0.5]), r"users must hold integer indices, got dtype float64"),
        (lambda m: m.score([0], batch_size=0), r"batch_size must be a positive int, got 0"),
    ],
)
def test_bad_arguments(model_name: str, call, message: str) -> None:  # type: ignore[no-untyped-def]
    model = create_model(model_name, **FAST_PARAMS[model_name]).fit(make_tiny())
    with pytest.raises(ParetorecError, match=message):
        call(model)


def test_unfitted_and_unknown_models() -> None:
    with pytest.raises(ParetorecError, match=r"EASEModel is not fitted; call fit\(train\) first"):
        create_model("ease").score([0])
    with pytest.raises(ParetorecError, match=r"model must be one of .*; got 'svd'"):
        create_model("svd")
    with pytest.raises(ParetorecError, match=r"train must be a paretorec Dataset, got list"):
        create_model("ease").fit([1, 2])  # type: ignore[arg-type]


def test_users_without_history_need_a_model_that_can_serve_them() -> None:
    ds = make_tiny()
    train = ds.with_interactions(ds.interactions[ds.interactions["user"] != 0])
    with pytest.raises(ParetorecError, match=r"user code 0 has no training interactions"):
        create_model("ease", regularization=10.0).fit(train).recommend([0, 1], 3)
    assert create_model("popularity").fit(train).recommend([0], 3).shape == (1, 3)
