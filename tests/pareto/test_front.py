"""Pareto-front utilities against brute-force references, plus properties and error messages."""

from __future__ import annotations

import doctest
import itertools
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paretorec import ParetorecError
from paretorec.pareto import (
    Normalization,
    ParetoFront,
    _front,
    epsilon_constraint_pick,
    hypervolume,
    knee_point,
    non_dominated_mask,
    non_dominated_sort,
    normalize,
    preference_pick,
)

MAX, MIN = "maximize", "minimize"
FAST = settings(max_examples=60, deadline=None)


# ---------------------------------------------------------------------------- references
def oriented(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    return np.asarray(values, dtype=float) * np.array(
        [1.0 if d == MAX else -1.0 for d in directions]
    )


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """a dominates b, both oriented so that larger is better."""
    return bool(
        all(x >= y for x, y in zip(a, b, strict=True))
        and any(x > y for x, y in zip(a, b, strict=True))
    )


def brute_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    points = oriented(values, directions)
    n = len(points)
    return np.array([not any(dominates(points[a], points[b]) for a in range(n)) for b in range(n)])


def brute_ranks(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Peel fronts one at a time with the double loop."""
    points = oriented(values, directions)
    ranks = np.full(len(points), -1)
    remaining = list(range(len(points)))
    rank = 0
    while remaining:
        front = [
            b for b in remaining if not any(dominates(points[a], points[b]) for a in remaining)
        ]
        ranks[front] = rank
        remaining = [i for i in remaining if i not in front]
        rank += 1
    return ranks


def brute_normalised(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    points = oriented(values, directions)
    best, worst = points.max(axis=0), points.min(axis=0)
    span = best - worst
    return np.where(span > 0, (points - worst) / np.where(span > 0, span, 1.0), 1.0)


def inclusion_exclusion(points: np.ndarray) -> float:
    """Volume of the union of boxes [0, p] (coordinates clipped at 0), over all subsets."""
    points = np.clip(points, 0.0, None)
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(range(len(points)), size):
            total += (-1) ** (size + 1) * float(np.prod(points[list(subset)].min(axis=0)))
    return total


def monte_carlo(points: np.ndarray, samples: int = 200_000, seed: int = 0) -> float:
    """Fraction of the unit cube dominated by points in [0, 1]^m (reference at the origin)."""
    rng = np.random.default_rng(seed)
    covered = 0
    for chunk in np.array_split(rng.random((samples, points.shape[1])), 10):
        inside = np.all(chunk[:, None, :] <= points[None, :, :], axis=2)
        covered += int(np.any(inside, axis=1).sum())
    return covered / samples


def identity(m: int, directions: Sequence[str] | None = None) -> Normalization:
    """Bounds that leave maximize objectives in [0, 1] unchanged."""
    return Normalization((1.0,) * m, (0.0,) * m, tuple(directions or [MAX] * m))


# ---------------------------------------------------------------------------- strategies
@st.composite
def problems(
    draw: st.DrawFn, max_points: int = 12, max_objectives: int = 4, grid: int = 4
) -> tuple[np.ndarray, list[str]]:
    """Small integer-grid problems: many ties and duplicate rows, mixed directions."""
    n = draw(st.integers(1, max_points))
    m = draw(st.integers(1, max_objectives))
    cells = draw(st.lists(st.integers(0, grid), min_size=n * m, max_size=n * m))
    directions = draw(st.lists(st.sampled_from([MAX, MIN]), min_size=m, max_size=m))
    return np.array(cells, dtype=float).reshape(n, m), directions


@st.composite
def unit_points(draw: st.DrawFn, max_points: int = 8, max_objectives: int = 5) -> np.ndarray:
    """Points in [0, 1]^m mixing a coarse grid (ties) and continuous coordinates."""
    n = draw(st.integers(1, max_points))
    m = draw(st.integers(1, max_objectives))
    coordinate = st.one_of(
        st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0.0, 1.0, allow_nan=False)
    )
    cells = draw(st.lists(coordinate, min_size=n * m, max_size=n * m))
    return np.array(cells).reshape(n, m)


# ---------------------------------------------------------------------------- dominance
@FAST
@given(problems())
def test_non_dominated_mask_matches_brute_force(problem: tuple[np.ndarray, list[str]]) -> None:
    values, directions = problem
    np.testing.assert_array_equal(
        non_dominated_mask(values, directions), brute_mask(values, directions)
    )


@pytest.mark.parametrize("seed", range(4))
def test_mask_and_sort_match_brute_force_across_blocks(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny block sizes force the blockwise code through many block boundaries."""
    monkeypatch.setattr(_front, "_BLOCK_CELLS", 64)
    monkeypatch.setattr(_front, "_SORT_BLOCK_ROWS", 5)
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, size=(70, 3)).astype(float)
    values[50:60] = values[:10]  # duplicates
    directions = [MAX, MIN, MAX] if seed % 2 else [MIN, MIN, MIN]
    np.testing.assert_array_equal(
        non_dominated_mask(values, directions), brute_mask(values, directions)
    )
    np.testing.assert_array_equal(
        non_dominated_sort(values, directions), brute_ranks(values, directions)
    )


def test_duplicates_are_all_kept_and_share_a_rank() -> None:
    values = [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert non_dominated_mask(values, [MAX, MAX]).tolist() == [True, True, False, False]
    assert non_dominated_sort(values, [MAX, MAX]).tolist() == [0, 0, 1, 1]
    assert non_dominated_mask(values, [MIN, MIN]).tolist() == [False, False, True, True]


def test_single_objective_keeps_every_best_point() -> None:
    assert non_dominated_mask([[3.0], [1.0], [3.0]], [MAX]).tolist() == [True, False, True]
    assert non_dominated_sort([[3.0], [1.0], [3.0], [2.0]], [MIN]).tolist() == [2, 0, 2, 1]


@FAST
@given(problems())
def test_non_dominated_sort_matches_peeling(problem: tuple[np.ndarray, list[str]]) -> None:
    values, directions = problem
    ranks = non_dominated_sort(values, directions)
    np.testing.assert_array_equal(ranks, brute_ranks(values, directions))
    np.testing.assert_array_equal(ranks == 0, non_dominated_mask(values, directions))


@FAST
@given(problems(max_points=15), st.randoms(use_true_random=False))
def test_non_dominated_sort_is_idempotent_and_permutation_invariant(
    problem: tuple[np.ndarray, list[str]], random: Any
) -> None:
    values, directions = problem
    ranks = non_dominated_sort(values, directions)
    assert (non_dominated_sort(values[ranks == 0], directions) == 0).all()
    permutation = list(range(len(values)))
    random.shuffle(permutation)
    np.testing.assert_array_equal(
        non_dominated_sort(values[permutation], directions), ranks[permutation]
    )


def test_non_dominated_sort_on_a_chain() -> None:
    values = np.arange(10.0)[:, None] * np.ones((1, 3))
    assert non_dominated_sort(values, [MIN] * 3).tolist() == list(range(10))


# ---------------------------------------------------------------------------- normalisation
def test_normalize_from_data_maps_best_to_one_and_worst_to_zero() -> None:
    values = np.array([[0.2, 10.0, 5.0], [0.4, 30.0, 5.0], [0.3, 20.0, 5.0]])
    normalised, bounds = normalize(values, [MAX, MIN, MIN])
    np.testing.assert_allclose(normalised, [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.5, 0.5, 1.0]])
    assert bounds == Normalization((0.4, 10.0, 5.0), (0.2, 30.0, 5.0), (MAX, MIN, MIN))


@FAST
@given(problems())
def test_normalize_matches_reference_and_stays_in_unit_interval(
    problem: tuple[np.ndarray, list[str]],
) -> None:
    values, directions = problem
    normalised, bounds = normalize(values, directions)
    np.testing.assert_allclose(normalised, brute_normalised(values, directions))
    assert ((normalised >= 0) & (normalised <= 1)).all()
    np.testing.assert_array_equal(bounds.apply(values), normalised)


def test_normalize_with_given_bounds_extrapolates_and_shares_bounds() -> None:
    normalised, bounds = normalize([[5.0, 2.0]], [MAX, MIN], ideal=[10.0, 0.0], nadir=[0.0, 4.0])
    np.testing.assert_allclose(normalised, [[0.5, 0.5]])
    np.testing.assert_allclose(bounds.apply([[12.0, 5.0]]), [[1.2, -0.25]])
    partial, partial_bounds = normalize([[1.0, 3.0], [2.0, 1.0]], [MAX, MAX], ideal=[4.0, 3.0])
    assert partial_bounds.nadir == (1.0, 1.0)
    np.testing.assert_allclose(partial, [[0.0, 1.0], [1 / 3, 0.0]])


def test_constant_objective_maps_to_one_and_worse_values_to_zero() -> None:
    normalised, bounds = normalize([[1.0, 7.0], [2.0, 7.0]], [MAX, MIN])
    np.testing.assert_array_equal(normalised[:, 1], [1.0, 1.0])
    np.testing.assert_array_equal(bounds.apply([[1.0, 8.0], [1.0, 6.0]])[:, 1], [0.0, 1.0])


def test_normalization_round_trips_through_json() -> None:
    bounds = Normalization.from_values([[1.0, 2.0], [3.0, 0.5]], [MAX, MIN])
    assert Normalization.from_dict(json.loads(json.dumps(bounds.to_dict()))) == bounds


# ---------------------------------------------------------------------------- hypervolume
@settings(max_examples=80, deadline=None)
@given(unit_points(), st.floats(-0.3, 0.3))
def test_hypervolume_matches_inclusion_exclusion(points: np.ndarray, offset: float) -> None:
    m = points.shape[1]
    reference = np.full(m, offset)
    expected = inclusion_exclusion(points - reference)
    got = hypervolume(points, [MAX] * m, reference=reference.tolist(), normalization=identity(m))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


@FAST
@given(problems(max_points=8, max_objectives=4))
def test_hypervolume_with_default_normalisation_matches_inclusion_exclusion(
    problem: tuple[np.ndarray, list[str]],
) -> None:
    values, directions = problem
    expected = inclusion_exclusion(brute_normalised(values, directions))
    assert hypervolume(values, directions) == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("n_points", "m", "seed"), [(40, 3, 0), (25, 4, 1), (60, 4, 2), (120, 3, 3)]
)
def test_hypervolume_matches_monte_carlo(n_points: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    points = np.abs(rng.normal(size=(n_points, m)))
    points = 0.95 * points / np.linalg.norm(points, axis=1, keepdims=True)  # mostly non-dominated
    exact = hypervolume(points, [MAX] * m, normalization=identity(m))
    # Standard error <= 0.5 / sqrt(200k) ~ 0.0011; 0.005 is about 4.5 standard errors.
    assert exact == pytest.approx(monte_carlo(points, seed=seed), abs=0.005)


@pytest.mark.parametrize(
    "point", [[0.5], [0.5, 0.4], [0.2, 0.5, 0.9], [0.3, 0.6, 0.7, 0.8], [0.9] * 6]
)
def test_hypervolume_of_one_point_is_the_product_of_its_coordinates(point: list[float]) -> None:
    m = len(point)
    expected = float(np.prod(point))
    assert hypervolume([point], [MAX] * m, normalization=identity(m)) == pytest.approx(expected)
    # Minimising 1 - x is the same objective: the bounds swap ends with the direction.
    flipped = Normalization((0.0,) * m, (1.0,) * m, (MIN,) * m)
    assert hypervolume([[1 - x for x in point]], [MIN] * m, normalization=flipped) == pytest.approx(
        expected
    )


def test_hypervolume_of_a_two_dimensional_staircase() -> None:
    front = [[0.2, 1.0], [0.5, 0.6], [1.0, 0.1], [0.4, 0.4]]  # the last point is dominated
    expected = 0.2 * 1.0 + (0.5 - 0.2) * 0.6 + (1.0 - 0.5) * 0.1
    assert hypervolume(front, [MAX, MAX], normalization=identity(2)) == pytest.approx(expected)
    # Default normalisation: the front spans [0.2, 1] x [0.1, 1]; its ends add nothing.
    assert hypervolume(front, [MAX, MAX]) == pytest.approx((0.3 / 0.8) * (0.5 / 0.9))


def test_hypervolume_conventions_for_the_reference_point() -> None:
    assert hypervolume([[1.0, 2.0]], [MAX, MAX]) == 1.0  # one point: its own ideal
    assert hypervolume([[0.0, 1.0], [1.0, 0.0]], [MAX, MAX]) == 0.0  # both touch the nadir
    assert hypervolume(
        [[0.0, 1.0], [1.0, 0.0]], [MAX, MAX], reference=[-1.0, -1.0]
    ) == pytest.approx(3.0)
    assert (
        hypervolume([[0.5, 0.5]], [MAX, MAX], reference=[0.5, 0.0], normalization=identity(2))
        == 0.0
    )


@FAST
@given(unit_points(max_points=10, max_objectives=4), st.data())
def test_hypervolume_grows_with_points(points: np.ndarray, data: st.DataObject) -> None:
    m = points.shape[1]
    bounds = identity(m)
    before = hypervolume(points, [MAX] * m, normalization=bounds)
    extra = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=m, max_size=m)))
    after = hypervolume(np.vstack([points, extra]), [MAX] * m, normalization=bounds)
    assert after >= before - 1e-12
    # A point dominating a non-dominated point p (inside the reference box) adds volume: at
    # least the box (p, p + 0.05], which no other point covers without dominating p.
    inner = points[(points > 0).all(axis=1) & (points < 0.9).all(axis=1)]
    if len(inner):
        candidates = inner[non_dominated_mask(inner, [MAX] * m)]
        target = candidates[data.draw(st.integers(0, len(candidates) - 1))]
        with_inner = hypervolume(inner, [MAX] * m, normalization=bounds)
        grown = hypervolume(np.vstack([inner, target + 0.05]), [MAX] * m, normalization=bounds)
        assert grown >= with_inner + 0.05**m * (1 - 1e-9)


