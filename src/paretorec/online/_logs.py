"""Logged feedback from any table (CSV / Parquet) or the Open Bandit Dataset, and a policy spec."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import ParetorecError, check_choice
from ._obd import CAMPAIGNS, empirical_action_dist, load_open_bandit
from ._ope import Estimate, LoggedFeedback, estimate_policy_value, fit_reward_model

#: Reward models of DM / DR in :func:`evaluate_logs` (``paretorec ope --reward-model``).
REWARD_MODELS = ("logistic", "ranker")


def feedback_from_table(
    path: str | Path,
    *,
    action_col: str = "point",
    reward_col: str = "reward",
    pscore_col: str = "propensity",
    position_col: str | None = None,
    context_cols: Sequence[str] = (),
) -> LoggedFeedback:
    """Logged feedback from a table with one row per served decision.

    ``action_col`` holds the served operating point (any names; they become codes in
    sorted order), ``pscore_col`` the probability the logging policy chose it (the
    service logs it with every ``"point": "auto"`` decision). Numeric ``context_cols``
    feed the DM / DR reward model.
    """
    import pandas as pd

    from .._validation import check_file

    source = check_file(path, "logs")
    frame = (
        pd.read_parquet(source)
        if source.suffix in (".parquet", ".pq")
        else pd.read_csv(source, sep="\t" if source.suffix == ".tsv" else ",")
    )
    missing = [
        c
        for c in (action_col, reward_col, pscore_col, position_col, *context_cols)
        if c is not None and c not in frame.columns
    ]
    if missing:
        raise ParetorecError(
            f"logs {path}: missing column(s) {missing}; the table has {list(frame.columns)}"
        )
    names = sorted(str(a) for a in frame[action_col].astype(str).unique())
    codes = {name: code for code, name in enumerate(names)}
    context = frame[list(context_cols)].to_numpy(dtype=np.float64) if context_cols else None
    return LoggedFeedback(
        action=frame[action_col].astype(str).map(codes).to_numpy(dtype=np.int64),
        reward=frame[reward_col].to_numpy(dtype=np.float64),
        pscore=frame[pscore_col].to_numpy(dtype=np.float64),
        n_actions=len(names),
        position=None if position_col is None else frame[position_col].to_numpy(np.int64),
        context=context,
        action_names=tuple(names),
    )


def policy_distribution(policy: str, feedback: LoggedFeedback) -> np.ndarray:
    """``(n_rounds, n_actions, len_list)`` action distribution from a policy spec.

    ``POINT`` always serves that point; ``"a=0.7,b=0.3"`` serves a mixture; ``uniform``
    every point equally.
    """
    names = list(feedback.action_names or [str(a) for a in range(feedback.n_actions)])
    probabilities = np.zeros(feedback.n_actions)
    if policy == "uniform":
        probabilities[:] = 1 / feedback.n_actions
    else:
        for part in policy.split(","):
            name, _, weight = part.strip().partition("=")
            if name not in names:
                raise ParetorecError(
                    f"policy: unknown point {name!r}; the logs hold {', '.join(names)}"
                )
            try:
                value = float(weight) if weight else 1.0
            except ValueError:
                raise ParetorecError(
                    f"policy: weight of {name!r} must be a number, got {weight!r}"
                ) from None
            if not value >= 0:
                raise ParetorecError(f"policy: weight of {name!r} must be >= 0, got {value}")
            probabilities[names.index(name)] += value
        if probabilities.sum() <= 0:
            raise ParetorecError(f"policy: weights must not all be 0, got {policy!r}")
        probabilities /= probabilities.sum()
    shape = (feedback.n_rounds, feedback.n_actions, feedback.len_list)
    return np.broadcast_to(probabilities[None, :, None], shape).copy()


def evaluate_logs(
    logs: str | Path,
    policy: str,
    *,
    campaign: str = "all",
    n_bootstrap: int = 2_000,
    seed: int = 12345,
    alpha: float = 0.05,
    table_options: dict[str, Any] | None = None,
    reward_model: str = "logistic",
) -> tuple[dict[str, Estimate], dict[str, Any]]:
    """Estimate ``policy`` from ``logs``: a table, or an Open Bandit Dataset folder.

    For the Open Bandit Dataset (a folder with ``random/`` and ``bts/``), the random logs
    are evaluated and ``policy`` may be ``bts`` (the Bernoulli TS policy's distribution,
    from its own logs) or an item id / mixture; ``info["observed"]`` is then the BTS
    logs' click rate. ``reward_model`` (DM / DR): ``"logistic"``
    (:func:`fit_reward_model`) or ``"ranker"`` (paretorec's multi-task ranker,
    :func:`~paretorec.online.fit_ranker_reward_model`); both cross-fitted on 3 folds.
    """
    reward_model = check_choice(reward_model, "reward_model", REWARD_MODELS)
    path = Path(logs)
    info: dict[str, Any] = {}
    if path.is_dir() and (path / "random").is_dir():
        if campaign not in CAMPAIGNS:
            raise ParetorecError(
                f"campaign must be one of {', '.join(CAMPAIGNS)}; got {campaign!r}"
            )
        feedback = load_open_bandit(path, "random", campaign)
        if policy == "bts":
            bts = load_open_bandit(path, "bts", campaign)
            dist = np.tile(empirical_action_dist(bts)[None], (feedback.n_rounds, 1, 1))
            info["observed"] = float(bts.reward.mean())
        else:
            dist = policy_distribution(policy, feedback)
        info["source"] = f"open bandit dataset, random logs, campaign {campaign}"
    else:
        feedback = feedback_from_table(path, **(table_options or {}))
        dist = policy_distribution(policy, feedback)
        info["source"] = str(path)
    q = None
    if np.isin(feedback.reward, (0.0, 1.0)).all():
        if reward_model == "ranker":
            from ._reward import fit_ranker_reward_model

            q = fit_ranker_reward_model(feedback, seed=seed)
        else:
            q = fit_reward_model(feedback, seed=seed)
        info["reward_model"] = reward_model
    else:
        info["note"] = "rewards are not 0/1: DM and DR skipped (no reward model)"
    estimates = estimate_policy_value(
        feedback, dist, estimated_rewards=q, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha
    )
    info["n_rounds"] = feedback.n_rounds
    info["logged_mean_reward"] = float(feedback.reward.mean())
    return estimates, info
