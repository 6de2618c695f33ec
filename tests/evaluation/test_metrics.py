"""Metrics against brute-force loops, scikit-learn and a pandas Recommenders-style reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, roc_auc_score

from paretorec import ParetorecError
from paretorec.evaluation._metrics import (
    EMPTY_SLOT,
    GroupGap,
    auc,
    average_popularity,
    catalogue_coverage,
    count_relevant,
    exposure_share,
    gauc,
    gini_exposure,
    group_gap,
    hit_rate_at_k,
    hit_rate_from_hits,
    hits_at_k,
    intra_list_diversity,
    logloss,
    long_tail_mask,
    long_tail_share,
    mae,
    map_at_k,
    map_from_hits,
    mean_over_users,
    mrr_at_k,
    mrr_from_hits,
    ndcg_at_k,
    ndcg_from_hits,
    novelty,
    precision_at_k,
    precision_from_hits,
    recall_at_k,
    recall_from_hits,
    rmse,
)

SEEDS = [0, 1, 2, 3]
KS = [1, 3, 10]
WIDTH = 10
N_ITEMS = 15


# ---------------------------------------------------------------------------- random cases
def make_case(
    seed: int,
    n_users: int = 14,
    n_items: int = N_ITEMS,
    width: int = WIDTH,
    *,
    every_user_relevant: bool = False,
    every_list_nonempty: bool = False,
) -> tuple[np.ndarray, sp.csr_matrix]:
    """Random lists (some padded with -1, some empty) and relevance (some users without any)."""
    rng = np.random.default_rng(seed)
    ranked = np.full((n_users, width), EMPTY_SLOT, dtype=np.int64)
    rows: list[int] = []
    cols: list[int] = []
    for user in range(n_users):
        shortest = 1 if every_list_nonempty else 0
        length = width if rng.random() < 0.5 else int(rng.integers(shortest, width + 1))
        ranked[user, :length] = rng.permutation(n_items)[:length]
        if not every_user_relevant and rng.random() < 0.2:
            continue
        items = rng.choice(n_items, size=int(rng.integers(1, min(7, n_items + 1))), replace=False)
        rows.extend([user] * items.size)
        cols.extend(items.tolist())
    relevant = sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items), dtype=np.float64
    )
    return ranked, relevant


def relevant_sets(relevant: sp.csr_matrix) -> list[set[int]]:
    bounds = relevant.indptr
    return [
        set(relevant.indices[bounds[r] : bounds[r + 1]].tolist()) for r in range(len(bounds) - 1)
    ]


# ---------------------------------------------------------------------------- brute force
def brute_hits(items: list[int], rel: set[int]) -> list[bool]:
    return [item != EMPTY_SLOT and item in rel for item in items]


def brute_precision(items: list[int], rel: set[int], k: int) -> float:
    return sum(brute_hits(items[:k], rel)) / k


def brute_recall(items: list[int], rel: set[int], k: int) -> float:
    return sum(brute_hits(items[:k], rel)) / len(rel)


def brute_ndcg(items: list[int], rel: set[int], k: int) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(brute_hits(items[:k], rel)) if h)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), k)))
    return dcg / idcg


def brute_ap(items: list[int], rel: set[int], k: int, norm: str) -> float:
    total, seen = 0.0, 0
    for i, hit in enumerate(brute_hits(items[:k], rel)):
        if hit:
            seen += 1
            total += seen / (i + 1)
    return total / (len(rel) if norm == "relevant" else min(len(rel), k))


def brute_mrr(items: list[int], rel: set[int], k: int) -> float:
    for i, hit in enumerate(brute_hits(items[:k], rel)):
        if hit:
            return 1 / (i + 1)
    return 0.0


def brute_hit_rate(items: list[int], rel: set[int], k: int) -> float:
    return float(any(brute_hits(items[:k], rel)))


RANKING: dict[str, tuple[Callable[..., np.ndarray], Callable[..., float]]] = {
    "precision": (precision_at_k, brute_precision),
    "recall": (recall_at_k, brute_recall),
    "ndcg": (ndcg_at_k, brute_ndcg),
    "map_relevant": (
        lambda r, rel, k: map_at_k(r, rel, k, normalization="relevant"),
        lambda items, s, k: brute_ap(items, s, k, "relevant"),
    ),
    "map_min_k": (
        lambda r, rel, k: map_at_k(r, rel, k, normalization="min_k"),
        lambda items, s, k: brute_ap(items, s, k, "min_k"),
    ),
    "mrr": (mrr_at_k, brute_mrr),
    "hit_rate": (hit_rate_at_k, brute_hit_rate),
}


@pytest.mark.parametrize("metric", sorted(RANKING))
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("seed", SEEDS)
def test_ranking_metric_matches_brute_force(metric: str, k: int, seed: int) -> None:
    ranked, relevant = make_case(seed)
    fast, slow = RANKING[metric]
    got = fast(ranked, relevant, k)
    sets = relevant_sets(relevant)
    expected = [
        slow(ranked[u].tolist(), sets[u], k) if sets[u] else math.nan for u in range(len(sets))
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert got.dtype == np.float64
    assert np.isnan(got).sum() == sum(not s for s in sets)


@pytest.mark.parametrize("seed", SEEDS)
def test_hits_at_k_matches_brute_force(seed: int) -> None:
    ranked, relevant = make_case(seed)
    sets = relevant_sets(relevant)
    expected = [brute_hits(ranked[u].tolist(), sets[u]) for u in range(len(sets))]
    np.testing.assert_array_equal(hits_at_k(ranked, relevant), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_from_hits_functions_equal_high_level(seed: int) -> None:
    ranked, relevant = make_case(seed)
    hits, counts = hits_at_k(ranked, relevant)[:, :3], count_relevant(relevant)
    pairs = [
        (precision_from_hits(hits, counts), precision_at_k(ranked, relevant, 3)),
        (recall_from_hits(hits, counts), recall_at_k(ranked, relevant, 3)),
        (ndcg_from_hits(hits, counts), ndcg_at_k(ranked, relevant, 3)),
        (map_from_hits(hits, counts, "min_k"), map_at_k(ranked, relevant, 3, "min_k")),
        (mrr_from_hits(hits, counts), mrr_at_k(ranked, relevant, 3)),
        (hit_rate_from_hits(hits, counts), hit_rate_at_k(ranked, relevant, 3)),
    ]
    for low, high in pairs:
        np.testing.assert_array_equal(low, high)


def test_k_defaults_to_list_width() -> None:
    ranked, relevant = make_case(5)
    np.testing.assert_array_equal(ndcg_at_k(ranked, relevant), ndcg_at_k(ranked, relevant, WIDTH))


def test_relevance_is_binary_and_ignores_explicit_zeros_and_duplicates() -> None:
    ranked = np.array([[0, 1, 2, 3]])
    # Item 0 stored twice (counts once), item 1 stored as explicit zero (not relevant),
    # item 2 with weight 5 (relevant, binary).
    relevant = sp.csr_matrix(
        (np.array([1.0, 1.0, 0.0, 5.0]), (np.zeros(4, int), np.array([0, 0, 1, 2]))),
        shape=(1, 4),
    )
    assert count_relevant(relevant).tolist() == [2]
    np.testing.assert_array_equal(hits_at_k(ranked, relevant), [[True, False, True, False]])
    np.testing.assert_allclose(recall_at_k(ranked, relevant), [1.0])
    assert relevant.nnz == 3  # the caller's matrix is left untouched


def test_any_sparse_format_accepted() -> None:
    ranked, relevant = make_case(7)
    expected = ndcg_at_k(ranked, relevant, 3)
    for converted in (relevant.tocoo(), relevant.tocsc(), sp.csr_array(relevant)):
        np.testing.assert_array_equal(ndcg_at_k(ranked, converted, 3), expected)


# ---------------------------------------------------------------------------- Recommenders
def recommenders_reference(ranked: np.ndarray, relevant: sp.csr_matrix, k: int) -> dict:
    """Microsoft Recommenders' python_evaluation formulas, re-written with pandas."""
    coo = relevant.tocoo()
    truth = pd.DataFrame({"userID": coo.row, "itemID": coo.col})
    users, slots = np.nonzero(ranked != EMPTY_SLOT)
    pred = pd.DataFrame(
        {"userID": users, "itemID": ranked[users, slots], "prediction": -slots.astype(float)}
    )
    top = pred.sort_values(["userID", "prediction"], ascending=[True, False])
    top["rank"] = top.groupby("userID").cumcount() + 1
    top = top[top["rank"] <= k]
    common = np.intersect1d(truth["userID"].unique(), pred["userID"].unique())
    n_users = len(common)
    truth = truth[truth["userID"].isin(common)]
    top = top[top["userID"].isin(common)]
    df_hit = top.merge(truth, on=["userID", "itemID"])
    actual = truth.groupby("userID").size().rename("actual")
    hit = df_hit.groupby("userID").size().rename("hit")
    counts = pd.concat([hit, actual], axis=1, join="inner")
    precision = (counts["hit"] / k).sum() / n_users
    recall = (counts["hit"] / counts["actual"]).sum() / n_users
    df_hit["dcg"] = 1 / np.log(df_hit["rank"] + 1)
    dcg = df_hit.groupby("userID")["dcg"].sum()
    idcg = actual.loc[dcg.index].map(
        lambda a: sum(1 / np.log(1 + i) for i in range(1, min(a, k) + 1))
    )
    ndcg = (dcg / idcg).sum() / n_users
    df_hit = df_hit.sort_values(["userID", "rank"])
    df_hit["rr"] = (df_hit.groupby("userID").cumcount() + 1) / df_hit["rank"]
    summed_rr = df_hit.groupby("userID")["rr"].sum()
    hit_actual = actual.loc[summed_rr.index]
    map_all = (summed_rr / hit_actual).sum() / n_users
    map_k = (summed_rr / np.minimum(hit_actual, k)).sum() / n_users
    return {
        "precision": precision,
        "recall": recall,
        "ndcg": ndcg,
        "map": map_all,
        "map_at_k": map_k,
    }


