"""paretorec's multi-task ranker as the reward model of DM and DR.

A reward model for off-policy evaluation predicts ``q(x, a, k)``, the expected reward of
showing action ``a`` at position ``k`` in context ``x``, for every logged round and every
(action, position): an array ``(n_rounds, n_actions, len_list)`` (obp's
``estimated_rewards_by_reg_model``). Here the predictor is a
:class:`~paretorec.multitask.MultiTaskRanker` with one binary task (the click):

* each distinct context vector is a "user" whose context columns are dense user
  features (no user id: a context seen a handful of times has nothing to learn an
  embedding from);
* each action is an "item" with an id embedding and bias, plus the action's features
  (``action_context``) as dense item features when given;
* the position enters as one-hot dense row features.

Cross-fitting as obp's ``RegressionModel.fit_predict(n_folds=...)``: the rows of each
fold are predicted by a ranker fit on the other folds (``KFold(n_folds, shuffle=True,
random_state=seed)``, the same split obp draws for the same arguments), so DR's
correction term is never fit on the row it corrects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._validation import ParetorecError, check_positive_int
from ..data import ITEM, USER, Dataset
from ..multitask import FeatureSpec, MultiTaskRanker, TaskSpec
from ._ope import LoggedFeedback

#: Ranker settings of the reward model: a small one-task network trained a fixed number
#: of epochs (no held-out rows to stop on inside a cross-fitting fold). Chosen by the
#: cross-fitted click log-loss on the Open Bandit Dataset's uniform-random logs (3
#: campaigns; never the evaluated policy's logs) among (epochs, weight decay, lr) =
#: (1, 0, 1e-3), (2, 1e-2, 1e-3), (4, 1e-2, 1e-3), (3, 1e-1, 2e-3), (8, 1e-1, 1e-3):
#: log-loss .02529/.02955/.02949 (all/men/women) for the chosen one, worse the longer it
#: trains. Those logs hold ~40 clicks per 10,000 rows, and no setting beat the constant
#: click rate (.02497/.02935/.02935), so the ranker stays close to its base-rate start.
RANKER_REWARD_MODEL: dict[str, Any] = {
    "architecture": "shared_bottom",
    "architecture_params": {"bottom_units": [32]},
    "embedding_dim": 8,
    "tower_units": (16,),
    "dropout": 0.1,
    "epochs": 1,
    "batch_size": 512,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "patience": None,
    "device": "cpu",
    "progress": False,
    "num_threads": 1,
}


def cross_fit_folds(n_rounds: int, n_folds: int, seed: int | None) -> np.ndarray:
    """Fold id of each round: ``sklearn.model_selection.KFold(n_folds, shuffle=True,
    random_state=seed)``, the split obp's ``RegressionModel.fit_predict`` uses."""
    from sklearn.model_selection import KFold

    n_rounds = check_positive_int(n_rounds, "n_rounds")
    n_folds = check_positive_int(n_folds, "n_folds")
    folds = np.zeros(n_rounds, dtype=np.int64)
    if n_folds == 1:
        return folds
    if n_folds > n_rounds:
        raise ParetorecError(f"n_folds must be at most n_rounds ({n_rounds}), got {n_folds}")
    split = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, test) in enumerate(split.split(np.zeros((n_rounds, 1)))):
        folds[test] = fold
    return folds