@FAST
@given(unit_points(max_points=8, max_objectives=4), st.floats(0.01, 0.5))
def test_offset_reference_gives_every_front_point_positive_volume(
    points: np.ndarray, offset: float
) -> None:
    points = np.round(points * 20) / 20  # a grid: exclusive volumes far above rounding
    m = points.shape[1]
    directions = [MAX] * m
    bounds = Normalization.from_values(points, directions)
    front = np.unique(points[non_dominated_mask(points, directions)], axis=0)

    def volume(subset: np.ndarray, **reference: Any) -> float:
        return hypervolume(subset, directions, normalization=bounds, **reference)

    total = volume(front, reference_offset=offset)
    assert total == pytest.approx(volume(front, reference=[-offset] * m), rel=1e-12)
    assert total >= volume(front) - 1e-12
    for i in range(len(front)):
        others = np.delete(front, i, axis=0)
        alone = volume(others, reference_offset=offset) if len(others) else 0.0
        # an extreme point (at the nadir in some objective) counts with the offset reference
        assert total > alone
        at_nadir = (bounds.apply(front[i : i + 1])[0] <= 0).any()
        if at_nadir and len(others):
            assert volume(front) == pytest.approx(volume(others), abs=1e-12)


def test_offset_reference_credits_the_extremes_of_a_front() -> None:
    extremes = np.eye(3)  # each point best in one objective and at the nadir in the others
    assert hypervolume(extremes, [MAX] * 3) == 0.0
    front = ParetoFront(extremes, [MAX] * 3)
    # three boxes 1.1 x 0.1 x 0.1 overlapping pairwise in 0.1 x 0.1 x 0.1 cubes
    expected = 3 * 1.1 * 0.01 - 3 * 0.001 + 0.001
    assert front.hypervolume(reference_offset=0.1) == pytest.approx(expected)


