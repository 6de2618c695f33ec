"""Diversity and exposure-fairness regularisers against numpy brute force; popularity groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from paretorec._arrays import long_tail_mask
from paretorec._validation import ParetorecError
from paretorec.multitask._regularizers import (
    diversity_regularized_loss,
    exposure_fairness,
    negative_entropy,
    popularity_groups,
)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)
score_values = st.floats(-8, 8, allow_nan=False, allow_infinity=False)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def scored_lists(max_items: int = 12, max_lists: int = 4) -> st.SearchStrategy:
    """(scores, list ids) with arbitrary, non-contiguous list ids."""
    return st.integers(1, max_items).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, (n,), elements=score_values),
            arrays(np.int64, (n,), elements=st.sampled_from([-7, 0, 3, 11][:max_lists])),
        )
    )


def brute_negative_entropy(scores: np.ndarray, lists: np.ndarray | None) -> float:
    lists = np.zeros(len(scores), dtype=np.int64) if lists is None else lists
    values = []
    for list_id in np.unique(lists):
        s = scores[lists == list_id]
        p = np.exp(s - s.max())
        p /= p.sum()
        values.append(sum(pi * math.log(pi) for pi in p if pi > 0))
    return float(np.mean(values))


def brute_exposure(
    scores: np.ndarray,
    item_groups: np.ndarray,
    kind: str,
    exposure: str,
    lists: np.ndarray | None = None,
) -> float:
    if exposure == "sigmoid":
        values = 1 / (1 + np.exp(-scores))
    else:
        lists = np.zeros(len(scores), dtype=np.int64) if lists is None else lists
        values = np.empty_like(scores)
        for list_id in np.unique(lists):
            members = lists == list_id
            e = np.exp(scores[members] - scores[members].max())
            values[members] = e / e.sum()
    means = [values[item_groups == g].mean() for g in sorted(set(item_groups.tolist()))]
    if len(means) < 2:
        return 0.0
    return float(np.var(means) if kind == "variance" else max(means) - min(means))


# --------------------------------------------------------------------------- diversity
@SETTINGS
@given(data=scored_lists(), use_lists=st.booleans())
def test_negative_entropy_matches_brute_force(
    data: tuple[np.ndarray, np.ndarray], use_lists: bool
) -> None:
    scores, lists = data
    lists_arg = lists if use_lists else None
    got = negative_entropy(torch.as_tensor(scores), lists_arg)
    assert float(got) == pytest.approx(brute_negative_entropy(scores, lists_arg), abs=1e-9)


def test_negative_entropy_two_dimensional_rows_are_lists() -> None:
    scores = torch.tensor([[0.0, 1.0, 2.0], [5.0, 5.0, -1.0]], dtype=torch.float64)
    flat = negative_entropy(scores.reshape(-1), torch.tensor([0, 0, 0, 1, 1, 1]))
    torch.testing.assert_close(negative_entropy(scores), flat)


@SETTINGS
@given(scores=arrays(np.float64, (6,), elements=score_values))
def test_entropy_is_largest_for_uniform_scores(scores: np.ndarray) -> None:
    value = float(negative_entropy(torch.as_tensor(scores)))
    uniform = float(negative_entropy(torch.full((6,), 0.3, dtype=torch.float64)))
    assert uniform == pytest.approx(-math.log(6))
    assert value >= uniform - 1e-12
    assert value <= 1e-12


def test_negative_entropy_gradient_pushes_towards_uniform() -> None:
    scores = torch.tensor([3.0, 0.0, -1.0], requires_grad=True)
    negative_entropy(scores).backward()
    assert scores.grad is not None
    assert scores.grad[0] > 0 > scores.grad[2]  # descent lowers the top score, lifts the bottom


@SETTINGS
@given(data=scored_lists(), accuracy=st.floats(-5, 5))
def test_lambda_one_returns_the_accuracy_loss_exactly(
    data: tuple[np.ndarray, np.ndarray], accuracy: float
) -> None:
    scores, lists = data
    accuracy_loss = torch.tensor(accuracy, requires_grad=True)
    got = diversity_regularized_loss(accuracy_loss, torch.as_tensor(scores), lam=1.0, group=lists)
    assert got is accuracy_loss


@SETTINGS
@given(data=scored_lists(), accuracy=st.floats(-5, 5), lam=st.floats(0, 1))
def test_diversity_loss_is_the_convex_combination(
    data: tuple[np.ndarray, np.ndarray], accuracy: float, lam: float
) -> None:
    scores, lists = data
    got = diversity_regularized_loss(
        torch.tensor(accuracy, dtype=torch.float64), torch.as_tensor(scores), lam=lam, group=lists
    )
    expected = lam * accuracy + (1 - lam) * brute_negative_entropy(scores, lists)
    assert float(got) == pytest.approx(expected, abs=1e-9)


def test_lambda_zero_is_pure_diversity() -> None:
    scores = torch.tensor([1.0, 2.0, 0.5])
    got = diversity_regularized_loss(torch.tensor(9.0), scores, lam=0.0)
    torch.testing.assert_close(got, negative_entropy(scores))


# --------------------------------------------------------------------------- fairness
@pytest.mark.parametrize("kind", ["variance", "range"])
@pytest.mark.parametrize("exposure", ["sigmoid", "softmax"])
@SETTINGS
@given(
    data=st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, (n,), elements=score_values),
            arrays(np.int64, (n,), elements=st.integers(0, 2)),
            arrays(np.int64, (n,), elements=st.integers(0, 1)),
        )
    ),
    use_lists=st.booleans(),
)
def test_exposure_fairness_matches_brute_force(
    kind: str, exposure: str, data: tuple[np.ndarray, np.ndarray, np.ndarray], use_lists: bool
) -> None:
    scores, item_groups, lists = data
    lists_arg = lists if use_lists and exposure == "softmax" else None
    tensor = torch.as_tensor(scores).requires_grad_(True)
    got = exposure_fairness(
        tensor, item_groups, n_groups=3, kind=kind, exposure=exposure, group=lists_arg
    )  # type: ignore[arg-type]
    assert float(got.detach()) == pytest.approx(
        brute_exposure(scores, item_groups, kind, exposure, lists_arg), abs=1e-9
    )
    got.backward()
    assert tensor.grad is not None and bool(torch.isfinite(tensor.grad).all())


@pytest.mark.parametrize("kind", ["variance", "range"])
@pytest.mark.parametrize("exposure", ["sigmoid", "softmax"])
def test_exposure_fairness_is_zero_when_groups_are_equal(kind: str, exposure: str) -> None:
    scores = torch.tensor([1.0, -2.0, 1.0, -2.0, 0.5, 0.5])
    item_groups = torch.tensor([0, 0, 1, 1, 2, 2])
    # groups 0 and 1 hold the same scores; group 2's mean sigmoid differs, so drop it
    same = exposure_fairness(scores[:4], item_groups[:4], n_groups=3, kind=kind, exposure=exposure)  # type: ignore[arg-type]
    assert float(same) == pytest.approx(0.0, abs=1e-12)
    uneven = exposure_fairness(scores, item_groups, n_groups=3, kind=kind, exposure=exposure)  # type: ignore[arg-type]
    assert float(uneven) > 0


def test_exposure_fairness_descent_narrows_the_gap() -> None:
    scores = torch.tensor([3.0, 2.0, -2.0, -3.0], requires_grad=True)
    item_groups = [0, 0, 1, 1]
    optimiser = torch.optim.SGD([scores], lr=20.0)
    start = float(exposure_fairness(scores, item_groups, n_groups=2).detach())
    for _ in range(30):
        optimiser.zero_grad()
        exposure_fairness(scores, item_groups, n_groups=2).backward()
        optimiser.step()
    assert float(exposure_fairness(scores, item_groups, n_groups=2).detach()) < 0.1 * start


def test_exposure_fairness_with_one_group_present_is_a_zero_with_a_graph() -> None:
    scores = torch.tensor([1.0, 2.0], requires_grad=True)
    value = exposure_fairness(scores, [1, 1], n_groups=2)
    assert float(value.detach()) == 0.0
    value.backward()
    torch.testing.assert_close(scores.grad, torch.zeros(2))


# --------------------------------------------------------------------------- popularity groups
def test_popularity_groups_head_fraction_is_long_tail_mask() -> None:
    counts = np.array([5, 0, 9, 9, 1, 3, 7, 2, 8, 4])
    np.testing.assert_array_equal(
        popularity_groups(counts, head_fraction=0.2), long_tail_mask(counts, 0.2).astype(int)
    )


@SETTINGS
@given(
    counts=arrays(np.int64, st.integers(1, 40), elements=st.integers(0, 5)),
    n_groups=st.integers(1, 6),
)
def test_popularity_groups_are_balanced_and_ordered(counts: np.ndarray, n_groups: int) -> None:
    if n_groups > counts.size:
        return
    groups = popularity_groups(counts, n_groups)
    sizes = np.bincount(groups, minlength=n_groups)
    assert sizes.size == n_groups
    assert sizes.max() - sizes.min() <= 1
    assert (np.diff(sizes) <= 0).all()  # the extra items go to the more popular groups
    for g in range(n_groups - 1):  # every item of group g is at least as popular as group g+1
        assert counts[groups == g].min() >= counts[groups == g + 1].max()


def test_two_equal_groups_agree_with_long_tail_mask_at_one_half() -> None:
    counts = np.array([3, 1, 4, 1, 5, 9, 2])
    np.testing.assert_array_equal(
        popularity_groups(counts, 2), long_tail_mask(counts, 0.5).astype(int)
    )


# --------------------------------------------------------------------------- errors
S = torch.tensor([0.1, 0.2, 0.3])

BAD_CALLS = [
    (lambda: negative_entropy([0.1, 0.2]), "scores must be a torch.Tensor, got list"),  # type: ignore[arg-type]
    (
        lambda: negative_entropy(torch.zeros(0)),
        "scores must be a non-empty 1-D (items) or 2-D (lists x items) tensor, got shape (0,)",
    ),
    (lambda: negative_entropy(torch.zeros(2, 2, 2)), "got shape (2, 2, 2)"),
    (
        lambda: negative_entropy(torch.tensor([1, 2])),
        "scores must hold floating-point scores, got dtype torch.int64",
    ),
    (
        lambda: negative_entropy(torch.tensor([1.0, float("inf")])),
        "scores must hold only finite values",
    ),
    (lambda: negative_entropy(S, [0, 1]), "group must have the shape of scores (3,), got (2,)"),
    (
        lambda: negative_entropy(S, [0.0, 1.0, 1.0]),
        "group must hold integer ids, got dtype torch.float64",
    ),
    (
        lambda: negative_entropy(torch.zeros(2, 3), [0, 0, 1]),
        "group must be None when scores is 2-D",
    ),
    (
        lambda: diversity_regularized_loss(torch.tensor(1.0), S, lam=1.5),
        "lam must be in [0, 1], got 1.5",
    ),
    (
        lambda: diversity_regularized_loss(torch.ones(2), S, lam=0.5),
        "accuracy_loss must be a scalar torch.Tensor, got Tensor of shape (2,)",
    ),
    (
        lambda: diversity_regularized_loss(1.0, S, lam=0.5),
        "accuracy_loss must be a scalar torch.Tensor, got float",
    ),  # type: ignore[arg-type]
    (
        lambda: exposure_fairness(S, [0, 1, 2], n_groups=2),
        "item_groups must hold group ids in [0, 2) (n_groups=2), got 2",
    ),
    (
        lambda: exposure_fairness(S, [0, 1], n_groups=2),
        "item_groups must have the shape of scores (3,), got (2,)",
    ),
    (lambda: exposure_fairness(S, [0, 1, 1], n_groups=0), "n_groups must be a positive int, got 0"),
    (
        lambda: exposure_fairness(S, [0, 1, 1], n_groups=2, kind="gini"),
        "kind must be one of 'variance', 'range'; got 'gini'",
    ),  # type: ignore[arg-type]
    (
        lambda: exposure_fairness(S, [0, 1, 1], n_groups=2, exposure="rank"),
        "exposure must be one of 'sigmoid', 'softmax'; got 'rank'",
    ),  # type: ignore[arg-type]
    (
        lambda: exposure_fairness(S, [0, 1, 1], n_groups=2, group=[0, 0, 1]),
        "group is only used with exposure='softmax'",
    ),
    (
        lambda: popularity_groups([3, 1], 3),
        "n_groups must be at most the number of items (2), got 3",
    ),
    (
        lambda: popularity_groups([3, 1, 2], 3, head_fraction=0.2),
        "head_fraction splits items into head and tail: it needs n_groups=2, got n_groups=3",
    ),
    (
        lambda: popularity_groups([3, -1]),
        "item_popularity must be non-negative, got -1.0 at index 1",
    ),
    (
        lambda: popularity_groups([3, 1], head_fraction=2.0),
        "head_fraction must be in [0, 1], got 2.0",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD_CALLS)
def test_error_messages(call, message: str) -> None:
    with pytest.raises(ParetorecError) as info:
        call()
    assert message in str(info.value)
