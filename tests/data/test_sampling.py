"""The shared negative sampler: never a positive, uniform over unseen items, exact fallback."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from paretorec.data import _sampling
from paretorec.data._sampling import draw_unseen, seen_keys_of


def matrix() -> sp.csr_matrix:
    dense = np.zeros((3, 10), dtype=np.float32)
    dense[0, [0, 1, 2, 3, 4, 5, 6, 7]] = 1  # two unseen items: 8, 9
    dense[1, [3]] = 1
    dense[2, [0, 9]] = 1
    return sp.csr_matrix(dense)


@pytest.mark.parametrize("rounds", [0, 1, 10])
def test_draws_are_unseen_and_uniform(rounds: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """With 0 rounds every draw goes through the exact fallback; it must be uniform too."""
    monkeypatch.setattr(_sampling, "REJECTION_ROUNDS", rounds)
    m = matrix()
    users = np.repeat(np.arange(3), 20_000)
    draws = draw_unseen(users, seen_keys_of(m), 10, np.random.default_rng(0))
    dense = m.toarray() > 0
    assert not dense[users, draws].any()
    for user in range(3):
        unseen = np.flatnonzero(~dense[user])
        freq = np.bincount(draws[users == user], minlength=10)[unseen] / 20_000
        np.testing.assert_allclose(freq, 1 / len(unseen), atol=0.015)
