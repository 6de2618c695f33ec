"""Learning online: a bandit over operating points, off-policy evaluation, simulated A/B tests.

Sits above ``pareto`` (its arms are front points) and below ``serving``.
"""

from ._bandit import POLICIES, Choice, OperatingPointBandit
from ._context import SIGNALS, ContextSpec, RewardSpec
from ._obd import (
    empirical_action_dist,
    load_open_bandit,
    obp_bandit_feedback,
    obp_python,
    run_obp,
)
from ._ope import (
    ESTIMATORS,
    Estimate,
    LoggedFeedback,
    SupportWarning,
    bootstrap_means,
    effective_sample_size,
    estimate_policy_value,
    fit_reward_model,
    importance_weights,
    round_rewards,
    slate_independent_ips,
)

__all__ = [
    "ESTIMATORS",
    "POLICIES",
    "SIGNALS",
    "Choice",
    "ContextSpec",
    "Estimate",
    "LoggedFeedback",
    "OperatingPointBandit",
    "RewardSpec",
    "SupportWarning",
    "bootstrap_means",
    "effective_sample_size",
    "empirical_action_dist",
    "estimate_policy_value",
    "fit_reward_model",
    "importance_weights",
    "load_open_bandit",
    "obp_bandit_feedback",
    "obp_python",
    "round_rewards",
    "run_obp",
    "slate_independent_ips",
]
