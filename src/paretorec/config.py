"""Experiment configs: pydantic models read from TOML files."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ._settings import StrictModel, first_error, read_toml
from ._validation import ParetorecError
from .data import DataConfig
from .multitask import RankerSection

__all__ = [
    "CandidatesConfig",
    "ConstraintConfig",
    "DataConfig",
    "ObjectivesConfig",
    "ParetoConfig",
    "ParetorecError",
    "SearchConfig",
    "SpaceConfig",
    "StrictModel",
    "first_error",
    "read_toml",
]


class CandidatesConfig(StrictModel):
    model: str = "ease"
    params: dict[str, Any] = Field(default_factory=lambda: {"regularization": 600.0})
    n_candidates: int = Field(100, gt=0)


class ObjectivesConfig(StrictModel):
    names: tuple[str, ...] = ("ndcg", "ild", "coverage", "novelty")
    k: int = Field(10, gt=0)
    #: diversity vectors: "auto", "text", "model", "none" or an item column (see
    #: paretorec.pareto._features)
    item_vectors: str = "auto"
    #: fair-exposure / long-tail group: "long_tail" or "COLUMN=VALUE"
    item_groups: str = "long_tail"
    #: user columns whose groups get a gap[NAME] objective available
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
    #: score (``[ranker]`` in TOML).
    ranker: RankerSection | None = None

    @field_validator("ranker", mode="before")
    @classmethod
    def _check_ranker(cls, value: Any) -> Any:
        if value is None or isinstance(value, (RankerSection, dict)):
            return value
        raise ValueError(f"must be a table of ranker settings, got {value!r}")
