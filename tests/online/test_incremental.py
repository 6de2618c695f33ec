"""New items scored from text vectors."""

from __future__ import annotations

import numpy as np
import pytest

from paretorec import ParetorecError
from paretorec.online import score_new_items


def test_new_items_land_near_the_users_history() -> None:
    rng = np.random.default_rng(0)
    topics = np.eye(4)
    items = np.repeat(topics, 10, axis=0) + 0.1 * rng.standard_normal((40, 4))
    new = topics[[2, 0]] + 0.05 * rng.standard_normal((2, 4))
    histories = [np.arange(0, 5), np.arange(20, 26), np.array([], dtype=np.int64)]
    scores = score_new_items(histories, items, new, neighbours=3)
    assert scores.shape == (3, 2) and scores.dtype == np.float32
    assert scores[0, 1] > 0.9 > scores[0, 0]  # topic-0 user: the topic-0 newcomer
    assert scores[1, 0] > 0.9 > scores[1, 1]
    np.testing.assert_array_equal(scores[2], 0.0)
    # brute force: mean of the 3 largest cosines
    unit = items / np.linalg.norm(items, axis=1, keepdims=True)
    fresh = new / np.linalg.norm(new, axis=1, keepdims=True)
    expected = np.sort(unit[20:26] @ fresh[0])[-3:].mean()
    assert scores[1, 0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([np.array([0])], np.ones((3, 2)), np.ones((1, 3))), r"the same width"),
        (([np.array([5])], np.ones((3, 2)), np.ones((1, 2))), r"histories\[0\] holds item codes"),
    ],
)
def test_bad_inputs(args: tuple, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ParetorecError, match=message):
        score_new_items(*args)
