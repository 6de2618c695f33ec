"""Fold-in: scoring users from their histories alone, without a refit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from paretorec import ParetorecError
from paretorec.data import Dataset, stratified_split
from paretorec.models import CandidateModel, create_model
from paretorec.models._sequential import user_sequences

from ..conftest import make_tiny
from .test_contract import FAST_PARAMS


@pytest.fixture(scope="module")
def split() -> Any:
    return stratified_split(make_tiny(n_users=60, per_user=12), ratio=0.7, seed=0)


@pytest.mark.parametrize("name", ["ease", "itemknn", "popularity", "sequential"])
def test_fold_in_of_a_training_history_equals_the_users_scores(name: str, split: Any) -> None:
    model = create_model(name, **FAST_PARAMS[name]).fit(split.train)
    histories = user_sequences(split.train)
    users = np.arange(split.train.n_users)
    folded = model.score_histories(histories, exclude_history=False)
    assert folded.dtype == np.float32 and folded.shape == (len(users), model.n_items)
    np.testing.assert_allclose(folded, model.score(users), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(FAST_PARAMS))
def test_history_items_are_excluded_and_batches_do_not_matter(name: str, split: Any) -> None:
    model = create_model(name, **FAST_PARAMS[name]).fit(split.train)
    histories = user_sequences(split.train)[:9]
    scores = model.score_histories(histories, batch_size=4)
    for row, history in enumerate(histories):
        assert np.isneginf(scores[row, history]).all()
        others = np.setdiff1d(np.arange(model.n_items), history)
        assert np.isfinite(scores[row, others]).all()
    singles = np.vstack([model.score_histories([h]) for h in histories])
    np.testing.assert_allclose(scores, singles, rtol=1e-5, atol=1e-6)


def test_a_new_interaction_changes_the_list_at_once(split: Any) -> None:
    model = create_model("ease", **FAST_PARAMS["ease"]).fit(split.train)
    before = model.score_histories([np.array([0, 1])])[0]
    after = model.score_histories([np.array([0, 1, 25])])[0]
    assert np.isneginf(after[25]) and not np.isneginf(before[25])
    # one item from the other community lifts that community's items
    assert after[20:40][np.isfinite(after[20:40])].mean() > before[20:40].mean()


def _ndcg_at_5(scores: np.ndarray, test: sp.csr_matrix) -> float:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    relevant = test.toarray() > 0
    hits = np.take_along_axis(relevant, top, axis=1)
    dcg = (hits / np.log2(np.arange(2, 7))).sum(axis=1)
    ideal = np.array([(1 / np.log2(np.arange(2, 2 + min(n, 5)))).sum() for n in relevant.sum(1)])
    keep = ideal > 0
    return float((dcg[keep] / ideal[keep]).mean())


def test_bpr_fold_in_ranks_test_items_better_than_popularity(split: Any) -> None:
    bpr = create_model("bpr", **FAST_PARAMS["bpr"]).fit(split.train)
    popularity = create_model("popularity").fit(split.train)
    histories = user_sequences(split.train)
    test = split.test.to_csr()
    folded = _ndcg_at_5(bpr.score_histories(histories), test)
    baseline = _ndcg_at_5(popularity.score_histories(histories), test)
    assert folded > baseline + 0.2, (folded, baseline)
    # and about as well as the vectors learned in training
    trained = bpr.score(np.arange(split.train.n_users))
    trained[split.train.to_csr().toarray() > 0] = -np.inf
    assert folded >= _ndcg_at_5(trained, test) - 0.05


def test_bpr_fold_in_is_deterministic(split: Any) -> None:
    bpr = create_model("bpr", **FAST_PARAMS["bpr"]).fit(split.train)
    histories = user_sequences(split.train)[:5]
    np.testing.assert_array_equal(bpr.fold_in(histories), bpr.fold_in(histories))


def test_empty_history_and_empty_batch(split: Any) -> None:
    model = create_model("ease", **FAST_PARAMS["ease"]).fit(split.train)
    assert model.score_histories([]).shape == (0, model.n_items)
    np.testing.assert_array_equal(model.score_histories([np.array([], dtype=np.int64)]), 0.0)


class _NoFoldIn(CandidateModel):
    def _fit(self, train: Dataset, matrix: sp.csr_matrix) -> None:
        pass

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), self.n_items), dtype=np.float32)


@pytest.mark.parametrize(
    ("histories", "kwargs", "message"),
    [
        ("12", {}, r"histories must be a sequence of item-code arrays \(one per user\), got str"),
        (5, {}, r"histories must be a sequence of item-code arrays \(one per user\), got int"),
        ([[0, 99]], {}, r"histories\[0\] holds unknown index 99; valid indices are 0..39"),
        ([[0], [-1]], {}, r"histories\[1\] holds unknown index -1"),
        ([[0.5]], {}, r"histories\[0\] must hold integer indices, got dtype float64"),
        ([[[0, 1]]], {}, r"histories\[0\] must be a 1-D array of indices, got shape \(1, 2\)"),
        ([[0]], {"batch_size": 0}, r"batch_size must be a positive int, got 0"),
        ([[0]], {"exclude_history": "yes"}, r"exclude_history must be a bool, got 'yes'"),
    ],
)
def test_bad_histories(histories: Any, kwargs: dict[str, Any], message: str) -> None:
    model = create_model("ease", regularization=10.0).fit(make_tiny())
    with pytest.raises(ParetorecError, match=message):
        model.score_histories(histories, **kwargs)


def test_a_model_that_cannot_fold_in_says_so() -> None:
    model = _NoFoldIn().fit(make_tiny())
    with pytest.raises(
        ParetorecError, match=r"model 'base' \(_NoFoldIn\) cannot fold in histories"
    ):
        model.score_histories([[0]])
    with pytest.raises(ParetorecError, match=r"EASEModel is not fitted"):
        create_model("ease").score_histories([[0]])


def test_bpr_partial_fit_absorbs_new_users() -> None:
    full = make_tiny(n_users=40, per_user=10)
    frame = full.interactions
    first = full.with_interactions(frame[frame["user"] < 30])
    model = create_model("bpr", **FAST_PARAMS["bpr"]).fit(first)
    before = model.user_factors[30:40].copy()  # type: ignore[index]
    model.partial_fit(full, epochs=20)
    assert model.seen.nnz == full.n_interactions
    top = model.recommend(np.arange(30, 40), 5)
    block = np.where(np.arange(30, 40) % 2 == 0, 0, 1)[:, None]
    assert ((top >= 20).astype(int) == block).mean() >= 0.8
    assert not np.allclose(before, model.user_factors[30:40])  # type: ignore[index]
    with pytest.raises(ParetorecError, match=r"data must share the model's id maps"):
        model.partial_fit(make_tiny(n_users=12))


def test_bpr_fold_in_of_mixed_lengths_equals_one_user_at_a_time(split: Any) -> None:
    # unpadded chunks: a long history beside short and empty ones changes nothing
    bpr = create_model("bpr", **FAST_PARAMS["bpr"]).fit(split.train)
    histories = sorted(user_sequences(split.train)[:12], key=len)
    histories.insert(3, np.array([], dtype=np.int64))
    together = bpr.fold_in(histories)
    alone = np.stack([bpr.fold_in([h])[0] for h in histories])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_array_equal(together[3], 0.0)
