"""Item-kNN similarity: the neighbour cut-off is a pure function of the data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from paretorec.models import _itemknn
from paretorec.models._itemknn import item_similarity


def tied_matrix() -> sp.csr_matrix:
    """Item 0 co-occurs once with each of items 1..5 (equal similarities) and twice with 6."""
    rows = [(0, j) for j in range(1, 6)] + [(0, 6), (0, 6)]
    dense = np.zeros((len(rows), 7), dtype=np.float32)
    for user, items in enumerate(rows):
        dense[user, list(items)] = 1.0
    return sp.csr_matrix(dense)


def neighbours_of(similarity: sp.csr_matrix, item: int) -> set[int]:
    column = similarity[:, item].toarray().ravel()
    return set(np.flatnonzero(column).tolist())


@pytest.mark.parametrize(
    ("neighbors", "expected"), [(1, {6}), (2, {6, 1}), (3, {6, 1, 2}), (5, {6, 1, 2, 3, 4})]
)
def test_ties_at_the_cut_off_go_to_lower_item_codes(neighbors: int, expected: set[int]) -> None:
    similarity = item_similarity(tied_matrix(), neighbors=neighbors, shrink=1.0, normalize=False)
    column = similarity[:, 0].toarray().ravel()
    assert np.unique(column[1:6]).size <= 2  # items 1..5 really are tied (or cut to zero)
    assert neighbours_of(similarity, 0) == expected


def test_cut_off_does_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    matrix = sp.csr_matrix((rng.random((40, 30)) < 0.2).astype(np.float32))
    whole = item_similarity(matrix, neighbors=4, shrink=0.0, normalize=False)
    monkeypatch.setattr(_itemknn, "_BLOCK_CELLS", 30)  # one item per block
    blocked = item_similarity(matrix, neighbors=4, shrink=0.0, normalize=False)
    assert (whole != blocked).nnz == 0
    # binary data with shrink 0 has many exact ties; each kept set must be the lowest codes
    dense = matrix.toarray()
    norms = np.sqrt(dense.sum(axis=0))
    for item in range(30):
        gram = dense[:, item] @ dense
        sim = np.divide(gram, norms[item] * norms, out=np.zeros(30), where=norms > 0)
        sim[item] = 0.0
        order = sorted(range(30), key=lambda j: (-sim[j], j))[:4]
        assert neighbours_of(whole, item) == {j for j in order if sim[j] > 0}
