"""Tune a candidate model's main hyper-parameter on validation (Optuna, small budget)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._validation import ParetorecError, check_positive_int
from ..data import Dataset
from ..models import create_model, get_model_class
from ._evaluator import evaluate_ranking

#: model -> (parameter, low, high, kind): the one setting that matters most, searched on a
#: log scale ("log": float, "int": integer).
MAIN_PARAMETERS: dict[str, tuple[str, float, float, str]] = {
    "ease": ("regularization", 1.0, 5000.0, "log"),
    "itemknn": ("neighbors", 5, 1000, "int"),
    "bpr": ("regularization", 1e-4, 0.1, "log"),
    "sequential": ("dropout", 0.0, 0.6, "float"),
}


@dataclass(frozen=True)
class TuningResult:
    """The chosen value and what each trial scored on validation."""

    parameter: str | None
    value: Any
    score: float | None
    trials: list[tuple[Any, float]]

    def describe(self, model: str, metric: str) -> str:
        if self.parameter is None:
            return f"{model}: nothing to tune"
        shown = f"{self.value:.4g}" if isinstance(self.value, float) else str(self.value)
        return (
            f"{model}: {self.parameter} = {shown} (validation {metric} {self.score:.4f}, "
            f"best of {len(self.trials)} trials)"
        )


def tune_main_parameter(
    model: str,
    train: Dataset,
    valid: Dataset,
    *,
    k: int = 10,
    n_trials: int = 12,
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> TuningResult:
    """Search ``MAIN_PARAMETERS[model]`` for the best validation nDCG@k (TPE sampler).

    Models fitted on ``train``, scored on ``valid``; models without a main parameter
    (random, popularity) return ``parameter=None``. ``params`` are fixed settings.
    """
    get_model_class(model)  # a clear error for unknown names
    n_trials = check_positive_int(n_trials, "n_trials")
    if model not in MAIN_PARAMETERS:
        return TuningResult(None, None, None, [])
    if valid.n_interactions == 0:
        raise ParetorecError("valid has no interactions to tune on")
    import optuna

    name, low, high, kind = MAIN_PARAMETERS[model]
    fixed = dict(params or {})
    metric = f"ndcg@{k}"
    trials: list[tuple[Any, float]] = []

    def objective(trial: optuna.Trial) -> float:
        if kind == "int":
            value: Any = trial.suggest_int(name, int(low), int(high), log=True)
        else:
            value = trial.suggest_float(name, low, high, log=kind == "log")
        fitted = create_model(model, **{**fixed, name: value}).fit(train)
        score = float(evaluate_ranking(fitted, valid, k=k, beyond_accuracy=False)[metric])
        trials.append((value, score))
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    return TuningResult(name, study.best_params[name], float(study.best_value), trials)
