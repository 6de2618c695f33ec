"""What a bandit sees and what it is paid: context encoding and the reward combination."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import ParetorecError

#: Feedback signals and list properties a reward can combine.
SIGNALS = ("click", "like", "purchase", "rating", "diversity", "novelty")


@dataclass(frozen=True)
class ContextSpec:
    """How a request context (a dict) becomes the bandit's feature vector.

    The vector is ``[1, one-hot of each categorical field, f(numeric fields)]`` where
    ``f(x) = sign(x) log(1 + |x|)`` tames counts and durations (activity level, tenure
    in days) and leaves small user features nearly unchanged. A categorical value not
    listed in ``categorical`` (or missing) encodes as all zeros; a missing numeric
    field as 0. With no fields the bandit is context-free (intercept only).

    Args:
        categorical: field name -> its levels, e.g. ``{"segment": ("a", "b", "c")}``.
        numeric: numeric field names, e.g. ``("activity", "tenure_days")``.
    """

    categorical: Mapping[str, Sequence[str]] = field(default_factory=dict)
    numeric: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.categorical, Mapping):
            raise ParetorecError(
                f"categorical must map field names to lists of levels, got "
                f"{type(self.categorical).__name__}"
            )
        levels: dict[str, tuple[str, ...]] = {}
        for name, values in self.categorical.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ParetorecError(
                    f"categorical[{name!r}] must be a non-empty list of levels, got {values!r}"
                )
            levels[str(name)] = tuple(str(v) for v in values)
        if isinstance(self.numeric, str):
            raise ParetorecError(f"numeric must be a list of field names, got {self.numeric!r}")
        object.__setattr__(self, "categorical", levels)
        object.__setattr__(self, "numeric", tuple(str(n) for n in self.numeric))

    @property
    def dimension(self) -> int:
        return 1 + sum(len(v) for v in self.categorical.values()) + len(self.numeric)

    def encode(self, contexts: Sequence[Mapping[str, Any] | None]) -> np.ndarray:
        """Float64 feature matrix (len(contexts), dimension)."""
        out = np.zeros((len(contexts), self.dimension), dtype=np.float64)
        out[:, 0] = 1.0
        for row, context in enumerate(contexts):
            if context is None:
                continue
            if not isinstance(context, Mapping):
                raise ParetorecError(
                    f"context must be a dict of fields (or None), got {type(context).__name__}"
                )
            column = 1
            for name, levels in self.categorical.items():
                value = context.get(name)
                if value is not None and str(value) in levels:
                    out[row, column + levels.index(str(value))] = 1.0
                column += len(levels)
            for name in self.numeric:
                value = context.get(name, 0.0)
                if value is None:
                    value = 0.0
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise ParetorecError(
                        f"context[{name!r}] must be a number, got {value!r} "
                        f"({type(value).__name__})"
                    )
                number = float(value)
                if not math.isfinite(number):
                    raise ParetorecError(f"context[{name!r}] must be finite, got {value!r}")
                out[row, column] = math.copysign(math.log1p(abs(number)), number)
                column += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "categorical": {k: list(v) for k, v in self.categorical.items()},
            "numeric": list(self.numeric),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContextSpec:
        return cls(categorical=data.get("categorical", {}), numeric=data.get("numeric", ()))


@dataclass(frozen=True)
class RewardSpec:
    """Reward = a weighted sum of feedback signals and list properties.

    ``weights`` maps names from :data:`SIGNALS` to weights; a signal absent from an event
    counts 0. ``rating`` is rescaled from ``rating_range`` to [0, 1] first, so every term
    is on a 0-1 scale. Example: ``RewardSpec({"click": 1.0, "purchase": 3.0,
    "diversity": 0.2})``.
    """

    weights: Mapping[str, float] = field(default_factory=lambda: {"click": 1.0})
    rating_range: tuple[float, float] = (1.0, 5.0)

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Mapping) or not self.weights:
            raise ParetorecError(
                f"weights must be a non-empty dict of signal -> weight, got {self.weights!r}"
            )
        clean: dict[str, float] = {}
        for name, weight in self.weights.items():
            if name not in SIGNALS:
                raise ParetorecError(
                    f"weights: unknown signal {name!r}; expected one of {', '.join(SIGNALS)}"
                )
            if (
                isinstance(weight, bool)
                or not isinstance(weight, numbers.Real)
                or not (math.isfinite(float(weight)))
            ):
                raise ParetorecError(f"weights[{name!r}] must be a finite number, got {weight!r}")
            clean[name] = float(weight)
        low, high = (float(v) for v in self.rating_range)
        if not low < high:
            raise ParetorecError(
                f"rating_range must be (low, high) with low < high, got {self.rating_range!r}"
            )
        object.__setattr__(self, "weights", clean)
        object.__setattr__(self, "rating_range", (low, high))

    def __call__(self, signals: Mapping[str, Any]) -> float:
        """The reward of one event given its signals (a dict)."""
        if not isinstance(signals, Mapping):
            raise ParetorecError(f"signals must be a dict, got {type(signals).__name__}")
        total = 0.0
        for name, weight in self.weights.items():
            value = signals.get(name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = float(value)
            if not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
                raise ParetorecError(f"signals[{name!r}] must be a finite number, got {value!r}")
            number = float(value)
            if name == "rating":
                low, high = self.rating_range
                number = (number - low) / (high - low)
            total += weight * number
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "rating_range": list(self.rating_range)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RewardSpec:
        return cls(weights=data["weights"], rating_range=tuple(data.get("rating_range", (1, 5))))
