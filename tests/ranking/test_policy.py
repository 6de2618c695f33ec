"""Policy: validation and its messages, serialisation, fusion, boosts and apply_policy."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paretorec import ParetorecError
from paretorec.data import Dataset, stratified_split
from paretorec.evaluation import intra_list_diversity, long_tail_share, novelty
from paretorec.models import create_model
from paretorec.ranking import (
    CandidateSet,
    ItemContext,
    Policy,
    apply_policy,
    dpp,
    fair_exposure,
    fused_scores,
    mmr,
)
from tests._float32 import assert_close_f32


def small_world() -> tuple[CandidateSet, ItemContext]:
    """Two users x four candidates over six items; item 5 has no vector."""
    items = np.array([[0, 1, 2, 3], [4, 5, 0, 1]])
    scores = np.array([[4.0, 3.0, 3.0, 1.0], [2.0, 2.0, 2.0, 2.0]], dtype=np.float32)
    like = np.array([[0.2, 0.9, 0.5, 0.0], [0.6, 0.3, 1.0, 0.1]], dtype=np.float32)
    candidates = CandidateSet(
        users=np.array([0, 1]), items=items, scores=scores, predictions={"like": like}
    )
    vectors = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 1], [0, 0]], dtype=np.float64)
    popularity = np.array([8, 6, 4, 2, 1, 0])
    groups = np.array([0, 0, 1, 1, 1, 1])
    context = ItemContext(vectors=vectors, popularity=popularity, n_users=10, groups=groups)
    return candidates, context


def random_world(seed: int = 0, n_users: int = 50, width: int = 20, n_items: int = 80):
    rng = np.random.default_rng(seed)
    items = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :width]
    scores = -np.sort(-rng.integers(0, 6, size=(n_users, width)), axis=1).astype(np.float32)
    like = rng.random((n_users, width)).astype(np.float32)
    candidates = CandidateSet(
        users=np.arange(n_users), items=items, scores=scores, predictions={"like": like}
    )
    popularity = rng.integers(0, n_users, size=n_items)
    context = ItemContext(
        vectors=rng.normal(size=(n_items, 6)),
        popularity=popularity,
        n_users=n_users,
        groups=(popularity < np.quantile(popularity, 0.8)).astype(np.int64),
    )
    return candidates, context


# ---------------------------------------------------------------------------- defaults
def test_defaults_reproduce_the_candidate_order() -> None:
    candidates, context = random_world()  # integer scores: many ties
    for k in (1, 5, 20):
        ranked = apply_policy(Policy(k=k), candidates, context)
        assert ranked.dtype == np.int64
        np.testing.assert_array_equal(ranked, candidates.items[:, :k])


def test_default_policy_prints_empty() -> None:
    assert repr(Policy()) == "Policy()"
    assert str(Policy()) == "Policy()"
    assert Policy().describe() == "k=10 sum(candidate=1)"


# ---------------------------------------------------------------------------- fusion
def test_sum_fusion_matches_hand_computation() -> None:
    candidates, context = small_world()
    policy = Policy(weights={"candidate": 0.5, "like": 2.0})
    # user 0: candidate [4, 3, 3, 1] -> [1, 2/3, 2/3, 0]; like [.2, .9, .5, 0] -> [2/9, 1, 5/9, 0]
    # user 1: candidate constant -> 0;                   like [.6, .3, 1, .1] -> [5/9, 2/9, 1, 0]
    expected = np.array(
        [
            [0.5 + 2 * 2 / 9, 0.5 * 2 / 3 + 2.0, 0.5 * 2 / 3 + 2 * 5 / 9, 0.0],
            [2 * 5 / 9, 2 * 2 / 9, 2.0, 0.0],
        ]
    )
    scores = fused_scores(policy, candidates, context)
    assert scores.dtype == np.float32 and scores.shape == (2, 4)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    np.testing.assert_array_equal(
        apply_policy(policy.replace(k=2), candidates, context), [[1, 2], [0, 4]]
    )


def test_product_fusion_matches_hand_computation() -> None:
    candidates, context = small_world()
    policy = Policy(fusion="product", weights={"candidate": 1.0, "like": 0.5})
    eps = 1e-6

    def mapped(x: float) -> float:  # the candidate score's min-max, mapped to [eps, 1]
        return eps + (1 - eps) * x

    expected = np.array(
        [
            [
                math.log(mapped(1.0)) + 0.5 * math.log(0.2),
                math.log(mapped(2 / 3)) + 0.5 * math.log(0.9),
                math.log(mapped(2 / 3)) + 0.5 * math.log(0.5),
                math.log(mapped(0.0)) + 0.5 * math.log(eps),  # like 0 is clipped to 1e-6
            ],
            [math.log(eps) + 0.5 * math.log(p) for p in (0.6, 0.3, 1.0, 0.1)],
        ]
    )
    np.testing.assert_allclose(fused_scores(policy, candidates, context), expected, rtol=1e-6)


def test_zero_weight_sources_are_not_read() -> None:
    candidates, context = small_world()
    broken = CandidateSet(
        users=candidates.users,
        items=candidates.items,
        scores=candidates.scores,
        predictions={"like": np.full((2, 4), np.nan, dtype=np.float32)},
    )
    policy = Policy(weights={"candidate": 1.0, "like": 0.0})
    np.testing.assert_array_equal(
        fused_scores(policy, broken, context), fused_scores(Policy(), candidates, context)
    )


# ---------------------------------------------------------------------------- boosts
def test_boosts_match_hand_computation() -> None:
    candidates, context = small_world()
    policy = Policy(novelty_boost=0.5, long_tail_boost=0.25, popularity_penalty=2.0)
    information = -np.log2(np.maximum(context.popularity, 1) / 10)  # max at pop 0 and 1
    log_pop = np.log1p(context.popularity)
    adjustment = (
        0.5 * information / information.max()
        + 0.25 * (context.groups == 1)
        - 2.0 * log_pop / log_pop.max()
    )
    base = fused_scores(Policy(), candidates, context)
    assert_close_f32(fused_scores(policy, candidates, context), base + adjustment[candidates.items])


@pytest.mark.parametrize(
    "policy",
    [
        Policy(k=5, long_tail_boost=2.0),
        Policy(k=5, novelty_boost=2.0),
        Policy(k=5, popularity_penalty=2.0),
    ],
)
def test_boosts_move_tail_items_up(policy: Policy) -> None:
    candidates, context = random_world(1)
    plain = apply_policy(Policy(k=5), candidates, context)
    boosted = apply_policy(policy, candidates, context)
    tail = context.groups.astype(bool)
    assert long_tail_share(boosted, tail).mean() > long_tail_share(plain, tail).mean()
    mean_pop_plain = context.popularity[plain].mean()
    assert context.popularity[boosted].mean() < mean_pop_plain


# ---------------------------------------------------------------------------- re-rankers
def reference_rerank(
    policy: Policy, scores: np.ndarray, items: np.ndarray, context: ItemContext
) -> np.ndarray:
    """The policy's re-ranker called directly on fused ``scores`` of ``items``."""
    if policy.reranker == "mmr":
        positions = mmr(scores, items, context.vectors, policy.k, policy.mmr_lambda)
    elif policy.reranker == "dpp":
        positions = dpp(scores, items, context.vectors, policy.k, policy.dpp_theta)
    else:
        groups = context.groups[items]
        positions = fair_exposure(
            scores, groups, policy.k, policy.fair_min_share, policy.fair_group
        )
    return np.take_along_axis(items, positions, axis=1)