@pytest.mark.parametrize("k", [3, 10])
@pytest.mark.parametrize("seed", [11, 12])
def test_matches_recommenders_formulas(seed: int, k: int) -> None:
    ranked, relevant = make_case(
        seed, n_users=40, every_user_relevant=True, every_list_nonempty=True
    )
    reference = recommenders_reference(ranked, relevant, k)
    ours = {
        "precision": precision_at_k(ranked, relevant, k),
        "recall": recall_at_k(ranked, relevant, k),
        "ndcg": ndcg_at_k(ranked, relevant, k),
        "map": map_at_k(ranked, relevant, k, normalization="relevant"),
        "map_at_k": map_at_k(ranked, relevant, k, normalization="min_k"),
    }
    for name, values in ours.items():
        assert mean_over_users(values, "skip") == pytest.approx(reference[name], abs=1e-12), name


# ---------------------------------------------------------------------------- degenerate cases
def test_users_without_relevant_items_under_each_action() -> None:
    ranked = np.array([[0, 1], [2, 3], [1, 0]])
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]]))
    values = precision_at_k(ranked, relevant)
    np.testing.assert_array_equal(values, [0.5, np.nan, 0.0])
    assert mean_over_users(values, "skip") == pytest.approx(0.25)
    assert mean_over_users(values, "zero") == pytest.approx(0.5 / 3)
    with pytest.raises(ParetorecError, match="1 of 3 users have no relevant items"):
        mean_over_users(values, "error")


