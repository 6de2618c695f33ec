"""Defaults that hold: BPR's schedule scales with the data, early stopping by default,
and a ConvergenceWarning for settings that cannot converge."""

from __future__ import annotations

import re

import numpy as np
import pytest

from paretorec.models import BPRModel, ConvergenceWarning, SequentialTransformer, create_model
from tests.conftest import make_tiny


def test_bpr_schedule_scales_with_the_data_and_reports_the_epochs() -> None:
    tiny = make_tiny()  # 240 events: 40 epochs would be 40 steps of 1024
    model = BPRModel(factors=8, steps=600, seed=0).fit(tiny)
    assert model.validation_history  # early stopping on a carve, by default
    assert model.epochs_run is not None and model.best_epoch is not None
    assert 1 <= model.best_epoch <= model.epochs_run <= 600  # the cap is a ceiling
    assert len(model.loss_history) == model.best_epoch  # the final fit ran the chosen epochs
    plain = BPRModel(factors=8, epochs=700, validation_share=None, seed=0).fit(tiny)
    assert plain.epochs_run == plain.best_epoch == 700 and not plain.validation_history
    # the known answer: each community's items rank first
    top = plain.recommend(np.arange(tiny.n_users), k=5)
    own = np.where(np.arange(tiny.n_users)[:, None] % 2 == 0, top < 20, top >= 20)
    assert own.mean() > 0.9


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: BPRModel(factors=8, epochs=40, validation_share=None),
            "bpr is fitted with 40 optimisation step(s), fewer than the 500 it needs to "
            "converge; 40 epoch(s) x 1 batch(es) of 1024: raise epochs (or steps)",
        ),
        (
            lambda: SequentialTransformer("id", hidden=8, n_layers=1, epochs=2, batch_size=64),
            "sequential is fitted with 2 optimisation step(s), fewer than the 50",
        ),
    ],
)
def test_settings_that_cannot_converge_warn(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.warns(ConvergenceWarning, match=re.escape(message)):
        make().fit(make_tiny())


def test_sequential_early_stops_on_a_carve_by_default() -> None:
    tiny = make_tiny()
    model = SequentialTransformer(
        "id", hidden=8, n_layers=1, epochs=60, batch_size=4, patience=2, seed=0
    ).fit(tiny)
    assert all("valid_ndcg@10" in record for record in model.history_)
    assert model.best_epoch is not None and model.best_epoch <= model.epochs_run <= 60
    assert model.seen.nnz == tiny.n_interactions  # scores from the whole histories
    off = SequentialTransformer(
        "id", hidden=8, n_layers=1, epochs=15, batch_size=4, auto_validation=False
    ).fit(tiny)
    assert off.epochs_run == 15 and off.best_epoch is None


def test_create_model_names_the_valid_parameters() -> None:
    with pytest.raises(Exception, match=r"valid parameters: factors, epochs, learning_rate"):
        create_model("bpr", epoch=3)
