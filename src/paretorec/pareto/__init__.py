"""Pareto search: objectives, NSGA-II policy search, fronts, hypervolume, point picking."""

from ._front import (
    DIRECTIONS,
    Normalization,
    ParetoFront,
    epsilon_constraint_pick,
    hypervolume,
    knee_point,
    non_dominated_mask,
    non_dominated_sort,
    normalize,
    preference_pick,
)
from ._objectives import OBJECTIVES, PolicyEvaluator, objective_direction
from ._pipeline import ParetoRun, print_front, run_pareto, summarize
from ._search import (
    Constraint,
    HoldoutCheck,
    SearchResult,
    SearchSpace,
    holdout_check,
    run_search,
)

__all__ = [
    "DIRECTIONS",
    "OBJECTIVES",
    "Constraint",
    "HoldoutCheck",
    "Normalization",
    "ParetoFront",
    "ParetoRun",
    "PolicyEvaluator",
    "SearchResult",
    "SearchSpace",
    "epsilon_constraint_pick",
    "holdout_check",
    "hypervolume",
    "knee_point",
    "non_dominated_mask",
    "non_dominated_sort",
    "normalize",
    "objective_direction",
    "preference_pick",
    "print_front",
    "run_pareto",
    "run_search",
    "summarize",
]