def test_mean_over_users_all_nan_skip_is_zero() -> None:
    assert mean_over_users(np.array([np.nan, np.nan]), "skip") == 0.0
    assert mean_over_users(np.array([np.nan, np.nan]), "zero") == 0.0
    assert mean_over_users(np.array([0.2, 0.4]), "error") == pytest.approx(0.3)


def test_empty_lists() -> None:
    ranked = np.array([[-1, -1, -1], [0, -1, -1]])
    relevant = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0]]))
    for metric, _ in RANKING.values():
        values = metric(ranked, relevant, 3)
        assert values[0] == 0.0
    assert precision_at_k(ranked, relevant)[1] == pytest.approx(1 / 3)
    popularity = np.array([3, 1, 0, 2])
    assert np.isnan(novelty(ranked, popularity, 4)[0])
    assert np.isnan(average_popularity(ranked, popularity)[0])
    assert np.isnan(long_tail_share(ranked, long_tail_mask(popularity))[0])
    assert np.isnan(intra_list_diversity(ranked, np.eye(4))).all()
    assert catalogue_coverage(ranked, 4) == 0.25
    assert catalogue_coverage(np.full((2, 3), -1), 4) == 0.0


def test_k_smaller_than_width_uses_first_columns() -> None:
    ranked = np.array([[3, 0, 1]])
    relevant = sp.csr_matrix(np.array([[1, 1, 0, 0]]))
    assert precision_at_k(ranked, relevant, 1)[0] == 0.0
    assert precision_at_k(ranked, relevant, 2)[0] == 0.5
    assert mrr_at_k(ranked, relevant, 1)[0] == 0.0
    assert mrr_at_k(ranked, relevant, 2)[0] == 0.5


