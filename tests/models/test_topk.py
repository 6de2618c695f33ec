"""Top-k selection and seen-item masking against brute force (ties included)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from paretorec.models import mask_seen, top_k_indices


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_items=st.integers(1, 30),
    levels=st.integers(1, 5),
    data=st.data(),
)
def test_top_k_equals_sorted_with_index_tie_break(
    seed: int, n_items: int, levels: int, data: st.DataObject
) -> None:
    k = data.draw(st.integers(1, n_items))
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(6, n_items)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    expected = np.array(
        [sorted(range(n_items), key=lambda i, r=r: (-scores[r, i], i))[:k] for r in range(6)]
    )
    np.testing.assert_array_equal(top_k_indices(scores, k), expected)


def test_mask_seen_sets_exactly_the_seen_cells() -> None:
    seen = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=np.float32))
    scores = np.zeros((2, 3), dtype=np.float32)
    mask_seen(scores, seen, np.array([2, 0]))
    assert np.isneginf(scores).tolist() == [[False, True, False], [True, False, True]]
