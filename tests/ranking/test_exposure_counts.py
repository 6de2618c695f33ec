"""apply_policy's exposure penalty continued from earlier placements (a service's lists)."""

from __future__ import annotations

import numpy as np
import pytest

from paretorec import ParetorecError
from paretorec.ranking import CandidateSet, ItemContext, Policy, apply_policy


def _one_user() -> tuple[CandidateSet, ItemContext]:
    items = np.arange(8)[None, :]
    scores = np.linspace(1.0, 0.3, 8, dtype=np.float32)[None, :]
    candidates = CandidateSet(users=np.zeros(1, dtype=np.int64), items=items, scores=scores)
    context = ItemContext(
        vectors=np.eye(8), popularity=np.ones(8), n_users=100, groups=np.zeros(8, dtype=np.int64)
    )
    return candidates, context


def test_prior_counts_push_exposed_items_down() -> None:
    candidates, context = _one_user()
    policy = Policy(k=3, exposure_penalty=1.0)
    fresh = apply_policy(policy, candidates, context)
    assert fresh[0].tolist() == [0, 1, 2]  # a batch of one: nothing placed before
    counts = np.zeros(8)
    counts[[0, 1]] = 50.0
    seeded = apply_policy(policy, candidates, context, exposure_counts=counts, exposure_users=100)
    assert seeded[0].tolist() == [2, 3, 4] and counts[0] == 50.0  # counts not modified
    assert apply_policy(Policy(k=3), candidates, context, exposure_counts=counts)[0].tolist() == [
        0,
        1,
        2,
    ]  # no penalty, no effect


def test_bad_counts_are_refused() -> None:
    candidates, context = _one_user()
    with pytest.raises(ParetorecError, match="one finite count per item"):
        apply_policy(
            Policy(k=3, exposure_penalty=1.0), candidates, context, exposure_counts=np.zeros(3)
        )