# ---------------------------------------------------------------------------- pointwise
def point_case(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 60
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.normal(size=n) + labels * 0.5
    if ties:
        scores = np.round(scores, 0)
    return labels, scores


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_auc_matches_sklearn(seed: int, ties: bool) -> None:
    labels, scores = point_case(seed, ties)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert auc(labels.astype(bool), scores) == pytest.approx(roc_auc_score(labels, scores))


def test_auc_all_tied_is_half() -> None:
    assert auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_gauc_matches_per_user_loop(seed: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    labels, scores = point_case(seed, ties)
    users = rng.choice(np.array(["ann", "bob", "cy", "dee", "eve", "fay", "gus"]), labels.size)
    users[:3] = "solo"  # one user whose rows hold a single class
    labels[:3] = 1
    total, weight = 0.0, 0
    for user in np.unique(users):
        rows = users == user
        if len(set(labels[rows].tolist())) < 2:
            continue
        total += roc_auc_score(labels[rows], scores[rows]) * rows.sum()
        weight += rows.sum()
    assert gauc(users, labels, scores) == pytest.approx(total / weight, abs=1e-12)


def test_gauc_one_user_equals_auc() -> None:
    labels, scores = point_case(0, True)
    assert gauc(np.zeros(labels.size, int), labels, scores) == pytest.approx(auc(labels, scores))


@pytest.mark.parametrize("seed", SEEDS)
def test_logloss_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 50)
    labels[:2] = [0, 1]
    probabilities = rng.uniform(0.01, 0.99, 50)
    assert logloss(labels, probabilities) == pytest.approx(
        log_loss(labels, probabilities), abs=1e-12
    )


def test_logloss_clips() -> None:
    expected = -math.log(1e-7) / 2
    assert logloss([1, 0], [0.0, 0.0]) == pytest.approx(expected + -math.log(1 - 1e-7) / 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_rmse_mae_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(1, 6, 40).astype(float)
    y_pred = rng.uniform(1, 5, 40)
    assert rmse(y_true, y_pred) == pytest.approx(
        math.sqrt(mean_squared_error(y_true, y_pred)), abs=1e-12
    )
    assert mae(y_true, y_pred) == pytest.approx(mean_absolute_error(y_true, y_pred), abs=1e-12)


# ---------------------------------------------------------------------------- diversity
def brute_ild(ranked: np.ndarray, vectors: np.ndarray) -> list[float]:
    out = []
    for row in ranked:
        items = [int(i) for i in row if i != EMPTY_SLOT]
        distances = []
        for a in range(len(items)):
            for b in range(a + 1, len(items)):
                u, v = vectors[items[a]], vectors[items[b]]
                nu, nv = np.linalg.norm(u), np.linalg.norm(v)
                cosine = 0.0 if nu == 0 or nv == 0 else float(u @ v) / (nu * nv)
                distances.append(1 - cosine)
        out.append(sum(distances) / len(distances) if distances else math.nan)
    return out


@pytest.mark.parametrize("kind", ["multi_hot_sparse", "multi_hot_dense", "embedding"])
@pytest.mark.parametrize("seed", SEEDS)
def test_ild_matches_brute_force(seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    ranked, _ = make_case(seed)
    if kind == "embedding":
        vectors = rng.normal(size=(N_ITEMS, 6))
    else:
        vectors = (rng.random((N_ITEMS, 5)) < 0.35).astype(float)
    vectors[0] = 0.0  # the zero-vector policy is exercised in every case
    item_vectors: Any = sp.csr_matrix(vectors) if kind == "multi_hot_sparse" else vectors
    np.testing.assert_allclose(
        intra_list_diversity(ranked, item_vectors), brute_ild(ranked, vectors), atol=1e-12
    )


def test_ild_batches_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import paretorec.evaluation._metrics as metrics

    ranked, _ = make_case(3, n_users=30)
    vectors = np.random.default_rng(3).normal(size=(N_ITEMS, 4))
    whole = intra_list_diversity(ranked, vectors)
    monkeypatch.setattr(metrics, "ILD_BATCH_USERS", 4)
    np.testing.assert_allclose(intra_list_diversity(ranked, vectors), whole, atol=1e-12)


def test_ild_zero_vector_policy_and_short_lists() -> None:
    vectors = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]])
    ranked = np.array([[0, 1, -1], [0, 2, -1], [2, 3, -1], [2, 4, -1], [2, -1, -1]])
    got = intra_list_diversity(ranked, vectors)
    np.testing.assert_allclose(got[:4], [1.0, 1.0, 0.0, 2.0], atol=1e-12)
    assert np.isnan(got[4])


