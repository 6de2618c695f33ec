"""ESMM on the funnel simulator: pCVR is scored and started on clicked rows, and it learns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from paretorec.data import Dataset, simulate_funnel
from paretorec.multitask import MultiTaskRanker, TaskSpec, build_model, encode_rows
from paretorec.multitask._features import FeatureSpec, encode_features
from paretorec.multitask._trainer import label_means

FAST: dict[str, Any] = {
    "embedding_dim": 8,
    "tower_units": (8,),
    "epochs": 3,
    "batch_size": 512,
    "lr": 5e-3,
    "device": "cpu",
}
UNMASKED = (TaskSpec("click"), TaskSpec("conversion"))
MASKED = (TaskSpec("click"), TaskSpec("conversion", mask_column="clicked"))


def _split(
    n_impressions: int, seed: int
) -> tuple[Dataset, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    funnel = simulate_funnel(n_users=300, n_items=200, n_impressions=n_impressions, seed=seed)
    rows = funnel.dataset.interactions.copy()
    rows["clicked"] = rows["click"] > 0
    part = np.random.default_rng(seed).random(len(rows))
    train, valid, test = rows[part < 0.7], rows[(part >= 0.7) & (part < 0.8)], rows[part >= 0.8]
    return funnel.dataset, train, valid, test


@pytest.fixture(scope="module")
def funnel() -> tuple[Dataset, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return _split(20_000, seed=7)


def test_esmm_scores_its_cvr_task_on_clicked_rows_only(funnel: Any) -> None:
    dataset, train, _, _ = funnel
    features = encode_features(FeatureSpec.infer(dataset), dataset, train)
    batch = encode_rows(train, features, UNMASKED)
    assert batch.labels is not None and batch.mask is not None
    labels, mask = batch.labels.clone(), batch.mask.clone()
    esmm = build_model("esmm", features, UNMASKED)
    scored_labels, scored_mask = esmm.metric_labels(batch.labels, batch.mask)
    clicked = batch.labels[:, 0] > 0.5
    torch.testing.assert_close(scored_mask[:, 1], clicked)  # conversion: clicked rows
    torch.testing.assert_close(scored_mask[:, 0], batch.mask[:, 0])  # click: every row
    torch.testing.assert_close(scored_labels, batch.labels)
    torch.testing.assert_close(batch.mask, mask)  # the inputs are left alone
    torch.testing.assert_close(batch.labels, labels)
    mmoe = build_model("mmoe", features, UNMASKED)
    same_labels, same_mask = mmoe.metric_labels(batch.labels, batch.mask)
    assert same_labels is batch.labels and same_mask is batch.mask


@pytest.mark.parametrize("tasks", [UNMASKED, MASKED], ids=["unmasked", "masked"])
def test_esmm_cvr_starts_at_the_conversion_rate_of_clicked_rows(
    funnel: Any, tasks: tuple[TaskSpec, ...]
) -> None:
    dataset, train, _, _ = funnel
    rate = train["conversion"].sum() / train["click"].sum()  # not the CTCVR rate of all rows
    features = encode_features(FeatureSpec.infer(dataset), dataset, train)
    batch = encode_rows(train, features, tasks)
    model = build_model("esmm", features, tasks)
    means = label_means(batch, tasks, model=model)
    assert means["conversion"] == pytest.approx(rate, rel=1e-5)
    assert means["click"] == pytest.approx(train["click"].mean(), rel=1e-5)
    # Through fit, with a step too small to move the bias.
    ranker = MultiTaskRanker("esmm", tasks, **{**FAST, "epochs": 1, "lr": 1e-12})
    ranker.fit(train, dataset=dataset)
    cvr_bias = ranker.model.heads.output.bias.detach()  # type: ignore[union-attr]
    assert float(torch.sigmoid(cvr_bias[0])) == pytest.approx(rate, rel=1e-4)


def test_esmm_trains_and_scores_the_same_with_or_without_a_cvr_mask(funnel: Any) -> None:
    dataset, train, valid, _ = funnel
    options = {**FAST, "monitor_task": "conversion", "patience": None}
    runs = [
        MultiTaskRanker("esmm", tasks, **options).fit(train, valid, dataset=dataset)
        for tasks in (UNMASKED, MASKED)
    ]
    unmasked, masked = runs
    for key, value in unmasked.predict(valid).items():
        np.testing.assert_array_equal(value, masked.predict(valid)[key])
    for a, b in zip(unmasked.history.epochs, masked.history.epochs, strict=True):
        assert a.train_loss == b.train_loss and a.valid == b.valid
    assert unmasked.evaluate(valid) == masked.evaluate(valid)


def test_esmm_validation_and_evaluate_use_clicked_rows_for_cvr(funnel: Any) -> None:
    dataset, train, valid, _ = funnel
    ranker = MultiTaskRanker(
        "esmm", UNMASKED, **{**FAST, "monitor_task": "conversion", "patience": None}
    ).fit(train, valid, dataset=dataset)
    predicted = ranker.predict(valid)
    clicked = valid["click"].to_numpy() > 0
    metrics = ranker.evaluate(valid)
    expected = roc_auc_score(valid["conversion"][clicked], predicted["conversion"][clicked])
    assert metrics["conversion_auc"] == pytest.approx(expected)
    ctcvr = (valid["click"] * valid["conversion"]).to_numpy()
    assert metrics["ctcvr_auc"] == pytest.approx(roc_auc_score(ctcvr, predicted["ctcvr"]))
    history = ranker.history
    assert history.monitor == "conversion_auc"
    assert all("ctcvr_auc" in epoch.valid for epoch in history.epochs)
    values = history.metric("conversion_auc")
    assert history.best_epoch == int(np.argmax(values)) + 1
    assert metrics["conversion_auc"] == pytest.approx(history.best_value, rel=1e-5)


@pytest.mark.slow
def test_esmm_beats_a_cvr_model_on_clicked_rows_over_the_entire_space() -> None:
    # The simulator_funnel benchmark's setting, one seed: both models pick their epoch by
    # CVR AUC on the validation clicked rows; the naive model is ESMM's CVR network alone.
    funnel = simulate_funnel(n_users=2000, n_items=1000, n_impressions=200_000, seed=0)
    dataset, rows = funnel.dataset, funnel.dataset.interactions.copy()
    part = np.random.default_rng(0).random(len(rows))
    train, valid, test = rows[part < 0.7], rows[(part >= 0.7) & (part < 0.8)], rows[part >= 0.8]
    common: dict[str, Any] = {
        "embedding_dim": 16,
        "tower_units": (32,),
        "batch_size": 2048,
        "lr": 2e-3,
        "patience": 3,
        "monitor_task": "conversion",
        "device": "cpu",
    }
    esmm = MultiTaskRanker("esmm", UNMASKED, **common).fit(train, valid, dataset=dataset)
    naive = MultiTaskRanker(
        "shared_bottom",
        [TaskSpec("conversion")],
        **{**common, "tower_units": (), "architecture_params": {"bottom_units": (32,)}},
    ).fit(train[train["click"] > 0], valid[valid["click"] > 0], dataset=dataset)
    truth = test["conversion_if_clicked"].to_numpy()
    esmm_auc = roc_auc_score(truth, esmm.predict(test)["conversion"])
    naive_auc = roc_auc_score(truth, naive.predict(test)["conversion"])
    assert esmm_auc > naive_auc > 0.6
