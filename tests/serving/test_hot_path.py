"""The request path's shortcuts give the same answers as the general code."""

from __future__ import annotations

import numpy as np
import pytest

from paretorec.models import top_k_indices
from paretorec.serving._recommender import top_k_row


@pytest.mark.parametrize("seed", range(4))
def test_top_k_row_matches_top_k_indices_with_ties_and_infinities(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.integers(1, 120))
        k = int(rng.integers(1, n + 3))
        # few distinct values: many ties, also at the cut-off
        scores = rng.integers(0, int(rng.integers(1, 12)), n).astype(np.float32)
        if rng.random() < 0.4:
            scores[rng.random(n) < 0.3] = -np.inf
        expected = top_k_indices(scores[None, :], k)[0]
        np.testing.assert_array_equal(top_k_row(scores, k), expected)


def test_top_k_row_continuous_scores() -> None:
    scores = np.random.default_rng(9).random(3706).astype(np.float32)
    np.testing.assert_array_equal(top_k_row(scores, 200), top_k_indices(scores[None, :], 200)[0])
    assert len(top_k_row(scores, 0)) == 0