# ---------------------------------------------------------------------------- popularity
def test_coverage_novelty_popularity_long_tail() -> None:
    ranked, _ = make_case(4)
    rng = np.random.default_rng(4)
    n_train_users = 30
    popularity = rng.integers(0, n_train_users + 1, N_ITEMS)
    popularity[:3] = 0
    shown = {int(i) for i in ranked.ravel() if i != EMPTY_SLOT}
    assert catalogue_coverage(ranked, N_ITEMS) == pytest.approx(len(shown) / N_ITEMS)

    mask = long_tail_mask(popularity, head_fraction=0.2)
    order = sorted(range(N_ITEMS), key=lambda i: (-popularity[i], i))
    head = set(order[: math.ceil(0.2 * N_ITEMS)])
    assert mask.tolist() == [i not in head for i in range(N_ITEMS)]

    expected_novelty, expected_pop, expected_tail = [], [], []
    for row in ranked:
        items = [int(i) for i in row if i != EMPTY_SLOT]
        if not items:
            expected_novelty.append(math.nan)
            expected_pop.append(math.nan)
            expected_tail.append(math.nan)
            continue
        info = [-math.log2(max(popularity[i], 1) / n_train_users) for i in items]
        expected_novelty.append(sum(info) / len(items))
        expected_pop.append(sum(popularity[i] for i in items) / len(items))
        expected_tail.append(sum(i not in head for i in items) / len(items))
    np.testing.assert_allclose(novelty(ranked, popularity, n_train_users), expected_novelty)
    np.testing.assert_allclose(average_popularity(ranked, popularity), expected_pop)
    np.testing.assert_allclose(long_tail_share(ranked, mask), expected_tail)


def test_long_tail_mask_ties_and_rounding() -> None:
    popularity = np.array([5, 9, 5, 5, 1, 0, 0, 0, 0, 0])
    # head of ceil(0.3 * 10) = 3: item 1 then the tied 0 and 2 (lower codes first)
    assert np.flatnonzero(~long_tail_mask(popularity, 0.3)).tolist() == [0, 1, 2]
    # 0.7 * 10 is 7.000000000000001 in floating point; the head is still 7 items
    assert (~long_tail_mask(popularity, 0.7)).sum() == 7
    assert long_tail_mask(popularity, 0.0).all()
    assert not long_tail_mask(popularity, 1.0).any()
    assert (~long_tail_mask(np.ones(3), 0.5)).sum() == 2


# ---------------------------------------------------------------------------- exposure
def brute_exposure(ranked: np.ndarray, n_items: int, weighted: bool) -> list[float]:
    exposure = [0.0] * n_items
    for row in ranked:
        for slot, item in enumerate(row):
            if item != EMPTY_SLOT:
                exposure[item] += 1 / math.log2(slot + 2) if weighted else 1.0
    return exposure


