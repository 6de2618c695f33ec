"""Off-policy evaluation: IPS, SNIPS, DM, DR and a slate (independent-item) IPS.

Inputs follow the Open Bandit Pipeline's layout so results can be compared one to one:
logged ``action``, ``reward``, ``pscore`` (the logging policy's probability of the logged
action), optional ``position`` (slot in the list), and for the evaluated policy an
``action_dist`` of shape ``(n_rounds, n_actions, len_list)``; DM and DR also take
``estimated_rewards`` of the same shape from a reward model.

Per-round values (their mean is the estimate), as in obp 0.5.7 ``ope/estimators.py``:

* IPS: ``w_i r_i`` with ``w_i = pi_e(a_i | x_i, k_i) / pscore_i``;
* SNIPS: ``w_i r_i / mean(w)``;
* DM: ``sum_a pi_e(a | x_i, k_i) q(x_i, a, k_i) / sum_a pi_e(a | x_i, k_i)``;
* DR: DM + ``w_i (r_i - q(x_i, a_i, k_i))``.

Confidence intervals are percentile bootstraps of the mean of the per-round values with
obp's resampling stream (``RandomState(seed).choice`` per replicate, drawn here in
vectorised blocks, same indices), except SNIPS, whose weights are renormalised inside
each replicate (a ratio estimator; obp keeps the full-sample mean of the weights).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import ParetorecError, ParetorecWarning, check_positive_int

ESTIMATORS = ("ips", "snips", "dm", "dr")
#: Rounds x replicates drawn per block of the bootstrap (bounds memory at ~80 MB).
_BOOTSTRAP_CELLS = 10_000_000


class SupportWarning(ParetorecWarning):
    """The evaluated policy puts weight on actions the logging policy never took."""


@dataclass(frozen=True)
class LoggedFeedback:
    """Logged bandit feedback (one row per shown action)."""

    action: np.ndarray
    reward: np.ndarray
    pscore: np.ndarray
    n_actions: int
    position: np.ndarray | None = None
    context: np.ndarray | None = None
    action_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        action = np.asarray(self.action)
        if action.ndim != 1 or (action.size and not np.issubdtype(action.dtype, np.integer)):
            raise ParetorecError(
                f"action must be a 1-D integer array, got {action.dtype} shape {action.shape}"
            )
        n = len(action)
        n_actions = check_positive_int(self.n_actions, "n_actions")
        if n and (action.min() < 0 or action.max() >= n_actions):
            raise ParetorecError(f"action holds codes outside 0..{n_actions - 1}")
        reward = np.asarray(self.reward, dtype=np.float64)
        pscore = np.asarray(self.pscore, dtype=np.float64)
        for name, values in (("reward", reward), ("pscore", pscore)):
            if values.shape != (n,):
                raise ParetorecError(
                    f"{name} must have shape ({n},) like action, got {values.shape}"
                )
        if not np.isfinite(reward).all():
            raise ParetorecError("reward must be finite")
        if not ((pscore > 0) & (pscore <= 1)).all():
            bad = pscore[~((pscore > 0) & (pscore <= 1))][0]
            raise ParetorecError(
                f"pscore must be in (0, 1] (the logging policy's probability "
                f"of the logged action), got {bad!r}"
            )
        position = None
        if self.position is not None:
            position = np.asarray(self.position).astype(np.int64)
            if position.shape != (n,) or (n and position.min() < 0):
                raise ParetorecError(f"position must be ({n},) non-negative ints")
        object.__setattr__(self, "action", action.astype(np.int64))
        object.__setattr__(self, "reward", reward)
        object.__setattr__(self, "pscore", pscore)
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "n_actions", n_actions)

    @property
    def n_rounds(self) -> int:
        return len(self.action)

    @property
    def len_list(self) -> int:
        return (
            1 if self.position is None or not len(self.position) else int(self.position.max() + 1)
        )

    @property
    def positions(self) -> np.ndarray:
        if self.position is None:
            return np.zeros(self.n_rounds, dtype=np.int64)
        return self.position

    def subset(self, rows: np.ndarray) -> LoggedFeedback:
        return LoggedFeedback(
            action=self.action[rows],
            reward=self.reward[rows],
            pscore=self.pscore[rows],
            n_actions=self.n_actions,
            position=None if self.position is None else self.position[rows],
            context=None if self.context is None else self.context[rows],
            action_names=self.action_names,
        )


@dataclass(frozen=True)
class Estimate:
    """A policy value estimate with its bootstrap interval."""

    estimator: str
    value: float
    lower: float
    upper: float
    alpha: float
    n_rounds: int
    effective_sample_size: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "confidence": 1 - self.alpha,
            "n_rounds": self.n_rounds,
            "effective_sample_size": self.effective_sample_size,
        }


# --------------------------------------------------------------------------- per-round values
def importance_weights(feedback: LoggedFeedback, action_dist: np.ndarray) -> np.ndarray:
    """``pi_e(a_i | x_i, k_i) / pscore_i`` per logged round."""
    dist = check_action_dist(action_dist, feedback)
    rows = np.arange(feedback.n_rounds)
    return dist[rows, feedback.action, feedback.positions] / feedback.pscore


def round_rewards(
    estimator: str,
    feedback: LoggedFeedback,
    action_dist: np.ndarray,
    estimated_rewards: np.ndarray | None = None,
) -> np.ndarray:
    """Per-round values of ``estimator`` (their mean is the estimate)."""
    if estimator not in ESTIMATORS:
        raise ParetorecError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    dist = check_action_dist(action_dist, feedback)
    rows = np.arange(feedback.n_rounds)
    positions = feedback.positions
    if estimator in ("ips", "snips", "dr"):
        weights = dist[rows, feedback.action, positions] / feedback.pscore
    if estimator == "ips":
        return feedback.reward * weights
    if estimator == "snips":
        # no weight on any logged action: nothing to normalise, the estimate is 0
        mean = weights.mean()
        return feedback.reward * weights / mean if mean > 0 else np.zeros_like(weights)
    if estimated_rewards is None:
        raise ParetorecError(
            f"estimator {estimator!r} needs estimated_rewards from a reward "
            f"model (shape {dist.shape})"
        )
    q = np.asarray(estimated_rewards, dtype=np.float64)
    if q.shape != dist.shape:
        raise ParetorecError(
            f"estimated_rewards must have shape {dist.shape} like action_dist, got {q.shape}"
        )
    pi = dist[rows, :, positions]
    q_at = q[rows, :, positions]
    direct = (pi * q_at).sum(axis=1) / pi.sum(axis=1)
    if estimator == "dm":
        return direct
    return direct + weights * (feedback.reward - q[rows, feedback.action, positions])


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of importance weights."""
    total = float(np.sum(weights))
    squares = float(np.sum(np.square(weights)))
    return total * total / squares if squares > 0 else 0.0