def test_hypervolume_grows_when_a_point_dominates_in_one_objective() -> None:
    front = [[0.2, 0.8, 0.5], [0.8, 0.2, 0.5], [0.5, 0.5, 0.5]]
    better = [0.5, 0.5, 0.6]  # dominates the last point, better in one objective only
    before = hypervolume(front, [MAX] * 3, normalization=identity(3))
    after = hypervolume([*front, better], [MAX] * 3, normalization=identity(3))
    assert after == pytest.approx(before + 0.1 * 0.5 * 0.5)  # the slab z in (0.5, 0.6]


@FAST
@given(problems(max_points=12), st.randoms(use_true_random=False))
def test_hypervolume_invariances(problem: tuple[np.ndarray, list[str]], random: Any) -> None:
    values, directions = problem
    hv = hypervolume(values, directions)
    mask = non_dominated_mask(values, directions)
    bounds = Normalization.from_values(values, directions)
    assert hypervolume(values[mask], directions, normalization=bounds) == pytest.approx(
        hv, abs=1e-12
    )
    permutation = list(range(len(values)))
    random.shuffle(permutation)
    assert hypervolume(values[permutation], directions) == pytest.approx(hv, abs=1e-12)
    for j, direction in enumerate(directions):
        if direction == MIN:
            flipped, flipped_directions = values.copy(), list(directions)
            flipped[:, j] *= -1
            flipped_directions[j] = MAX
            assert hypervolume(flipped, flipped_directions) == pytest.approx(hv, abs=1e-12)