def brute_gini(x: list[float]) -> float:
    n = len(x)
    mean = sum(x) / n
    return sum(abs(a - b) for a in x for b in x) / (2 * n * n * mean)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_gini_matches_mean_absolute_difference(seed: int, weighted: bool) -> None:
    ranked, _ = make_case(seed)
    n_items = N_ITEMS + 5  # five items never shown
    expected = brute_gini(brute_exposure(ranked, n_items, weighted))
    got = gini_exposure(ranked, n_items, position_weighted=weighted)
    assert got == pytest.approx(expected, abs=1e-12)


def test_gini_extremes() -> None:
    assert gini_exposure(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)
    assert gini_exposure(np.array([[0], [0]]), 4) == pytest.approx(1 - 1 / 4)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_exposure_share(seed: int, weighted: bool) -> None:
    ranked, _ = make_case(seed)
    groups = np.random.default_rng(seed).integers(0, 3, N_ITEMS)
    got = exposure_share(ranked, groups, n_groups=4, position_weighted=weighted)
    exposure = brute_exposure(ranked, N_ITEMS, weighted)
    expected = [sum(e for e, g in zip(exposure, groups, strict=True) if g == c) for c in range(4)]
    np.testing.assert_allclose(got, np.array(expected) / sum(expected), atol=1e-12)
    assert got.sum() == pytest.approx(1.0)
    assert got[3] == 0.0
    assert exposure_share(ranked, groups).shape == (int(groups.max()) + 1,)


def test_group_gap() -> None:
    values = np.array([0.1, 0.3, np.nan, 0.8, np.nan, 0.5])
    groups = np.array(["a", "a", "b", "b", "c", "d"])
    result = group_gap(values, groups)
    assert isinstance(result, GroupGap)
    assert result.means["a"] == pytest.approx(0.2)
    assert result.means["b"] == pytest.approx(0.8)
    assert math.isnan(result.means["c"])
    assert result.counts == {"a": 2, "b": 1, "c": 0, "d": 1}
    assert result.gap == pytest.approx(0.6)
    assert math.isnan(group_gap(np.array([0.1, 0.2]), np.array([1, 1])).gap)
    assert group_gap(np.array([0.1, 0.4]), np.array([1, 2])).means == pytest.approx(
        {1: 0.1, 2: 0.4}
    )


# ---------------------------------------------------------------------------- bad inputs
RANKED = np.array([[0, 1, 2], [1, 2, -1]])
RELEVANT = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 1]]))

