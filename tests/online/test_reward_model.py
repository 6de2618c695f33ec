"""paretorec's multi-task ranker as the DM / DR reward model (small synthetic logs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.model_selection import KFold

from paretorec import ParetorecError
from paretorec.online import (
    LoggedFeedback,
    cross_fit_folds,
    estimate_policy_value,
    fit_ranker_reward_model,
    obp_python,
    round_rewards,
)
from paretorec.online._obd import PUBLISHED_PROTOCOL, run_obp_protocol

from ..conftest import dataset_folder

N_ACTIONS, LEN_LIST = 4, 2


def _logs(n: int = 600, seed: int = 0) -> tuple[LoggedFeedback, np.ndarray]:
    """Uniform logging; the click rate depends on the action (strongly) and the position."""
    rng = np.random.default_rng(seed)
    truth = np.array([[0.6, 0.4], [0.1, 0.05], [0.1, 0.05], [0.1, 0.05]])
    action = rng.integers(0, N_ACTIONS, n)
    position = rng.integers(0, LEN_LIST, n)
    reward = (rng.random(n) < truth[action, position]).astype(float)
    context = rng.integers(0, 2, size=(n, 3)).astype(float)  # 8 distinct contexts
    feedback = LoggedFeedback(
        action=action,
        reward=reward,
        pscore=np.full(n, 1 / N_ACTIONS),
        n_actions=N_ACTIONS,
        position=position,
        context=context,
    )
    return feedback, truth


FAST = {"epochs": 15, "lr": 1e-2, "batch_size": 128}


def test_ranker_reward_model_has_obps_shape_and_drives_dm_and_dr() -> None:
    feedback, truth = _logs()
    features = np.arange(2 * N_ACTIONS, dtype=float).reshape(N_ACTIONS, 2)
    q = fit_ranker_reward_model(
        feedback, action_context=features, n_folds=3, seed=1, ranker_params=FAST
    )
    # obp's estimated_rewards_by_reg_model: one probability per (round, action, position)
    assert q.shape == (feedback.n_rounds, N_ACTIONS, LEN_LIST)
    assert q.dtype == np.float64
    assert np.isfinite(q).all() and (q > 0).all() and (q < 1).all()
    # it learned the reward: the best action scores highest at both positions
    mean = q.mean(axis=0)
    assert (mean[0] > mean[1:].max(axis=0)).all()
    # DM and DR run with it; a policy that always shows action 0 is worth ~ truth[0]
    dist = np.zeros((feedback.n_rounds, N_ACTIONS, LEN_LIST))
    dist[:, 0, :] = 1.0
    estimates = estimate_policy_value(feedback, dist, estimated_rewards=q, n_bootstrap=50, seed=0)
    value = truth[0][feedback.positions].mean()
    for name in ("dm", "dr"):
        assert np.isfinite(estimates[name].value)
        assert abs(estimates[name].value - value) < 0.15
        assert estimates[name].lower <= estimates[name].upper


def test_cross_fitting_uses_obps_folds_and_is_deterministic() -> None:
    folds = cross_fit_folds(50, 3, 12345)
    split = KFold(n_splits=3, shuffle=True, random_state=12345).split(np.zeros((50, 1)))
    for fold, (_, test) in enumerate(split):
        assert (folds[test] == fold).all()
    feedback, _ = _logs(n=200)
    first = fit_ranker_reward_model(feedback, folds=cross_fit_folds(200, 2, 0), seed=0)
    again = fit_ranker_reward_model(feedback, n_folds=2, seed=0)
    np.testing.assert_array_equal(first, again)
    # no context at all: every round shares one
    bare = LoggedFeedback(feedback.action, feedback.reward, feedback.pscore, N_ACTIONS)
    assert fit_ranker_reward_model(bare, n_folds=1).shape == (200, N_ACTIONS, 1)


@pytest.mark.parametrize(
    ("kwargs", "make", "message"),
    [
        ({}, lambda f: f.subset(np.arange(20)), None),
        (
            {},
            lambda f: LoggedFeedback(f.action, f.reward * 2, f.pscore, N_ACTIONS, f.position),
            r"needs 0/1 rewards",
        ),
        ({"folds": np.zeros(3, dtype=int)}, lambda f: f, r"folds must hold one"),
        ({"folds": np.full(600, -1)}, lambda f: f, r"folds must hold one"),
        ({"action_context": np.ones((3, 2))}, lambda f: f, r"action_context must be a finite"),
        ({"n_folds": 0}, lambda f: f, r"n_folds must be a positive"),
    ],
)
def test_bad_inputs(kwargs: dict[str, Any], make: Any, message: str | None) -> None:
    feedback = make(_logs()[0])
    if message is None:  # too few rows for the folds asked for
        with pytest.raises(ParetorecError, match=r"n_folds must be at most n_rounds"):
            fit_ranker_reward_model(feedback, n_folds=30)
        return
    with pytest.raises(ParetorecError, match=message):
        fit_ranker_reward_model(feedback, **kwargs)


@pytest.mark.slow
def test_obps_published_protocol_run_feeds_our_estimators(tmp_path: Path) -> None:
    """One run of obp's OBD protocol in obp's venv: same folds as ours, and our estimators
    with obp's reward-model output give obp's values."""
    folder = dataset_folder("open-bandit-dataset-small", "random/all/all.csv")
    if obp_python() is None:
        pytest.skip("obp 0.5.7 not installed (set PARETOREC_OBP_PYTHON; see PEERS.md)")
    theirs = run_obp_protocol(folder, "all", tmp_path, n_runs=1, n_sim=1_000)
    with np.load(theirs["runs"][0]) as arrays:
        run = {k: arrays[k] for k in arrays.files}
    feedback = LoggedFeedback(
        action=run["action"].astype(np.int64),
        reward=run["reward"],
        pscore=run["pscore"],
        n_actions=int(run["n_actions"]),
        position=run["position"],
        context=run["context"],
    )
    np.testing.assert_array_equal(
        cross_fit_folds(feedback.n_rounds, 3, PUBLISHED_PROTOCOL["seed"]), run["folds"]
    )
    dist = np.broadcast_to(theirs["action_dist"][None], (feedback.n_rounds, 80, 3))
    for ours, obp_name in (("ips", "ipw"), ("snips", "snipw"), ("dm", "dm"), ("dr", "dr")):
        value = round_rewards(ours, feedback, dist, run["q"]).mean()
        assert abs(value - theirs["values"][obp_name][0]) <= 1e-9
        error = abs(value - theirs["truth"]) / theirs["truth"]
        assert abs(error - theirs["relative_ee"][obp_name][0]) <= 1e-9
