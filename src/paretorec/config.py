"""Experiment configs: pydantic models read from TOML files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._validation import DataFileError, ParetorecError, check_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class StrictModel(BaseModel):
    """Base of every config section: frozen, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_toml(cls: type[_Config], path: str | Path) -> _Config:
        """Read and validate a TOML file; errors name the file and the field."""
        return cls.from_dict(read_toml(path), source=str(path))

    @classmethod
    def from_dict(cls: type[_Config], raw: dict[str, Any], source: str = "config") -> _Config:
        """Validate ``raw``; errors are one :class:`ParetorecError` naming the field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ParetorecError(f"{source}: {first_error(exc)}") from None


_Config = TypeVar("_Config", bound=StrictModel)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML file ``path`` (argument name ``config`` in errors)."""
    file = check_file(path, "config")
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"config: {file} is not valid TOML: {exc}") from exc


class DataConfig(StrictModel):
    dataset: str = "movielens-100k"
    data_dir: str | None = None
    download: bool = False
    split: Literal["stratified"] = "stratified"
    ratio: float = Field(0.75, gt=0, lt=1)
    seed: int = 42
    validation_ratio: float = Field(0.8, gt=0, lt=1)
    validation_seed: int = 1


class CandidatesConfig(StrictModel):
    model: str = "ease"
    params: dict[str, Any] = Field(default_factory=lambda: {"regularization": 600.0})
    n_candidates: int = Field(100, gt=0)


class ObjectivesConfig(StrictModel):
    names: tuple[str, ...] = ("ndcg", "ild", "coverage", "novelty")
    k: int = Field(10, gt=0)
    item_vectors: Literal["genres"] = "genres"
    user_groups: tuple[str, ...] = ()


class SpaceConfig(StrictModel):
    rerankers: tuple[Literal["none", "mmr", "dpp", "fair"], ...] = ("none", "mmr", "dpp", "fair")
    boosts: tuple[Literal["novelty", "long_tail", "popularity", "exposure"], ...] = (
        "novelty",
        "long_tail",
        "popularity",
        "exposure",
    )
    max_boost: float = Field(2.0, gt=0)
    #: also search the re-rank depth (Policy.depth) in [k, n_candidates]
    depth: bool = False


class ConstraintConfig(StrictModel):
    objective: str
    min: float | None = None
    max: float | None = None
    relative: bool = False


class SearchConfig(StrictModel):
    n_trials: int = Field(300, gt=0)
    sampler: Literal["nsga2", "random", "tpe"] = "nsga2"
    seed: int = 0
    population_size: int = Field(40, gt=1)
    #: Where the study lives (resumable): a journal file by default (a path relative to the
    #: run folder); ``*.db`` / ``*.sqlite`` paths are SQLite files; a URL (``sqlite:///...``,
    #: ``postgresql://...``) an RDB storage; ``None`` (``storage = ""``) in memory.
    storage: str | None = "study.journal"
    #: Processes searching one study (this one and ``workers - 1`` spawned): see
    #: ``paretorec pareto --workers`` and ``paretorec pareto-worker``.
    workers: int = Field(1, gt=0)
    space: SpaceConfig = SpaceConfig()
    compare: dict[str, SpaceConfig] = Field(default_factory=dict)
    constraints: tuple[ConstraintConfig, ...] = ()


class ParetoConfig(StrictModel):
    """Everything `paretorec pareto CONFIG` needs; every field has a sensible default."""

    name: str = "pareto"
    output_dir: str = "runs/pareto"
    data: DataConfig = DataConfig()
    candidates: CandidatesConfig = CandidatesConfig()
    objectives: ObjectivesConfig = ObjectivesConfig()
    search: SearchConfig = SearchConfig()
    #: Optional multi-task ranker whose task predictions policies fuse with the candidate
    #: score: a :class:`paretorec.multitask.RankerSection` (``[ranker]`` in TOML).
    ranker: Any = None

    @field_validator("ranker", mode="before")
    @classmethod
    def _check_ranker(cls, value: Any) -> Any:
        if value is None:
            return None
        from .multitask import RankerSection  # multitask imports this module

        if isinstance(value, RankerSection):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"must be a table of ranker settings, got {value!r}")
        try:
            return RankerSection.model_validate(value)
        except ValidationError as exc:
            raise ValueError(first_error(exc)) from None


def first_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        got = error.get("input")
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown field {where!r}")
        elif error["type"] == "value_error":  # our own checks: the message names the value
            message = message.removeprefix("Value error, ")
            problems.append(f"field {where!r}: {message}" if where else message)
        elif not where:  # the whole document, e.g. not a table
            problems.append(f"{message}, got {got!r}")
        else:
            problems.append(f"field {where!r}: {message}, got {got!r}")
    return "; ".join(problems)