BAD_INPUTS: list[tuple[str, Callable[[], Any], str]] = [
    ("k zero", lambda: precision_at_k(RANKED, RELEVANT, 0), r"k must be a positive int, got 0"),
    ("k negative", lambda: ndcg_at_k(RANKED, RELEVANT, -3), r"k must be a positive int, got -3"),
    ("k float", lambda: recall_at_k(RANKED, RELEVANT, 2.5), r"k must be a positive int, got 2\.5"),
    ("k bool", lambda: mrr_at_k(RANKED, RELEVANT, True), r"k must be a positive int, got True"),
    (
        "k above width",
        lambda: map_at_k(RANKED, RELEVANT, 4),
        r"k must be at most the list width ranked\.shape\[1\]=3, got 4",
    ),
    (
        "normalization",
        lambda: map_at_k(RANKED, RELEVANT, normalization="users"),
        r"normalization must be one of 'relevant', 'min_k'; got 'users'",
    ),
    (
        "empty_target_action",
        lambda: mean_over_users(np.array([0.5]), "drop"),
        r"empty_target_action must be one of 'skip', 'zero', 'error'; got 'drop'",
    ),
    ("values empty", lambda: mean_over_users(np.array([])), r"values must be non-empty"),
    (
        "relevant rows",
        lambda: hit_rate_at_k(RANKED, RELEVANT[:1]),
        r"relevant has 1 rows but ranked has 2",
    ),
    (
        "relevant dense",
        lambda: precision_at_k(RANKED, RELEVANT.toarray()),
        r"relevant must be a scipy\.sparse matrix .* got ndarray",
    ),
    ("ranked 1-D", lambda: hits_at_k(np.array([0, 1]), RELEVANT), r"ranked must be a 2-D int"),
    (
        "ranked float",
        lambda: precision_at_k(RANKED.astype(float), RELEVANT),
        r"ranked must hold integer item codes, got dtype float64",
    ),
    (
        "ranked code too large",
        lambda: precision_at_k(np.array([[0, 9], [1, 2]]), RELEVANT),
        r"ranked holds item code 9, but there are only 4 items",
    ),
    (
        "ranked code below -1",
        lambda: catalogue_coverage(np.array([[0, -2]]), 4),
        r"ranked holds item code -2",
    ),
    (
        "ranked repeats",
        lambda: precision_at_k(np.array([[0, 1], [2, 2]]), RELEVANT),
        r"ranked row 1 lists item 2 more than once",
    ),
    (
        "hits not bool",
        lambda: precision_from_hits(np.ones((2, 2), int), np.array([1, 1])),
        r"hits must be a 2-D bool array",
    ),
    (
        "n_relevant too small",
        lambda: recall_from_hits(np.ones((1, 2), bool), np.array([1])),
        r"n_relevant\[0\]=1 is smaller than that user's 2 hits",
    ),
    (
        "auc lengths",
        lambda: auc([0, 1, 1], [0.1, 0.2]),
        r"labels and scores must have the same length, got 3 and 2",
    ),
    (
        "auc nan scores",
        lambda: auc([0, 1], [0.1, np.nan]),
        r"scores must hold only finite values, got nan at index 1",
    ),
    (
        "auc one class",
        lambda: auc([1, 1, 1], [0.1, 0.2, 0.3]),
        r"labels must contain both classes for auc, got only class 1",
    ),
    ("auc labels", lambda: auc([0, 2], [0.1, 0.2]), r"labels must be binary \(0 or 1\), got 2"),
    ("auc empty", lambda: auc([], []), r"labels must be non-empty"),
    (
        "gauc no user with both",
        lambda: gauc([1, 1, 2], [1, 1, 0], [0.1, 0.2, 0.3]),
        r"none of the 2 users has both",
    ),
    (
        "gauc users length",
        lambda: gauc([1, 2], [0, 1, 1], [0.1, 0.2, 0.3]),
        r"users and labels must have the same length, got 2 and 3",
    ),
    (
        "logloss probabilities",
        lambda: logloss([0, 1], [0.5, 1.5]),
        r"probabilities must lie in \[0, 1\], got 1\.5 at index 1",
    ),
    (
        "logloss eps",
        lambda: logloss([0, 1], [0.5, 0.5], eps=0.7),
        r"eps must be a number in \(0, 0\.5\), got 0\.7",
    ),
    (
        "rmse lengths",
        lambda: rmse([1.0, 2.0, 3.0], [1.0, 2.0]),
        r"y_true and y_pred must have the same length, got 3 and 2",
    ),
    (
        "mae nan",
        lambda: mae([1.0, 2.0], [np.nan, 2.0]),
        r"y_pred must hold only finite values, got nan at index 0",
    ),
    ("rmse inf", lambda: rmse([np.inf], [1.0]), r"y_true must hold only finite values, got inf"),
    (
        "novelty popularity above n_users",
        lambda: novelty(RANKED, np.array([1, 5, 0, 0]), 3),
        r"item_popularity\[1\]=5\.0 is larger than n_users=3",
    ),
    (
        "novelty n_users",
        lambda: novelty(RANKED, np.array([1, 1, 0, 0]), 0),
        r"n_users must be a positive int, got 0",
    ),
    (
        "negative popularity",
        lambda: average_popularity(RANKED, np.array([1, -1, 0, 0])),
        r"item_popularity must be non-negative, got -1\.0 at index 1",
    ),
    (
        "head_fraction",
        lambda: long_tail_mask(np.array([1, 2]), 1.5),
        r"head_fraction must be in \[0, 1\], got 1\.5",
    ),
    (
        "tail_mask dtype",
        lambda: long_tail_share(RANKED, np.array([0, 1, 0, 1])),
        r"tail_mask must be a 1-D bool array",
    ),
    (
        "gini no items",
        lambda: gini_exposure(np.full((2, 2), -1), 4),
        r"ranked holds no items \(every slot is -1\)",
    ),
    ("gini n_items", lambda: gini_exposure(RANKED, 0), r"n_items must be a positive int, got 0"),
    (
        "exposure n_groups",
        lambda: exposure_share(RANKED, np.array([0, 1, 2, 2]), n_groups=2),
        r"item_groups holds group id 2, but n_groups=2",
    ),
    (
        "ild vectors 1-D",
        lambda: intra_list_diversity(RANKED, np.ones(4)),
        r"item_vectors must be a 2-D array \(n_items, d\), got shape \(4,\)",
    ),
    (
        "ild vectors nan",
        lambda: intra_list_diversity(RANKED, np.full((4, 2), np.nan)),
        r"item_vectors must hold only finite values",
    ),
    (
        "ild too few vectors",
        lambda: intra_list_diversity(RANKED, np.ones((2, 2))),
        r"ranked holds item code 2, but there are only 2 items",
    ),
    (
        "group_gap mixed labels",
        lambda: group_gap(np.array([0.1, 0.2]), np.array([1, "a"], dtype=object)),
        r"user_groups must hold labels of one comparable type",
    ),
    (
        "group_gap lengths",
        lambda: group_gap(np.array([0.1, 0.2, 0.3]), np.array(["a", "b"])),
        r"values and user_groups must have the same length, got 3 and 2",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"),
    [pytest.param(call, message, id=name) for name, call, message in BAD_INPUTS],
)
def test_bad_inputs_raise_clear_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ParetorecError, match=message):
        call()


