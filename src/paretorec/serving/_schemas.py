"""Request and response models of the HTTP API (the OpenAPI schema is generated from them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = str | int
MAX_LIST = 1000
MAX_ID_CHARS = 200
#: integer columns of the feedback store are 32-bit
MAX_INT = 2**31 - 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConstraintModel(_Model):
    objective: str = Field(..., max_length=64, examples=["ndcg"])
    op: Literal[">=", "<="] = ">="
    value: float = Field(..., allow_inf_nan=False, examples=[0.95])
    relative: bool = Field(False, description="the bound is value * the front's best value")


class RecommendRequest(_Model):
    """A known ``user_id``, or a ``history`` of item ids (folded in at once), or neither
    (cold start). At most one of ``point``, ``preference`` and ``constraints``; none: the
    front's knee."""

    user_id: Id | None = Field(None, examples=["196"])
    history: list[Id] | None = Field(None, max_length=MAX_LIST)
    k: int = Field(10, ge=1, description="list length (capped by the service's max_k)")
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    point: int | Literal["knee", "default", "auto"] | None = Field(
        None, description="front point id, 'knee', or 'auto' (the online bandit, if attached)"
    )
    preference: dict[str, float] | None = Field(
        None, examples=[{"ndcg": 2, "ild": 1}], description="weighted Chebyshev pick"
    )
    constraints: list[ConstraintModel | str] | None = Field(
        None, max_length=16, examples=[["ndcg >= 0.95 * best"]]
    )
    optimize: str | None = Field(None, max_length=64, description="objective to maximise")
    explain: bool = False


class PointModel(BaseModel):
    id: int
    describe: str
    policy: dict[str, Any]
    chosen_by: str
    expected: dict[str, float] = Field(description="the point's objective values on test")
    validation: dict[str, float]


class ItemModel(BaseModel):
    item_id: Id
    title: str
    rank: int
    score: float
    candidate_score: float
    candidate_rank: int
    propensity: float = Field(description="probability the item was shown (1: deterministic)")
    explanation: dict[str, Any] | None = None


class RecommendResponse(BaseModel):
    request_id: str
    user_id: Id | None
    known_user: bool
    fallback: str | None = Field(description="'popularity' or 'text' for cold-start users")
    point: PointModel
    items: list[ItemModel]


class FeedbackEvent(_Model):
    kind: Literal["impression", "click", "like", "purchase", "rating"]
    item_id: Id
    idempotency_key: str = Field(..., min_length=1, max_length=200)
    request_id: str | None = Field(None, max_length=MAX_ID_CHARS)
    user_id: Id | None = None
    timestamp: float | None = Field(None, allow_inf_nan=False, description="unix seconds")
    value: float | None = Field(None, allow_inf_nan=False, description="rating value")
    point_id: int | None = Field(None, ge=0, le=MAX_INT)
    position: int | None = Field(None, ge=0, le=MAX_INT)
    propensity: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)


class FeedbackRequest(_Model):
    events: list[FeedbackEvent] = Field(..., min_length=1, max_length=MAX_LIST)


class FeedbackResponse(BaseModel):
    stored: int
    duplicates: int
    committed: bool = Field(description="true: the events are durably stored")


class NewItem(_Model):
    item_id: Id
    text: str = Field(..., min_length=1, max_length=10_000)
    title: str | None = Field(None, max_length=500)


class ItemsRequest(_Model):
    items: list[NewItem] = Field(..., min_length=1, max_length=MAX_LIST)


class ItemStatus(BaseModel):
    item_id: Id
    status: Literal["created", "updated"]


class ItemsResponse(BaseModel):
    items: list[ItemStatus]
    n_items: int


class FrontPointModel(BaseModel):
    id: int
    describe: str
    policy: dict[str, Any]
    validation: dict[str, float]
    test: dict[str, float]


class FrontResponse(BaseModel):
    objectives: list[str]
    directions: list[str]
    default_point: int
    points: list[FrontPointModel]
    traffic: dict[str, int] = Field(description="recommendations served per point id")
    feedback: dict[str, dict[str, int]] = Field(description="stored events per point and kind")


class HealthResponse(BaseModel):
    status: str
    bundle: str
    items: int
    points: int
    reloads: int


class ReloadRequest(_Model):
    bundle: str | None = Field(None, max_length=4096, description="default: the current path")


class ReloadResponse(BaseModel):
    bundle: str
    items: int
    points: int
    seconds: float


class ErrorResponse(BaseModel):
    detail: str