@pytest.mark.parametrize(
    "policy",
    [
        Policy(k=6, reranker="mmr", mmr_lambda=0.3, weights={"candidate": 1, "like": 1}),
        Policy(k=6, reranker="dpp", dpp_theta=0.6, novelty_boost=0.2),
        Policy(k=6, reranker="fair", fair_min_share=0.5, fusion="product"),
        Policy(k=6, reranker="fair", fair_min_share=0.3, fair_group=0),
    ],
)
def test_apply_policy_composes_fusion_and_reranker(policy: Policy) -> None:
    candidates, context = random_world(2)
    scores = fused_scores(policy, candidates, context)
    expected = reference_rerank(policy, scores, candidates.items, context)
    np.testing.assert_array_equal(apply_policy(policy, candidates, context), expected)
    np.testing.assert_array_equal(apply_policy(policy.to_dict(), candidates, context), expected)


def test_rerankers_need_vectors() -> None:
    candidates, context = small_world()
    bare = ItemContext(
        vectors=None, popularity=context.popularity, n_users=10, groups=context.groups
    )
    with pytest.raises(ParetorecError, match=r"reranker 'mmr' needs item vectors"):
        apply_policy(Policy(k=2, reranker="mmr"), candidates, bare)
    assert apply_policy(Policy(k=2, reranker="fair"), candidates, bare).shape == (2, 2)