def bootstrap_means(samples: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """Means of ``n_bootstrap`` resamples, with obp's index stream (RandomState.choice)."""
    n = len(samples)
    rng = np.random.RandomState(seed)
    block = max(1, _BOOTSTRAP_CELLS // max(n, 1))
    out = np.empty(n_bootstrap)
    for start in range(0, n_bootstrap, block):
        stop = min(start + block, n_bootstrap)
        # choice(samples, size=n) draws randint(0, n, size=n): one block draws the same
        # stream as a loop of single draws
        index = rng.randint(0, n, size=(stop - start, n))
        out[start:stop] = samples[index].mean(axis=1)
    return out


def _bootstrap_ratio(
    numerator: np.ndarray, denominator: np.ndarray, n_bootstrap: int, seed: int
) -> np.ndarray:
    n = len(numerator)
    rng = np.random.RandomState(seed)
    block = max(1, _BOOTSTRAP_CELLS // max(n, 1))
    out = np.empty(n_bootstrap)
    for start in range(0, n_bootstrap, block):
        stop = min(start + block, n_bootstrap)
        index = rng.randint(0, n, size=(stop - start, n))
        den = denominator[index].mean(axis=1)
        out[start:stop] = np.divide(
            numerator[index].mean(axis=1), den, out=np.zeros(stop - start), where=den > 0
        )
    return out


def estimate_policy_value(
    feedback: LoggedFeedback,
    action_dist: np.ndarray,
    *,
    estimated_rewards: np.ndarray | None = None,
    estimators: Sequence[str] = ESTIMATORS,
    alpha: float = 0.05,
    n_bootstrap: int = 2_000,
    seed: int = 12345,
    behavior_dist: np.ndarray | None = None,
) -> dict[str, Estimate]:
    """Estimate the value of the policy ``action_dist`` from ``feedback``.

    Warns with :class:`SupportWarning` when the evaluated policy puts weight on
    (action, position) pairs the logs never hold (with ``behavior_dist``, the logging
    policy's full distribution, the check is exact: weight where it is 0).
    """
    if not 0 < alpha < 1:
        raise ParetorecError(f"alpha must be in (0, 1), got {alpha!r}")
    n_bootstrap = check_positive_int(n_bootstrap, "n_bootstrap")
    if feedback.n_rounds == 0:
        raise ParetorecError("feedback has no logged rounds to evaluate on")
    dist = check_action_dist(action_dist, feedback)
    check_support(feedback, dist, behavior_dist)
    weights = importance_weights(feedback, dist)
    ess = effective_sample_size(weights)
    out = {}
    for name in estimators:
        if name in ("dm", "dr") and estimated_rewards is None:
            continue
        values = round_rewards(name, feedback, dist, estimated_rewards)
        if name == "snips":
            replicates = _bootstrap_ratio(feedback.reward * weights, weights, n_bootstrap, seed)
        else:
            replicates = bootstrap_means(values, n_bootstrap, seed)
        lower, upper = np.percentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        out[name] = Estimate(
            name,
            float(values.mean()),
            float(lower),
            float(upper),
            alpha,
            feedback.n_rounds,
            ess if name != "dm" else float(feedback.n_rounds),
        )
    return out


def check_action_dist(action_dist: Any, feedback: LoggedFeedback) -> np.ndarray:
    dist = np.asarray(action_dist, dtype=np.float64)
    if dist.ndim == 2:
        dist = dist[:, :, None]
    expected = (feedback.n_rounds, feedback.n_actions)
    if dist.ndim != 3 or dist.shape[:2] != expected or dist.shape[2] < feedback.len_list:
        raise ParetorecError(
            f"action_dist must have shape (n_rounds, n_actions, len_list) = "
            f"({expected[0]}, {expected[1]}, {feedback.len_list}), got {dist.shape}"
        )
    if (dist < 0).any() or not np.isfinite(dist).all():
        raise ParetorecError("action_dist must hold probabilities (finite, >= 0)")
    sums = dist.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-6):
        raise ParetorecError(
            f"action_dist must sum to 1 over actions for every round and position; found a "
            f"sum of {float(sums.flat[np.argmax(np.abs(sums - 1).ravel())]):.6g}"
        )
    return dist


def check_support(
    feedback: LoggedFeedback,
    dist: np.ndarray,
    behavior_dist: np.ndarray | None = None,
    *,
    tolerance: float = 1e-9,
) -> float:
    """Share of the evaluated policy's mass where the logs have no support; warns if > 0."""
    if behavior_dist is not None:
        behaviour = check_action_dist(behavior_dist, feedback)
        unsupported = float(
            (dist * (behaviour <= 0))[:, :, : feedback.len_list].sum()
            / (feedback.n_rounds * feedback.len_list)
        )
        where = "where the logging policy's probability is 0"
    else:
        logged = np.zeros((feedback.n_actions, dist.shape[2]), dtype=bool)
        logged[feedback.action, feedback.positions] = True
        mass = dist[:, :, : feedback.len_list].mean(axis=0)
        unsupported = float((mass * ~logged[:, : feedback.len_list]).sum() / feedback.len_list)
        where = "on (action, position) pairs the logs never show"
    if unsupported > tolerance:
        warnings.warn(
            f"the evaluated policy puts {unsupported:.1%} of its weight {where}; importance "
            f"weighting cannot see those rewards (IPS/SNIPS are biased there, DM/DR rely on "
            f"the reward model)",
            SupportWarning,
            stacklevel=3,
        )
    return unsupported


def slate_independent_ips(
    slate_id: np.ndarray,
    reward: np.ndarray,
    pscore_item_position: np.ndarray,
    evaluation_pscore_item_position: np.ndarray,
) -> np.ndarray:
    """Independent-item IPS for lists (Li et al., 2018): per-slate values.

    The value of a slate is ``sum_k r_k pi_e(a_k at k) / pi_b(a_k at k)``: unbiased when
    each slot's reward depends only on the item in that slot. One row per (slate, slot);
    the mean of the returned per-slate values is the estimate (as obp's
    ``SlateIndependentIPS``).
    """
    slate_id = np.asarray(slate_id)
    reward = np.asarray(reward, dtype=np.float64)
    behaviour = np.asarray(pscore_item_position, dtype=np.float64)
    evaluation = np.asarray(evaluation_pscore_item_position, dtype=np.float64)
    if not slate_id.shape == reward.shape == behaviour.shape == evaluation.shape:
        raise ParetorecError("slate_id, reward and both pscores must have the same shape")
    if (behaviour <= 0).any():
        raise ParetorecError("pscore_item_position must be > 0")
    _, inverse = np.unique(slate_id, return_inverse=True)
    return np.bincount(inverse, weights=reward * evaluation / behaviour)


def fit_reward_model(
    feedback: LoggedFeedback,
    *,
    n_folds: int = 3,
    seed: int = 0,
    regularization: float = 1.0,
    per_action: bool = False,
) -> np.ndarray:
    """Cross-fitted logistic-regression reward model: (n_rounds, n_actions, len_list).

    Features: the round's context, a one-hot of the action and of the position. Each
    fold's rows are predicted by a model fit on the other folds (as obp's
    ``RegressionModel.fit_predict`` does), so DR's correction term is not fit on itself.
    Rewards must be 0/1 (clicks); a fold without both classes predicts its base rate.
    With ``per_action`` the context enters once per action (context x action one-hot),
    so each action gets its own linear model of the context (needed when the best action
    depends on the context, as in the segment simulator).
    """
    from sklearn.linear_model import LogisticRegression

    n, n_actions, len_list = feedback.n_rounds, feedback.n_actions, feedback.len_list
    context = (
        np.zeros((n, 0))
        if feedback.context is None
        else np.asarray(feedback.context, dtype=np.float64)
    )
    if not np.isin(feedback.reward, (0.0, 1.0)).all():
        raise ParetorecError("fit_reward_model needs 0/1 rewards (clicks)")

    width = context.shape[1]
    blocks = n_actions if per_action else 1

    def design(rows: np.ndarray, actions: np.ndarray, positions: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), width * blocks + n_actions + len_list))
        index = np.arange(len(rows))
        if per_action:
            columns = actions[:, None] * width + np.arange(width)[None, :]
            out[index[:, None], columns] = context[rows]
        else:
            out[:, :width] = context[rows]
        out[index, width * blocks + actions] = 1.0
        out[index, width * blocks + n_actions + positions] = 1.0
        return out

    folds = np.random.default_rng(seed).permutation(n) % max(n_folds, 1)
    q = np.empty((n, n_actions, len_list))
    for fold in range(max(n_folds, 1)):
        test = np.flatnonzero(folds == fold) if n_folds > 1 else np.arange(n)
        train = np.flatnonzero(folds != fold) if n_folds > 1 else np.arange(n)
        labels = feedback.reward[train]
        if labels.min() == labels.max():
            q[test] = labels.mean()
            continue
        model = LogisticRegression(C=regularization, max_iter=1000)
        model.fit(design(train, feedback.action[train], feedback.positions[train]), labels)
        # the model is linear in the one-hots: score every (action, position) at once
        coef = model.coef_[0]
        if per_action:
            weights = coef[: width * n_actions].reshape(n_actions, width)
            base = context[test] @ weights.T + model.intercept_[0]  # (n, A)
        else:
            base = np.repeat((context[test] @ coef[:width])[:, None], n_actions, axis=1)
            base += model.intercept_[0]
        offset = width * blocks
        logits = (
            base[:, :, None]
            + coef[offset : offset + n_actions][None, :, None]
            + coef[offset + n_actions :][None, None, :]
        )
        q[test] = 1.0 / (1.0 + np.exp(-logits))
    return q
