"""The full-catalogue evaluator against a brute-force loop, policies and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from paretorec import ParetorecError
from paretorec.data import Dataset, stratified_split
from paretorec.evaluation import evaluate_ranking
from paretorec.models import create_model

from ..conftest import make_tiny


def brute_force(model, train: Dataset, test: Dataset, k: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    seen = train.to_csr().toarray() > 0
    truth = test.to_csr().toarray() > 0
    ndcg, prec, rec = [], [], []
    for user in range(train.n_users):
        if not truth[user].any() or not seen[user].any():
            continue
        scores = model.score([user])[0].astype(np.float64)
        scores[seen[user]] = -np.inf
        top = sorted(range(train.n_items), key=lambda i: (-scores[i], i))[:k]
        hits = [truth[user, i] for i in top]
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / np.log2(r + 2) for r in range(min(k, truth[user].sum())))
        ndcg.append(dcg / idcg)
        prec.append(sum(hits) / k)
        rec.append(sum(hits) / truth[user].sum())
    return {"ndcg": np.mean(ndcg), "precision": np.mean(prec), "recall": np.mean(rec)}


@pytest.mark.parametrize("name", ["ease", "itemknn", "popularity"])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_matches_brute_force(name: str, k: int) -> None:
    split = stratified_split(make_tiny(per_user=12), ratio=0.6, seed=2)
    model = create_model(name).fit(split.train)
    result = evaluate_ranking(model, split.test, k=k, batch_size=4)
    expected = brute_force(model, split.train, split.test, k)
    for metric in ("ndcg", "precision", "recall"):
        assert result[f"{metric}@{k}"] == pytest.approx(expected[metric], abs=1e-9)


def test_beyond_accuracy_groups_and_several_ks() -> None:
    ds = make_tiny()
    split = stratified_split(ds, ratio=0.7, seed=0)
    genres, _ = ds.item_multi_hot("genres")
    groups = {"parity": np.arange(ds.n_users) % 2}
    result = evaluate_ranking(
        create_model("ease").fit(split.train),
        split.test,
        k=[5, 3],
        item_features={"genres": genres},
        user_groups=groups,
    )
    for key in ("ndcg@3", "ndcg@5", "coverage@5", "novelty@3", "gini@5", "ild_genres@5",
                "long_tail_share@5", "avg_popularity@5", "ndcg@5_gap[parity]"):  # fmt: skip
        assert key in result.metrics and np.isfinite(result[key])
    assert result.ranked.shape == (len(result.users), 5)


def test_empty_target_policies() -> None:
    ds = make_tiny()
    split = stratified_split(ds, ratio=0.7, seed=0)
    model = create_model("popularity").fit(split.train)
    test = split.test.with_interactions(
        split.test.interactions[split.test.interactions["user"] != 0]
    )
    users = np.arange(ds.n_users)
    skip = evaluate_ranking(model, test, users=users, empty_target_action="skip")
    zero = evaluate_ranking(model, test, users=users, empty_target_action="zero")
    assert zero["ndcg@10"] == pytest.approx(skip["ndcg@10"] * (ds.n_users - 1) / ds.n_users)
    with pytest.raises(ParetorecError, match=r"1 evaluated user\(s\) have no test items"):
        evaluate_ranking(model, test, users=users, empty_target_action="error")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, r"k must be a positive int, got 0"),
        ({"k": []}, r"k must be a positive int or a non-empty list"),
        ({"k": 500}, r"k must be at most the number of items \(40\), got 500"),
        (
            {"empty_target_action": "drop"},
            r"empty_target_action must be one of 'skip', 'zero', 'error'",
        ),
        ({"batch_size": -1}, r"batch_size must be a positive int, got -1"),
        (
            {"user_groups": {"g": [1, 2]}},
            r"user_groups\['g'\] must have one label per user \(30\), got 2",
        ),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    split = stratified_split(make_tiny(), ratio=0.7, seed=0)
    model = create_model("popularity").fit(split.train)
    with pytest.raises(ParetorecError, match=message):
        evaluate_ranking(model, split.test, **kwargs)  # type: ignore[arg-type]


def test_mismatched_datasets_are_refused() -> None:
    model = create_model("popularity").fit(make_tiny())
    other = make_tiny(n_items=20)
    with pytest.raises(ParetorecError, match=r"split both from the same dataset"):
        evaluate_ranking(model, other)


def test_items_restricts_lists_and_targets() -> None:
    split = stratified_split(make_tiny(per_user=10), ratio=0.7, seed=0)
    model = create_model("ease", regularization=10.0).fit(split.train)
    pool = np.arange(20, 40)
    result = evaluate_ranking(model, split.test, k=5, items=pool)
    assert np.isin(result.ranked, pool).all()
    # only users with test items in the pool (the odd community) are evaluated
    assert set(result.users % 2) == {1}
    full = evaluate_ranking(model, split.test, k=5)
    odd = np.isin(full.users, result.users)
    np.testing.assert_allclose(result.per_user["ndcg@5"], full.per_user["ndcg@5"][odd])
    assert result["coverage@5"] == pytest.approx(len(np.unique(result.ranked)) / 20)
    with pytest.raises(ParetorecError, match=r"items must hold at least k=5 item codes, got 3"):
        evaluate_ranking(model, split.test, k=5, items=[1, 2, 3])
    with pytest.raises(ParetorecError, match=r"items holds unknown index 99"):
        evaluate_ranking(model, split.test, k=5, items=[99])
    with pytest.raises(ParetorecError, match=r"items must not repeat an item code"):
        evaluate_ranking(model, split.test, k=2, items=[1, 2, 2])


def test_items_order_breaks_ties() -> None:
    split = stratified_split(make_tiny(per_user=10), ratio=0.7, seed=0)
    model = create_model("random", seed=0).fit(split.train)
    model.score = lambda users, **kw: np.zeros((len(users), 40), dtype=np.float32)  # type: ignore[method-assign]
    model._score = lambda users: np.zeros((len(users), 40), dtype=np.float32)  # type: ignore[method-assign]
    pool = np.array([30, 5, 17, 2, 9, 11])
    result = evaluate_ranking(model, split.test, k=3, items=pool, empty_target_action="zero")
    seen = split.train.to_csr().toarray() > 0
    for user, row in zip(result.users, result.ranked, strict=True):
        assert list(row) == [i for i in pool if not seen[user, i]][:3]