# ---------------------------------------------------------------------------- serialisation
weights_strategy = st.dictionaries(
    st.sampled_from(["candidate", "like", "click", "rating"]),
    st.floats(min_value=0, max_value=10),
    min_size=1,
).filter(lambda weights: any(value > 0 for value in weights.values()))

policies = st.builds(
    Policy,
    k=st.integers(1, 500),
    fusion=st.sampled_from(["sum", "product"]),
    weights=weights_strategy,
    novelty_boost=st.floats(min_value=0, max_value=1e6),
    long_tail_boost=st.floats(min_value=0, max_value=1e6),
    popularity_penalty=st.floats(min_value=0, max_value=1e6),
    reranker=st.sampled_from(["none", "mmr", "dpp", "fair"]),
    mmr_lambda=st.floats(min_value=0, max_value=1),
    dpp_theta=st.floats(min_value=0, max_value=1, exclude_max=True),
    fair_min_share=st.floats(min_value=0, max_value=1),
    fair_group=st.integers(-3, 3),
)


@given(policies)
def test_round_trip_through_json(policy: Policy) -> None:
    data = policy.to_dict()
    text = json.dumps(data)
    again = Policy.from_dict(json.loads(text))
    assert again == policy and hash(again) == hash(policy)
    assert again.to_dict() == data
    assert json.dumps(again.to_dict()) == text


@given(policies)
def test_repr_shows_only_non_default_fields_and_evaluates_back(policy: Policy) -> None:
    text = repr(policy)
    assert eval(text, {"Policy": Policy}) == policy
    for name in policy.non_default_fields():
        assert f"{name}=" in text
    assert "fair_group=" not in text or policy.fair_group != 1


def test_repr_and_describe_examples() -> None:
    policy = Policy(reranker="mmr", mmr_lambda=0.7, weights={"candidate": 0.6, "like": 0.4})
    assert repr(policy) == (
        "Policy(weights={'candidate': 0.6, 'like': 0.4}, reranker='mmr', mmr_lambda=0.7)"
    )
    assert policy.describe() == "k=10 sum(candidate=0.6, like=0.4) mmr(lambda=0.7)"
    busy = Policy(
        k=5, novelty_boost=0.2, long_tail_boost=0.1, popularity_penalty=0.3,
        reranker="fair", fair_min_share=0.4, dpp_theta=0.9,
    )  # fmt: skip
    assert busy.describe() == (
        "k=5 sum(candidate=1) novelty+0.2 tail+0.1 popularity-0.3 fair(min_share=0.4, group=1)"
    )
    assert (
        Policy(reranker="dpp", dpp_theta=0.25).describe() == "k=10 sum(candidate=1) dpp(theta=0.25)"
    )


def test_policies_are_immutable_hashable_values() -> None:
    policy = Policy(k=5)
    with pytest.raises(ValueError, match="frozen"):
        policy.k = 3  # type: ignore[misc]
    assert Policy(k=5) == policy and len({Policy(k=5), policy, Policy()}) == 2
    assert policy.replace(reranker="dpp") == Policy(k=5, reranker="dpp")
    assert Policy(weights={"a": 1, "b": 2}) == Policy(weights={"b": 2.0, "a": 1.0})
    data = policy.to_dict()
    data["weights"]["candidate"] = 5.0
    assert policy.weights == {"candidate": 1.0}