def test_hypervolume_is_fast_for_200_points_in_4d() -> None:
    rng = np.random.default_rng(0)
    points = np.abs(rng.normal(size=(200, 4)))
    points /= np.linalg.norm(points, axis=1, keepdims=True)  # all 200 non-dominated
    assert non_dominated_mask(points, [MAX] * 4).all()
    start = time.perf_counter()
    hv = hypervolume(points, [MAX] * 4, normalization=identity(4))
    elapsed = time.perf_counter() - start
    assert 0 < hv < np.pi**2 / 32  # below the volume of the positive orthant of the unit ball
    assert elapsed < 1.0, f"hypervolume took {elapsed:.3f} s (target < 0.2 s, ~0.03 s measured)"


# ---------------------------------------------------------------------------- picking
CONVEX_FRONT = [[0.0, 10.0], [1.0, 4.0], [2.0, 2.0], [4.0, 1.0], [10.0, 0.0]]


def test_knee_of_a_convex_front_is_its_corner() -> None:
    assert knee_point(CONVEX_FRONT, [MIN, MIN]) == 2
    dominated = [[3.0, 3.0], *CONVEX_FRONT]  # dominated points are never the knee
    assert knee_point(dominated, [MIN, MIN]) == 3
    mirrored = [[-a, b] for a, b in CONVEX_FRONT]
    assert knee_point(mirrored, [MAX, MIN]) == 2


