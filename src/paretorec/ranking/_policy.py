"""A policy (an "operating point"): how candidate lists become final top-K lists.

A :class:`Policy` is plain, validated, immutable data: how score sources are fused, which
item-side boosts apply and which re-ranker orders the list. It round-trips through a
JSON-able dict, so a Pareto search can sample it, store it, serve it and switch it per
request. Applying a policy lives in :func:`paretorec.ranking.apply_policy`.

Conventions (the maths is in :func:`paretorec.ranking.fused_scores` and the re-rankers):

* ``fusion="sum"``: each source is min-max normalised over the user's candidates
  (a constant row becomes 0) and the weighted sum is taken.
* ``fusion="product"``: a weighted product of probabilities, computed as
  ``sum_s w_s * log(p_s)``; sources in ``CandidateSet.predictions`` are probabilities
  (values outside [0, 1] are an error), clipped to ``[1e-6, 1]``; the candidate score is
  mapped to ``[1e-6, 1]`` by per-user min-max.
* Boosts and the penalty are added to the fused score, in its units: with ``fusion="sum"``
  and weights summing to 1 the fused score spans [0, 1], so ``novelty_boost=0.1`` is a tenth
  of a user's score range.
* Re-ranker parameters that the chosen re-ranker does not read are kept (a search may
  sample them) but have no effect; :meth:`Policy.describe` leaves them out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .._validation import ParetorecError, plain, show

Fusion = Literal["sum", "product"]
Reranker = Literal["none", "mmr", "dpp", "fair"]

FUSIONS: tuple[str, ...] = get_args(Fusion)
RERANKERS: tuple[str, ...] = get_args(Reranker)
DEFAULT_WEIGHTS: dict[str, float] = {"candidate": 1.0}

#: Parameters each re-ranker reads (the others are inert for it).
RERANKER_PARAMETERS: dict[str, tuple[str, ...]] = {
    "none": (),
    "mmr": ("mmr_lambda",),
    "dpp": ("dpp_theta",),
    "fair": ("fair_min_share", "fair_group"),
}


def _default_weights() -> dict[str, float]:
    return dict(DEFAULT_WEIGHTS)


class Policy(BaseModel):
    """An operating point: fusion weights, item boosts and a re-ranker.

    The defaults reproduce the candidate model's ranking (top ``k`` candidates in order).
    Invalid values raise :class:`~paretorec.ParetorecError` naming the field and the value,
    e.g. ``policy field 'mmr_lambda' must be <= 1, got 1.7``. Instances are immutable and
    hashable; :meth:`to_dict` / :meth:`from_dict` round-trip exactly (also through JSON).

    Attributes:
        k: length of the final list (at most the number of candidates, checked on apply).
        depth: the re-ranker (and the exposure penalty) choose among the ``depth`` best
            candidates by fused score, ``None``: among all C. Diversifying from near the top
            of the list costs less accuracy than reaching deep into it; ``depth >= k``.
        fusion: ``"sum"`` of per-user min-max normalised sources, or ``"product"`` of
            probabilities (``sum_s w_s log p_s``); see the module docstring.
        weights: non-negative weight per score source (``"candidate"`` and the names of
            ``CandidateSet.predictions``); at least one must be positive. Sources with
            weight 0 are not read.
        novelty_boost: adds ``boost * self-information`` of the item,
            ``-log2(max(pop, 1) / n_users)`` divided by its catalogue maximum (in [0, 1]).
        long_tail_boost: adds ``boost`` to items in group 1 of ``ItemContext.groups``.
        popularity_penalty: subtracts ``penalty * log1p(pop) / max(log1p(pop))``.
        reranker: ``"none"`` (top-k by fused score), ``"mmr"``, ``"dpp"`` or ``"fair"``.
        mmr_lambda: MMR trade-off in [0, 1]; 1 = pure relevance, 0 = pure diversity.
        mmr_similarity: how MMR scores redundancy with the items already chosen: ``"max"``
            (classic MMR, the most similar chosen item) or ``"mean"`` (average similarity
            to the chosen items: max-sum diversification, which targets intra-list
            diversity, itself a mean over pairs).
        exposure_penalty: subtracts ``penalty * log1p(c_i) / log1p(n_users)`` where ``c_i``
            counts how often item i was already placed in the lists built so far (all
            users fill position 1, then position 2, ...). It couples users, spreading
            exposure over the catalogue (coverage, exposure Gini). Works with the
            re-rankers ``"none"`` (greedy top-k), ``"mmr"`` and ``"fair"``, not ``"dpp"``.
        dpp_theta: DPP trade-off in [0, 1) as in Chen et al. (2018): the objective is
            ``theta * sum(relevance) + (1 - theta) * log det(S)``; 0 = pure diversity,
            values near 1 = pure relevance.
        fair_min_share: every prefix of length t holds at least
            ``floor(fair_min_share * t)`` items of ``fair_group`` (while any remain).
        fair_group: the protected group id in ``ItemContext.groups`` (1 = long tail).
        order: how the k chosen items are presented: ``"reranker"`` (the order in which
            the re-ranker or the exposure penalty chose them) or ``"score"`` (by fused
            score, best first). Set-level objectives (ILD, coverage, novelty) do not depend
            on the order, rank-sensitive accuracy (nDCG) does, so ``"score"`` keeps a
            diversified set and loses less accuracy. Not with ``"fair"``, whose guarantee
            holds for every prefix of its own order.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, allow_inf_nan=False, validate_default=False
    )

    k: int = Field(10, gt=0)
    depth: int | None = Field(None, gt=0)
    fusion: Fusion = "sum"
    weights: dict[str, float] = Field(default_factory=_default_weights)
    novelty_boost: float = Field(0.0, ge=0)
    long_tail_boost: float = Field(0.0, ge=0)
    popularity_penalty: float = Field(0.0, ge=0)
    reranker: Reranker = "none"
    mmr_lambda: float = Field(0.5, ge=0, le=1)
    mmr_similarity: Literal["max", "mean"] = "max"
    exposure_penalty: float = Field(0.0, ge=0)
    dpp_theta: float = Field(0.5, ge=0, lt=1)
    fair_min_share: float = Field(0.5, ge=0, le=1)
    fair_group: int = 1
    order: Literal["reranker", "score"] = "reranker"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ParetorecError(_policy_error_message(exc)) from None

    # ------------------------------------------------------------------ validators
    @model_validator(mode="before")
    @classmethod
    def _numpy_scalars_to_python(cls, data: Any) -> Any:
        """Accept numpy scalars (``np.int64(10)``) as the Python values they hold."""
        if not isinstance(data, dict):
            return data
        out = {name: plain(value) for name, value in data.items()}
        weights = out.get("weights")
        if isinstance(weights, Mapping):
            out["weights"] = {plain(key): plain(value) for key, value in weights.items()}
        return out

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        for source, weight in weights.items():
            if not source:
                raise ValueError("must name its sources, got an empty source name")
            if weight < 0:
                raise ValueError(f"must be non-negative, got {weight!r} for source {source!r}")
        if not any(weight > 0 for weight in weights.values()):
            raise ValueError(f"must have at least one positive weight, got {weights!r}")
        return weights

    @model_validator(mode="after")
    def _check_combination(self) -> Policy:
        if self.order == "score" and self.reranker == "fair":
            raise ValueError(
                "order='score' would undo the fair re-ranker's per-prefix guarantee; use "
                "order='reranker' with reranker='fair'"
            )
        if self.depth is not None and self.depth < self.k:
            raise ValueError(f"depth must be at least k ({self.k}) or None, got {self.depth}")
        if self.exposure_penalty > 0 and self.reranker == "dpp":
            raise ValueError(
                "exposure_penalty works with the re-rankers 'none', 'mmr' and 'fair', "
                f"not 'dpp'; got exposure_penalty={self.exposure_penalty} with dpp"
            )
        return self

    # ------------------------------------------------------------------ identity
    def __hash__(self) -> int:
        return hash(tuple(self._items(sort_weights=True)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Policy):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def _items(self, *, sort_weights: bool = False) -> Iterator[tuple[str, Any]]:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "weights":
                value = tuple(sorted(value.items())) if sort_weights else dict(value)
            yield name, value

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-able Python values (a fresh dict; weights copied)."""
        return dict(self._items())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build a policy from a mapping; missing fields take their defaults.

        Raises :class:`~paretorec.ParetorecError` naming the bad field and its value.
        """
        if not isinstance(data, Mapping):
            raise ParetorecError(
                f"a policy must be built from a dict of fields, got {type(data).__name__}"
            )
        bad_keys = [key for key in data if not isinstance(key, str)]
        if bad_keys:
            raise ParetorecError(f"policy field names must be strings, got {show(bad_keys[0])}")
        return cls(**data)

    def replace(self, **changes: Any) -> Policy:
        """A validated copy with some fields changed."""
        return type(self)(**{**self.to_dict(), **changes})

    def non_default_fields(self) -> dict[str, Any]:
        """The fields whose value differs from the default, in field order."""
        defaults = type(self)().to_dict()
        return {name: value for name, value in self._items() if value != defaults[name]}

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.non_default_fields().items())
        return f"{type(self).__name__}({fields})"

    def __str__(self) -> str:
        return self.__repr__()

    def describe(self) -> str:
        """One short line for tables, showing only what affects the result.

        For example ``"k=10 sum(candidate=0.7, like=0.3) novelty+0.2 mmr(lambda=0.8)"``.
        """
        weights = ", ".join(f"{source}={_number(w)}" for source, w in self.weights.items())
        parts = [f"k={self.k}", f"{self.fusion}({weights})"]
        if self.depth is not None:
            parts.append(f"depth={self.depth}")
        if self.novelty_boost:
            parts.append(f"novelty+{_number(self.novelty_boost)}")
        if self.long_tail_boost:
            parts.append(f"tail+{_number(self.long_tail_boost)}")
        if self.popularity_penalty:
            parts.append(f"popularity-{_number(self.popularity_penalty)}")
        if self.exposure_penalty:
            parts.append(f"exposure-{_number(self.exposure_penalty)}")
        if self.reranker == "mmr":
            kind = "" if self.mmr_similarity == "max" else ", mean"
            parts.append(f"mmr(lambda={_number(self.mmr_lambda)}{kind})")
        elif self.reranker == "dpp":
            parts.append(f"dpp(theta={_number(self.dpp_theta)})")
        elif self.reranker == "fair":
            parts.append(f"fair(min_share={_number(self.fair_min_share)}, group={self.fair_group})")
        if self.order == "score":
            parts.append("by-score")
        return " ".join(parts)