def test_numpy_scalars_are_accepted() -> None:
    policy = Policy(
        k=np.int64(5), mmr_lambda=np.float32(0.25), weights={"candidate": np.float64(2)}
    )
    assert policy == Policy(k=5, mmr_lambda=0.25, weights={"candidate": 2.0})
    assert type(policy.k) is int


# ---------------------------------------------------------------------------- bad inputs
FIELDS = (
    "k, depth, fusion, weights, novelty_boost, long_tail_boost, popularity_penalty, reranker, "
    "mmr_lambda, mmr_similarity, exposure_penalty, dpp_theta, fair_min_share, fair_group, order"
)
BAD_POLICIES: list[tuple[dict[str, Any], str]] = [
    (
        {"weights": {"candidate": -0.5}},
        "policy field 'weights' must be non-negative, got -0.5 for source 'candidate'",
    ),
    (
        {"weights": {"candidate": 0.0, "like": 0.0}},
        "policy field 'weights' must have at least one positive weight, got {'candidate': 0.0, 'like': 0.0}",
    ),
    ({"weights": {}}, "policy field 'weights' must have at least one positive weight, got {}"),
    (
        {"weights": {"like": float("nan")}},
        "policy field 'weights' entry 'like' must be a finite number, got nan",
    ),
    (
        {"weights": {"like": "high"}},
        "policy field 'weights' entry 'like' must be a number, got 'high'",
    ),
    (
        {"weights": {3: 1.0}},
        "policy field 'weights' must map source names (strings) to weights, got key 3",
    ),
    (
        {"weights": [1.0]},
        "policy field 'weights' must be a dict of source name -> weight, got [1.0] (list)",
    ),
    ({"mmr_lambda": 1.7}, "policy field 'mmr_lambda' must be <= 1, got 1.7"),
    ({"mmr_lambda": -0.2}, "policy field 'mmr_lambda' must be >= 0, got -0.2"),
    ({"dpp_theta": 1}, "policy field 'dpp_theta' must be < 1, got 1"),
    ({"dpp_theta": 1.0}, "policy field 'dpp_theta' must be < 1, got 1.0"),
    ({"fair_min_share": -0.1}, "policy field 'fair_min_share' must be >= 0, got -0.1"),
    ({"novelty_boost": -1.0}, "policy field 'novelty_boost' must be >= 0, got -1.0"),
    (
        {"long_tail_boost": float("inf")},
        "policy field 'long_tail_boost' must be a finite number, got inf",
    ),
    (
        {"popularity_penalty": "0.3"},
        "policy field 'popularity_penalty' must be a number, got '0.3'",
    ),
    ({"k": 0}, "policy field 'k' must be > 0, got 0"),
    ({"depth": 0}, "policy field 'depth' must be > 0, got 0"),
    (
        {"reranker": "fair", "order": "score"},
        "policy: order='score' would undo the fair re-ranker's per-prefix guarantee; use "
        "order='reranker' with reranker='fair'",
    ),
    ({"order": "random"}, "policy field 'order' must be one of 'reranker', 'score'; got 'random'"),
    ({"k": 10, "depth": 5}, "policy: depth must be at least k (10) or None, got 5"),
    ({"k": 2.5}, "policy field 'k' must be an int, got 2.5"),
    ({"k": True}, "policy field 'k' must be an int, got True (bool)"),
    ({"fair_group": None}, "policy field 'fair_group' must be an int, got None (NoneType)"),
    (
        {"reranker": "xyz"},
        "policy field 'reranker' must be one of 'none', 'mmr', 'dpp', 'fair'; got 'xyz'",
    ),
    ({"fusion": "max"}, "policy field 'fusion' must be one of 'sum', 'product'; got 'max'"),
    ({"mmr_lamda": 0.5}, f"policy has no field 'mmr_lamda' (got 0.5); valid fields: {FIELDS}"),
    (
        {"k": 0, "mmr_lambda": 2.0},
        "policy field 'k' must be > 0, got 0; policy field 'mmr_lambda' must be <= 1, got 2.0",
    ),
]