def test_knee_in_three_objectives() -> None:
    values = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.5], [0.6, 0.3, 0.3]]
    assert knee_point(values, [MAX] * 3) == 3


def test_knee_degenerate_fronts() -> None:
    assert knee_point([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]], [MAX, MAX]) == 0  # one distinct point
    assert knee_point([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]], [MAX, MAX]) == 0  # linear: a tie
    assert knee_point([[2.0], [5.0], [5.0]], [MAX]) == 1


def test_preference_pick_with_all_weight_on_one_objective_picks_its_best() -> None:
    values = [[0.9, 0.1, 5.0], [0.5, 0.5, 1.0], [0.1, 0.9, 3.0], [0.1, 0.95, 3.0]]
    directions = [MAX, MAX, MIN]
    assert preference_pick(values, directions, [1.0, 0.0, 0.0]) == 0
    assert preference_pick(values, directions, [0.0, 2.0, 0.0]) == 3
    assert preference_pick(values, directions, [0.0, 0.0, 1.0]) == 1
    # Index 2 ties index 3 on a zero-weight objective but is dominated by it.
    assert preference_pick(values, directions, {"recall": 1}, names=["ndcg", "recall", "ms"]) == 3


def test_preference_pick_balanced_weights_and_ties() -> None:
    assert preference_pick(CONVEX_FRONT, [MIN, MIN], [1.0, 1.0]) == 2
    assert preference_pick([[0.0, 1.0], [1.0, 0.0]], [MAX, MAX], [1.0, 1.0]) == 0  # tie: lowest