# ---------------------------------------------------------------------------- properties
case_args = st.tuples(
    st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 10), st.integers(0, 8)
)


def drawn_case(args: tuple[int, int, int, int]) -> tuple[np.ndarray, sp.csr_matrix, int]:
    seed, n_users, width, extra_items = args
    ranked, relevant = make_case(seed, n_users=n_users, n_items=width + extra_items, width=width)
    return ranked, relevant, int(np.random.default_rng(seed).integers(1, width + 1))


@settings(max_examples=60, deadline=None)
@given(case_args)
def test_ranking_properties(args: tuple[int, int, int, int]) -> None:
    ranked, relevant, k = drawn_case(args)
    n_relevant = count_relevant(relevant)
    has = n_relevant > 0
    ndcg = ndcg_at_k(ranked, relevant, k)
    precision = precision_at_k(ranked, relevant, k)
    recall = recall_at_k(ranked, relevant, k)
    assert np.isnan(ndcg).tolist() == (~has).tolist()
    assert ((ndcg[has] >= 0) & (ndcg[has] <= 1 + 1e-12)).all()
    np.testing.assert_allclose(precision[has] * k, recall[has] * n_relevant[has], atol=1e-12)
    mrr, hit_rate = mrr_at_k(ranked, relevant, k), hit_rate_at_k(ranked, relevant, k)
    assert (mrr[has] <= hit_rate[has]).all()
    map_relevant = map_at_k(ranked, relevant, k, "relevant")
    map_min_k = map_at_k(ranked, relevant, k, "min_k")
    assert (map_relevant[has] <= map_min_k[has] + 1e-12).all()
    assert (map_min_k[has] <= 1 + 1e-12).all()


@settings(max_examples=60, deadline=None)
@given(case_args)
def test_gini_in_unit_interval(args: tuple[int, int, int, int]) -> None:
    ranked, _, _ = drawn_case(args)
    if (ranked == EMPTY_SLOT).all():
        return
    n_items = int(ranked.max()) + 1 + args[3]
    for weighted in (False, True):
        assert 0 - 1e-12 <= gini_exposure(ranked, n_items, position_weighted=weighted) < 1


@settings(max_examples=60, deadline=None)
@given(case_args, st.integers(1, 5))
def test_ild_in_range(args: tuple[int, int, int, int], dims: int) -> None:
    ranked, _, _ = drawn_case(args)
    rng = np.random.default_rng(args[0])
    n_items = args[2] + args[3]
    vectors = rng.integers(-2, 3, size=(n_items, dims)).astype(float)
    values = intra_list_diversity(ranked, vectors)
    finite = values[~np.isnan(values)]
    assert ((finite >= 0) & (finite <= 2)).all()
    assert (np.isnan(values) == ((ranked != EMPTY_SLOT).sum(axis=1) < 2)).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 30))
def test_auc_symmetry(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = np.round(rng.normal(size=n), 1)
    assert auc(labels, scores) + auc(labels, -scores) == pytest.approx(1.0)
    assert 0 <= auc(labels, scores) <= 1