def _number(value: float) -> str:
    return f"{value:.4g}"


# ---------------------------------------------------------------------------- messages
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}
_KINDS = {
    "int_type": "an int",
    "int_parsing": "an int",
    "int_from_float": "an int",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "dict_type": "a dict of source name -> weight",
}


def _bound(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    return repr(value)


def _got(value: Any) -> str:
    text = show(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, str)):
        text += f" ({type(value).__name__})"
    return text


def _one_error(error: Mapping[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    kind = str(error.get("type", ""))
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        valid = ", ".join(Policy.model_fields)
        return f"policy has no field {loc[0]!r} (got {show(value)}); valid fields: {valid}"
    if not loc and kind == "value_error":  # a check across fields: its message names them
        return f"policy: {ctx.get('error', error.get('msg'))}"
    if not loc:
        return f"policy: {error.get('msg', 'invalid input')}, got {_got(value)}"
    field = f"policy field {loc[0]!r}"
    if len(loc) > 2 and loc[2] == "[key]":
        return f"{field} must map source names (strings) to weights, got key {_got(loc[1])}"
    if len(loc) > 1:
        field += f" entry {loc[1]!r}"
    if kind == "value_error":
        return f"{field} {ctx.get('error', error.get('msg'))}"
    if kind == "literal_error":
        options = ", ".join(repr(option) for option in _literal_options(str(loc[0])))
        return f"{field} must be one of {options}; got {_got(value)}"
    if kind in _BOUNDS:
        key, symbol = _BOUNDS[kind]
        return f"{field} must be {symbol} {_bound(ctx.get(key))}, got {_got(value)}"
    if kind == "finite_number":
        return f"{field} must be a finite number, got {_got(value)}"
    if kind in _KINDS:
        return f"{field} must be {_KINDS[kind]}, got {_got(value)}"
    return f"{field}: {error.get('msg', 'invalid value')}, got {_got(value)}"


def _literal_options(name: str) -> tuple[str, ...]:
    field = Policy.model_fields.get(name)
    return tuple(get_args(field.annotation)) if field is not None else ()


def _policy_error_message(exc: ValidationError) -> str:
    """Pydantic's errors as one sentence per error, each naming the field and value."""
    return "; ".join(_one_error(error) for error in exc.errors())