@FAST
@given(problems(max_points=10, max_objectives=3), st.data())
def test_preference_pick_minimises_the_chebyshev_score(
    problem: tuple[np.ndarray, list[str]], data: st.DataObject
) -> None:
    values, directions = problem
    m = values.shape[1]
    weights = np.array(data.draw(st.lists(st.floats(0.01, 1.0), min_size=m, max_size=m)))
    scores = (weights / weights.sum() * (1 - brute_normalised(values, directions))).max(axis=1)
    pick = preference_pick(values, directions, weights.tolist())
    assert scores[pick] == pytest.approx(scores.min(), abs=1e-12)
    assert non_dominated_mask(values, directions)[pick]


def test_epsilon_constraint_pick_feasible_and_infeasible() -> None:
    values = [[0.30, 12.0, 0.5], [0.25, 4.0, 0.7], [0.20, 5.0, 0.9], [0.10, 1.0, 0.2]]
    directions = [MAX, MIN, MAX]
    names = ["ndcg", "latency_ms", "coverage"]
    pick = epsilon_constraint_pick
    assert pick(values, directions, "ndcg", {"latency_ms": 5.0}, names=names) == 1
    assert pick(values, directions, 0, {1: 5.0, 2: 0.8}) == 2
    assert pick(values, directions, "latency_ms", {"ndcg": 0.2}, names=names) == 1
    assert pick(values, directions, "ndcg", {}, names=names) == 0
    assert pick(values, directions, 0, {1: 12.0, 2: 0.5}) == 0  # bounds are inclusive
    assert pick(values, directions, "ndcg", {"latency_ms": 0.5}, names=names) is None
    assert pick(values, directions, 0, {0: 0.5}) is None


def test_epsilon_constraint_ties_prefer_non_dominated_points() -> None:
    values = [[0.3, 5.0], [0.3, 2.0], [0.3, 2.0], [0.1, 1.0]]
    assert epsilon_constraint_pick(values, [MAX, MIN], 0, {}) == 1


# ---------------------------------------------------------------------------- ParetoFront
def make_front() -> ParetoFront:
    values = [[0.30, 12.0], [0.25, 4.0], [0.20, 5.0], [0.10, 1.0], [0.28, 6.0]]
    payloads = [{"model": "ease", "lambda": float(i)} for i in range(5)]
    return ParetoFront(values, [MAX, MIN], names=["ndcg", "latency_ms"], payloads=payloads)


def test_pareto_front_methods_match_the_functions() -> None:
    front = make_front()
    values, directions = front.values, list(front.directions)
    np.testing.assert_array_equal(front.mask, non_dominated_mask(values, directions))
    np.testing.assert_array_equal(front.ranks, non_dominated_sort(values, directions))
    assert front.hypervolume() == hypervolume(values, directions)
    shared = Normalization((1.0, 0.0), (0.0, 20.0), (MAX, MIN))
    assert front.hypervolume(normalization=shared, reference=[0.1, 0.1]) == hypervolume(
        values, directions, [0.1, 0.1], shared
    )
    assert front.knee() == knee_point(values, directions)
    assert front.pick(weights={"ndcg": 1.0}) == 0
    assert front.pick(weights=[1.0, 1.0]) == preference_pick(values, directions, [1.0, 1.0])
    assert front.pick_constrained("ndcg", {"latency_ms": 6.0}) == 4
    assert front.normalization() == Normalization.from_values(values, directions)


def test_pareto_front_subset_keeps_payloads_and_order() -> None:
    front = make_front()
    sub = front.front()
    assert sub.values.tolist() == [[0.30, 12.0], [0.25, 4.0], [0.10, 1.0], [0.28, 6.0]]
    assert [p["lambda"] for p in sub.payloads or []] == [0.0, 1.0, 3.0, 4.0]
    assert sub.mask.all() and sub.names == front.names
    assert sub.hypervolume(normalization=front.normalization()) == front.hypervolume()