@pytest.mark.parametrize(("fields", "message"), BAD_POLICIES)
def test_bad_policy_messages(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ParetorecError) as from_dict:
        Policy.from_dict(fields)
    assert str(from_dict.value) == message
    if all(isinstance(name, str) for name in fields):
        with pytest.raises(ParetorecError) as constructed:
            Policy(**fields)
        assert str(constructed.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([("k", 3)], "a policy must be built from a dict of fields, got list"),
        ({1: 3}, "policy field names must be strings, got 1"),
    ],
)
def test_from_dict_needs_a_dict(data: Any, message: str) -> None:
    with pytest.raises(ParetorecError) as info:
        Policy.from_dict(data)
    assert str(info.value) == message


def test_replace_validates() -> None:
    with pytest.raises(ParetorecError, match=r"^policy field 'mmr_lambda' must be <= 1, got 3$"):
        Policy().replace(mmr_lambda=3)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            Policy(k=2, weights={"candidate": 1.0, "click": 0.5}),
            "policy weights name unknown score source 'click'; available sources: 'candidate', 'like'",
        ),
        (
            Policy(k=5),
            "policy k=5 is larger than the number of candidates C=4; k must be at most C",
        ),
        (
            Policy(k=2, fusion="product", weights={"rating": 1.0}, reranker="mmr"),
            "policy weights name unknown score source 'rating'; available sources: 'candidate', 'like'",
        ),
    ],
)
def test_bad_policy_for_these_candidates(policy: Policy, message: str) -> None:
    candidates, context = small_world()
    with pytest.raises(ParetorecError) as info:
        apply_policy(policy, candidates, context)
    assert str(info.value) == message


def test_product_fusion_needs_probabilities() -> None:
    candidates, context = small_world()
    rating = CandidateSet(
        users=candidates.users,
        items=candidates.items,
        scores=candidates.scores,
        predictions={"rating": np.full((2, 4), 4.5, dtype=np.float32)},
    )
    with pytest.raises(ParetorecError) as info:
        fused_scores(Policy(fusion="product", weights={"rating": 1.0}), rating, context)
    assert str(info.value) == (
        "fusion='product' needs probabilities in [0, 1], but score source 'rating' holds 4.5; "
        "use fusion='sum' for other scores"
    )


def test_candidates_must_fit_the_context() -> None:
    candidates, context = small_world()
    small = ItemContext(
        vectors=context.vectors[:4], popularity=context.popularity[:4], n_users=10,
        groups=context.groups[:4],
    )  # fmt: skip
    with pytest.raises(ParetorecError) as info:
        apply_policy(Policy(k=2), candidates, small)
    assert str(info.value) == (
        "candidates.items holds item code 5, but the context has 4 items (valid codes 0..3)"
    )
    misaligned = CandidateSet(
        users=candidates.users, items=candidates.items, scores=candidates.scores[:, :3]
    )
    with pytest.raises(ParetorecError, match=r"score source 'candidate' has shape \(2, 3\)"):
        apply_policy(Policy(k=2), misaligned, context)


# ---------------------------------------------------------------------------- real data
@pytest.mark.slow
def test_movielens_policies_trade_accuracy_for_diversity(ml100k: Dataset) -> None:
    split = stratified_split(ml100k, ratio=0.8, seed=0)
    model = create_model("ease").fit(split.train)
    users = np.arange(ml100k.n_users)
    candidates = CandidateSet.from_model(model, users, 100)
    genres, _ = ml100k.item_multi_hot("genres")
    context = ItemContext.from_training(model.seen, genres)
    tail = context.groups.astype(bool)

    plain = apply_policy(Policy(), candidates, context)
    np.testing.assert_array_equal(plain, candidates.items[:, :10])
    ild_plain = np.nanmean(intra_list_diversity(plain, genres))
    for policy in (Policy(reranker="mmr", mmr_lambda=0.5), Policy(reranker="dpp", dpp_theta=0.5)):
        ranked = apply_policy(policy, candidates, context)
        assert np.nanmean(intra_list_diversity(ranked, genres)) > ild_plain + 0.05, policy
    fair = apply_policy(Policy(reranker="fair", fair_min_share=0.5), candidates, context)
    # Half of each list is long tail, or every long-tail candidate the user has.
    available = tail[candidates.items].sum(axis=1)
    assert (long_tail_share(fair, tail) >= np.minimum(0.5, available / 10) - 1e-12).all()
    assert long_tail_share(fair, tail).mean() > long_tail_share(plain, tail).mean()
    boosted = apply_policy(Policy(novelty_boost=0.5), candidates, context)
    popularity, n_users = context.popularity, context.n_users
    assert np.nanmean(novelty(boosted, popularity, n_users)) > np.nanmean(
        novelty(plain, popularity, n_users)
    )


