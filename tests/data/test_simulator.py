"""The funnel simulator: determinism, shapes, the funnel's logic and its known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from paretorec._validation import ParetorecError
from paretorec.data._simulator import TOPIC_WORDS, SimulatedFunnel, simulate_funnel

SMALL = {"n_users": 300, "n_items": 200, "n_impressions": 20_000}


@pytest.fixture(scope="module")
def funnel() -> SimulatedFunnel:
    return simulate_funnel(**SMALL, seed=7)


def test_same_seed_same_log_other_seed_other_log(funnel: SimulatedFunnel) -> None:
    again = simulate_funnel(**SMALL, seed=7)
    pd.testing.assert_frame_equal(again.dataset.interactions, funnel.dataset.interactions)
    pd.testing.assert_frame_equal(again.dataset.items, funnel.dataset.items)
    pd.testing.assert_frame_equal(again.dataset.users, funnel.dataset.users)
    np.testing.assert_array_equal(again.item_factors, funnel.item_factors)
    other = simulate_funnel(**SMALL, seed=8)
    assert not np.array_equal(
        other.dataset.interactions["p_click"], funnel.dataset.interactions["p_click"]
    )


def test_shapes_and_columns(funnel: SimulatedFunnel) -> None:
    data = funnel.dataset
    frame = data.interactions
    assert (data.n_users, data.n_items, len(frame)) == (300, 200, 20_000)
    assert data.label_columns == ("click", "conversion")
    assert {"user", "item", "timestamp", "click", "conversion", "p_click", "p_conv", "p_ctcvr",
            "conversion_if_clicked"} <= set(frame.columns)  # fmt: skip
    assert list(data.items.columns) == ["item_id", "text", "category", "price"]
    assert list(data.users.columns) == ["user_id", "age_group", "device"]
    assert not frame.duplicated(["user", "item"]).any()  # each pair is shown once
    assert funnel.user_factors.shape == funnel.user_conversion_factors.shape == (300, 8)
    assert funnel.item_factors.shape == (200, 8)
    assert funnel.item_topics.shape == funnel.item_bait.shape == funnel.item_price.shape == (200,)
    for column in ("p_click", "p_conv", "p_ctcvr"):
        assert frame[column].between(0, 1).all()
    np.testing.assert_allclose(frame["p_ctcvr"], frame["p_click"] * frame["p_conv"], rtol=1e-5)
    assert repr(funnel).startswith("SimulatedFunnel(users=300, items=200, impressions=20,000")


def test_conversion_only_after_a_click(funnel: SimulatedFunnel) -> None:
    frame = funnel.dataset.interactions
    assert (frame["conversion"] <= frame["click"]).all()
    np.testing.assert_array_equal(
        frame["conversion"], frame["click"] * frame["conversion_if_clicked"]
    )
    assert frame["conversion"].sum() > 0


def test_rates_match_the_truth(funnel: SimulatedFunnel) -> None:
    frame = funnel.dataset.interactions
    assert frame["p_click"].mean() == pytest.approx(0.04, abs=1e-4)  # calibrated intercept
    assert frame["p_conv"].mean() == pytest.approx(0.1, abs=1e-4)
    for label, probability in (("click", "p_click"), ("conversion_if_clicked", "p_conv")):
        p = frame[probability].to_numpy(np.float64)
        standard_error = np.sqrt((p * (1 - p)).sum()) / len(p)
        assert abs(frame[label].mean() - p.mean()) < 4 * standard_error
    clicked = frame["click"] == 1
    p = frame.loc[clicked, "p_conv"].to_numpy(np.float64)
    standard_error = np.sqrt((p * (1 - p)).sum()) / len(p)
    assert abs(frame.loc[clicked, "conversion"].mean() - p.mean()) < 4 * standard_error


def test_true_probabilities_rank_the_labels_well(funnel: SimulatedFunnel) -> None:
    frame = funnel.dataset.interactions
    assert roc_auc_score(frame["click"], frame["p_click"]) > 0.8
    assert roc_auc_score(frame["conversion_if_clicked"], frame["p_conv"]) > 0.8


def test_clicked_impressions_are_a_biased_sample_for_conversion(funnel: SimulatedFunnel) -> None:
    frame = funnel.dataset.interactions
    clicked = frame["click"] == 1
    assert abs(frame.loc[clicked, "p_conv"].mean() / frame["p_conv"].mean() - 1) > 0.1
    # eye-catching items are over-represented among clicks and convert worse
    bait = funnel.item_bait[frame["item"].to_numpy()]
    assert bait[clicked.to_numpy()].mean() > bait.mean() + 0.2
    assert np.corrcoef(bait, frame["p_conv"])[0, 1] < -0.1


def test_conversion_depends_on_factors_other_than_clicks(funnel: SimulatedFunnel) -> None:
    frame = funnel.dataset.interactions
    correlation = np.corrcoef(np.log(frame["p_click"]), np.log(frame["p_conv"]))[0, 1]
    assert abs(correlation) < 0.6


def test_item_text_names_the_topic(funnel: SimulatedFunnel) -> None:
    items = funnel.dataset.items
    for text, category, topic in zip(
        items["text"], items["category"], funnel.item_topics, strict=True
    ):
        name, words = TOPIC_WORDS[topic]
        assert name == category
        assert sum(word in text for word in words) >= 3
    assert items["text"].str.len().between(20, 120).all()


def test_popularity_skews_the_impressions(funnel: SimulatedFunnel) -> None:
    popularity = np.sort(funnel.dataset.item_popularity())[::-1]
    assert popularity[:20].sum() > 2 * popularity[-20:].sum()
    flat = simulate_funnel(**SMALL, seed=7, popularity_skew=0.0, exposure_affinity=0.0)
    counts = flat.dataset.item_popularity()
    assert counts.max() < 2 * counts.mean()


def test_every_pair_can_be_shown_once() -> None:
    full = simulate_funnel(n_users=5, n_items=4, n_impressions=20, seed=1)
    pairs = full.dataset.interactions[["user", "item"]]
    assert len(pairs.drop_duplicates()) == 20


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_users": 0}, "n_users must be a positive int, got 0"),
        ({"n_items": 2.5}, "n_items must be a positive int, got 2.5"),
        (
            {"n_users": 2, "n_items": 3, "n_impressions": 7},
            "n_impressions must be at most n_users * n_items (6: each pair is shown once), got 7",
        ),
        ({"dim": -1}, "dim must be a positive int, got -1"),
        ({"n_topics": 13}, "n_topics must be at most 12, got 13"),
        ({"click_rate": 1.0}, "click_rate must be in (0, 1), got 1.0"),
        ({"conversion_rate": 0}, "conversion_rate must be in (0, 1), got 0"),
        ({"selection_bias": -1}, "selection_bias must be a non-negative number, got -1"),
        (
            {"popularity_skew": float("inf")},
            "popularity_skew must be a finite non-negative number, got inf",
        ),
        (
            {"exposure_affinity": "high"},
            "exposure_affinity must be a non-negative number, got 'high'",
        ),
        ({"seed": -3}, "seed must be a non-negative int, got -3"),
    ],
)
def test_bad_arguments(params: dict, message: str) -> None:
    with pytest.raises(ParetorecError) as info:
        simulate_funnel(**params)
    assert message in str(info.value)