def test_pareto_front_round_trips_through_json_and_prints() -> None:
    front = make_front()
    restored = ParetoFront.from_dict(json.loads(json.dumps(front.to_dict())))
    assert restored == front
    assert restored != ParetoFront(front.values, front.directions)
    assert repr(front) == (
        "ParetoFront(5 points, 4 non-dominated; ndcg (maximize), latency_ms (minimize), with payloads)"
    )
    plain = ParetoFront([[1.0, 2.0]], [MIN, MIN])
    assert plain.names == ("objective_0", "objective_1")
    assert ParetoFront.from_dict(plain.to_dict()) == plain


def test_pareto_front_is_read_only() -> None:
    front = make_front()
    with pytest.raises(ValueError, match="read-only"):
        front.values[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        front.mask[0] = False
    source = np.array([[1.0, 2.0]])
    copied = ParetoFront(source, [MAX, MAX])
    source[0, 0] = 5.0
    assert copied.values[0, 0] == 1.0


def test_docstring_examples_run() -> None:
    result = doctest.testmod(_front)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------- bad inputs
GOOD = [[0.3, 12.0], [0.2, 5.0]]
DIRS = [MAX, MIN]
NAMES = ["ndcg", "latency"]

# fmt: off
BAD_INPUTS: list[tuple[str, Callable[[], Any], str]] = [
    ("directions length", lambda: non_dominated_mask(GOOD, [MAX]), "directions must have 2 entries, one per objective column, got 1"),
    ("unknown direction", lambda: non_dominated_sort(GOOD, [MAX, "max"]), "directions[1] must be one of 'maximize', 'minimize'; got 'max'"),
    ("directions as one string", lambda: hypervolume(GOOD, "maximize"), "directions must be a sequence of 'maximize'/'minimize' strings, one per objective, got 'maximize'"),
    ("NaN value", lambda: hypervolume([[0.3, 1.0], [float("nan"), 2.0]], DIRS), "values[1, 0] must be finite, got nan"),
    ("infinite value", lambda: knee_point([[0.3, -float("inf")]], DIRS), "values[0, 1] must be finite, got -inf"),
    ("empty values", lambda: non_dominated_mask(np.empty((0, 2)), DIRS), "values must hold at least one point, got shape (0, 2)"),
    ("no objectives", lambda: non_dominated_mask(np.empty((3, 0)), []), "values must have at least one objective column, got shape (3, 0)"),
    ("1-D values", lambda: non_dominated_mask([0.3, 0.2], DIRS), "values must be a 2-D array of shape (n_points, n_objectives), got shape (2,)"),
    ("ragged values", lambda: non_dominated_mask([[1.0, 2.0], [3.0]], DIRS), "values must be a numeric array of shape (n_points, n_objectives), got [[1.0, 2.0], [3.0]]"),
    ("negative weight", lambda: preference_pick(GOOD, DIRS, [-0.5, 1.0]), "weights[0] must be a non-negative number, got -0.5"),
    ("all-zero weights", lambda: preference_pick(GOOD, DIRS, [0, 0.0]), "weights must have at least one positive entry, got [0.0, 0.0]"),
    ("NaN weight", lambda: preference_pick(GOOD, DIRS, [float("nan"), 1.0]), "weights[0] must be a non-negative number, got nan"),
    ("infinite weight", lambda: preference_pick(GOOD, DIRS, [float("inf"), 1.0]), "weights[0] must be finite, got inf"),
    ("weights length", lambda: preference_pick(GOOD, DIRS, [1.0]), "weights must have 2 entries, one per objective column, got 1"),
    ("unknown weights key", lambda: preference_pick(GOOD, DIRS, {"recall": 1.0}, names=NAMES), "weights key 'recall' is not one of the objective names: 'ndcg', 'latency'"),
    ("unknown objective name", lambda: epsilon_constraint_pick(GOOD, DIRS, "recall", {}, names=NAMES), "objective 'recall' is not one of the objective names: 'ndcg', 'latency'"),
    ("name without names", lambda: epsilon_constraint_pick(GOOD, DIRS, "ndcg", {}), "objective 'ndcg' is a name, but no names were given; pass names=... or use a column index"),
    ("objective index out of range", lambda: epsilon_constraint_pick(GOOD, DIRS, 2, {}), "objective 2 is not a column index; valid indices are 0..1"),
    ("objective of a wrong type", lambda: epsilon_constraint_pick(GOOD, DIRS, 1.0, {}), "objective must be an objective name or column index, got 1.0"),  # type: ignore[arg-type]
    ("unknown constraint name", lambda: epsilon_constraint_pick(GOOD, DIRS, 0, {"ms": 3.0}, names=NAMES), "constraints key 'ms' is not one of the objective names: 'ndcg', 'latency'"),
    ("NaN constraint", lambda: epsilon_constraint_pick(GOOD, DIRS, 0, {"latency": float("nan")}, names=NAMES), "constraints['latency'] must be a number, got nan"),
    ("constraints not a mapping", lambda: epsilon_constraint_pick(GOOD, DIRS, 0, [5.0]), "constraints must be a mapping {objective: bound}, got [5.0]"),  # type: ignore[arg-type]
    ("duplicate names", lambda: epsilon_constraint_pick(GOOD, DIRS, 0, {}, names=["a", "a"]), "names must be unique, got 'a' twice"),
    ("names length", lambda: epsilon_constraint_pick(GOOD, DIRS, 0, {}, names=["a"]), "names must have 2 entries, one per objective column, got 1"),
    ("reference length", lambda: hypervolume(GOOD, DIRS, reference=[0.0]), "reference must have 2 entries, one per objective column, got 1"),
    ("reference and offset", lambda: hypervolume(GOOD, DIRS, reference=[0.0, 0.0], reference_offset=0.1), "give reference or reference_offset, not both; got reference=[0.0, 0.0] and reference_offset=0.1"),
    ("negative offset", lambda: hypervolume(GOOD, DIRS, reference_offset=-0.1), "reference_offset must be a non-negative number, got -0.1"),
    ("infinite offset", lambda: hypervolume(GOOD, DIRS, reference_offset=float("inf")), "reference_offset must be finite, got inf"),
    ("NaN reference", lambda: hypervolume(GOOD, DIRS, reference=[0.0, float("nan")]), "reference[1] must be finite, got nan"),
    ("normalization directions", lambda: hypervolume(GOOD, DIRS, normalization=identity(2)), "normalization has directions ['maximize', 'maximize'] but the values have directions ['maximize', 'minimize']"),
    ("normalization type", lambda: hypervolume(GOOD, DIRS, normalization=(1.0, 0.0)), "normalization must be a Normalization or None, got (1.0, 0.0)"),  # type: ignore[arg-type]
    ("ideal worse than nadir", lambda: normalize(GOOD, DIRS, ideal=[0.3, 20.0]), "ideal[1]=20.0 is worse than nadir[1]=12.0 for a 'minimize' objective; the ideal must be no worse than the nadir"),
    ("apply with wrong columns", lambda: identity(3).apply(GOOD), "values has 2 objective columns but this normalization has 3"),
    ("payloads length", lambda: ParetoFront(GOOD, DIRS, payloads=[{}]), "payloads must have 2 entries, one per point, got 1"),
    ("payload not a dict", lambda: ParetoFront(GOOD, DIRS, payloads=[{}, "x"]), "payloads[1] must be a dict, got 'x'"),  # type: ignore[list-item]
    ("from_dict missing key", lambda: ParetoFront.from_dict({"values": GOOD}), "ParetoFront dict is missing key 'directions'"),
]
# fmt: on


@pytest.mark.parametrize(
    ("call", "message"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_inputs_raise_clear_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ParetorecError, match=re.escape(message)) as caught:
        call()
    assert str(caught.value) == message
