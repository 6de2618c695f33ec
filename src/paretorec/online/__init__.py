"""Learning online: a bandit over operating points, off-policy evaluation, simulated A/B tests.

Sits above ``pareto`` (its arms are front points) and below ``serving``.
"""

from ._bandit import POLICIES, Choice, OperatingPointBandit
from ._context import SIGNALS, ContextSpec, RewardSpec
from ._incremental import score_new_items
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
from ._report import write_simulation_report
from ._reward import RANKER_REWARD_MODEL, cross_fit_folds, fit_ranker_reward_model
from ._simulation import demo_simulation, load_simulation_config, run_simulation

__all__ = [
    "ESTIMATORS",
    "POLICIES",
    "RANKER_REWARD_MODEL",
    "SIGNALS",
    "Choice",
    "ContextSpec",
    "Estimate",
    "LoggedFeedback",
    "OperatingPointBandit",
    "RewardSpec",
    "SupportWarning",
    "bootstrap_means",
    "cross_fit_folds",
    "demo_simulation",
    "effective_sample_size",
    "empirical_action_dist",
    "estimate_policy_value",
    "fit_ranker_reward_model",
    "fit_reward_model",
    "importance_weights",
    "load_open_bandit",
    "load_simulation_config",
    "obp_bandit_feedback",
    "obp_python",
    "round_rewards",
    "run_obp",
    "run_simulation",
    "score_new_items",
    "slate_independent_ips",
    "write_simulation_report",
]