def fit_ranker_reward_model(
    feedback: LoggedFeedback,
    *,
    action_context: np.ndarray | None = None,
    n_folds: int = 3,
    seed: int = 12345,
    folds: np.ndarray | None = None,
    ranker_params: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Cross-fitted click probabilities of a multi-task ranker: (n_rounds, n_actions, len_list).

    Args:
        feedback: logged rounds with 0/1 rewards; ``feedback.context`` (numeric, one row per
            round) is the context (none: every round shares one context).
        action_context: optional (n_actions, d) numeric features of the actions.
        n_folds, seed: the cross-fitting split (:func:`cross_fit_folds`); ``n_folds=1``
            fits on every row and predicts every row.
        folds: an explicit fold id per round instead (e.g. another reward model's split).
        ranker_params: overrides of :data:`RANKER_REWARD_MODEL` (``seed`` defaults to
            ``seed``).
    """
    n, n_actions, len_list = feedback.n_rounds, feedback.n_actions, feedback.len_list
    if not np.isin(feedback.reward, (0.0, 1.0)).all():
        raise ParetorecError("fit_ranker_reward_model needs 0/1 rewards (clicks)")
    if folds is None:
        folds = cross_fit_folds(n, n_folds, seed)
    else:
        folds = np.asarray(folds)
        if folds.shape != (n,) or not np.issubdtype(folds.dtype, np.integer) or folds.min() < 0:
            raise ParetorecError(
                f"folds must hold one non-negative int fold id per round ({n},), "
                f"got {folds.dtype} shape {folds.shape}"
            )
    context = np.zeros((n, 0)) if feedback.context is None else np.asarray(feedback.context, float)
    if context.ndim != 2 or len(context) != n or not np.isfinite(context).all():
        raise ParetorecError(
            f"feedback.context must be a finite (n_rounds, d) matrix, got shape {context.shape}"
        )
    unique, user = np.unique(context, axis=0, return_inverse=True)
    user = user.reshape(-1).astype(np.int64)
    users = pd.DataFrame(unique, columns=[f"context_{j}" for j in range(unique.shape[1])])
    users.insert(0, "user_id", np.arange(len(unique)))
    items = pd.DataFrame({"item_id": np.arange(n_actions)})
    item_dense: list[str] = []
    if action_context is not None:
        features = np.asarray(action_context, dtype=np.float64)
        if features.ndim != 2 or len(features) != n_actions or not np.isfinite(features).all():
            raise ParetorecError(
                f"action_context must be a finite ({n_actions}, d) matrix, got shape "
                f"{features.shape}"
            )
        item_dense = [f"action_{j}" for j in range(features.shape[1])]
        for j, column in enumerate(item_dense):
            items[column] = features[:, j]
    dataset = Dataset(
        name="logged-feedback",
        interactions=pd.DataFrame({USER: user.astype(np.int32), ITEM: feedback.action}),
        user_ids=np.arange(len(unique)),
        item_ids=np.arange(n_actions),
        items=items,
        users=users,
    )
    position_columns = [f"position_{k}" for k in range(1, len_list)]
    spec = FeatureSpec(
        user_id=False,
        item_id=True,
        user_dense=tuple(c for c in users.columns if c != "user_id"),
        item_dense=tuple(item_dense),
        row_dense=tuple(position_columns),
    )
    params = {**RANKER_REWARD_MODEL, "seed": seed, **dict(ranker_params or {})}

    def rows(users_: np.ndarray, actions: np.ndarray, positions: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame({USER: users_, ITEM: actions})
        for k, column in enumerate(position_columns, start=1):
            frame[column] = (positions == k).astype(np.float32)
        return frame

    # every (context, action, position) once: q depends on the round only through them
    grid_u, grid_a, grid_k = (
        g.reshape(-1)
        for g in np.meshgrid(
            np.arange(len(unique)), np.arange(n_actions), np.arange(len_list), indexing="ij"
        )
    )
    grid = rows(grid_u, grid_a, grid_k)
    q = np.empty((n, n_actions, len_list))
    for fold in np.unique(folds):
        test = np.flatnonzero(folds == fold)
        train = np.flatnonzero(folds != fold) if len(np.unique(folds)) > 1 else test
        labels = feedback.reward[train]
        if labels.min() == labels.max():  # one class only: its rate is all there is
            q[test] = labels.mean()
            continue
        frame = rows(user[train], feedback.action[train], feedback.positions[train])
        frame["click"] = labels.astype(np.float32)
        ranker = MultiTaskRanker(tasks=[TaskSpec("click")], features=spec, **params)
        ranker.fit(frame, dataset=dataset)
        table = ranker.predict(grid)["click"].astype(np.float64)
        table = table.reshape(len(unique), n_actions, len_list)
        q[test] = table[user[test]]
    return q