# ---------------------------------------------------------------------------- depth
@pytest.mark.parametrize(
    "policy",
    [
        Policy(k=5, reranker="mmr", mmr_lambda=0.3, depth=8),
        Policy(k=5, reranker="mmr", mmr_lambda=0.5, depth=5),
        Policy(k=5, reranker="dpp", dpp_theta=0.4, depth=12, novelty_boost=0.5),
        Policy(k=5, reranker="fair", fair_min_share=0.6, depth=7),
        Policy(k=5, reranker="mmr", weights={"candidate": 0.5, "like": 1.0}, depth=9),
    ],
)
def test_depth_reranks_the_best_candidates_by_fused_score(policy: Policy) -> None:
    """Reference: cut each list to its ``depth`` best by fused score, re-rank the rest."""
    candidates, context = random_world(seed=3)
    fused = fused_scores(policy, candidates, context)
    assert policy.depth is not None
    kept = np.argsort(-fused, axis=1, kind="stable")[:, : policy.depth]
    scores = np.take_along_axis(fused, kept, axis=1)
    items = np.take_along_axis(candidates.items, kept, axis=1)
    expected = reference_rerank(policy, scores, items, context)
    np.testing.assert_array_equal(apply_policy(policy, candidates, context), expected)


def test_depth_limits_the_exposure_penalty_to_the_best_candidates() -> None:
    candidates, context = random_world(seed=5)
    policy = Policy(k=5, exposure_penalty=2.0, depth=6)
    fused = fused_scores(policy, candidates, context)
    kept = np.argsort(-fused, axis=1, kind="stable")[:, :6]
    allowed = np.take_along_axis(candidates.items, kept, axis=1)
    ranked = apply_policy(policy, candidates, context)
    assert all(set(r) <= set(a) for r, a in zip(ranked, allowed, strict=True))
    unlimited = apply_policy(policy.replace(depth=None), candidates, context)
    assert not np.array_equal(ranked, unlimited)


def test_depth_at_least_the_width_changes_nothing() -> None:
    candidates, context = random_world(seed=4)
    policy = Policy(k=5, reranker="mmr", mmr_lambda=0.2)
    for depth in (candidates.n_candidates, candidates.n_candidates + 7):
        np.testing.assert_array_equal(
            apply_policy(policy.replace(depth=depth), candidates, context),
            apply_policy(policy, candidates, context),
        )
    assert "depth=8" in policy.replace(depth=8).describe()


@pytest.mark.parametrize(
    "policy",
    [
        Policy(k=6, reranker="mmr", mmr_lambda=0.2, mmr_similarity="mean"),
        Policy(k=6, reranker="dpp", dpp_theta=0.3, novelty_boost=0.4),
        Policy(k=6, exposure_penalty=1.5, depth=9),
        Policy(k=6, reranker="mmr", mmr_lambda=0.4, weights={"candidate": 1.0, "like": 2.0}),
    ],
)
def test_order_by_score_presents_the_same_set_best_first(policy: Policy) -> None:
    candidates, context = random_world(seed=6)
    chosen = apply_policy(policy, candidates, context)
    by_score = apply_policy(policy.replace(order="score"), candidates, context)
    fused = fused_scores(policy, candidates, context)
    for user in range(len(candidates.users)):
        assert set(by_score[user]) == set(chosen[user])
        where = {item: j for j, item in enumerate(candidates.items[user])}
        values = fused[user, [where[item] for item in by_score[user]]]
        assert np.all(np.diff(values) <= 0)
    assert "by-score" in policy.replace(order="score").describe()
