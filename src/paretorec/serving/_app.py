"""The HTTP service: a thin FastAPI shell over :class:`Recommender` and :class:`FeedbackStore`.

``create_app(bundle_or_recommender, settings)`` builds the app; heavy state (the bundle,
the feedback store) is loaded in its lifespan. Routes validate with the pydantic models of
:mod:`._schemas` and call the library; a :class:`~paretorec.ParetorecError` becomes a 422
with its message. Admin and item-writing endpoints need ``Authorization: Bearer TOKEN``
with the token from ``$PARETOREC_ADMIN_TOKEN`` (401 otherwise; without a configured token
they are closed). Each worker process keeps its own metrics and its own items added through
``/items`` (replayed after a reload); feedback goes to the shared store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections import Counter as TallyCounter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from .._validation import ParetorecError
from ._feedback import FeedbackStore
from ._online import BanditChooser
from ._recommender import Recommender
from ._schemas import (
    ErrorResponse,
    FeedbackRequest,
    FeedbackResponse,
    FrontResponse,
    HealthResponse,
    ItemsRequest,
    ItemsResponse,
    RecommendRequest,
    RecommendResponse,
    ReloadRequest,
    ReloadResponse,
)

log = logging.getLogger("paretorec.serving")
TOKEN_ENV = "PARETOREC_ADMIN_TOKEN"
FEEDBACK_ENV = "PARETOREC_FEEDBACK_URL"
BUNDLE_ENV = "PARETOREC_BUNDLE"
BANDIT_ENV = "PARETOREC_BANDIT"
BANDIT_STATE_ENV = "PARETOREC_BANDIT_STATE"
RETRIEVAL_ENV = "PARETOREC_RETRIEVAL"
#: Route paths reported in metrics (anything else is "other", so labels stay bounded).
ROUTES = ("/recommend", "/feedback", "/items", "/front", "/health", "/metrics", "/admin/reload")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class ServiceSettings:
    """Service options; each defaults from the environment where noted.

    Attributes:
        admin_token: bearer token for ``/items`` and ``/admin/*`` (``$PARETOREC_ADMIN_TOKEN``;
            None closes those endpoints).
        feedback_url: SQLAlchemy URL or SQLite file of the feedback store
            (``$PARETOREC_FEEDBACK_URL``, default ``feedback.sqlite3``).
        max_k: the largest list a request may ask for.
        max_body_bytes: larger request bodies are refused with 413.
        encoder: text encoder for ``/items`` (default: the bundle's reference).
        handle_sighup: reload the bundle on SIGHUP (main thread only).
        freeze_gc: after loading, move every object alive to the garbage collector's
            permanent generation (``gc.freeze``), so collections skip the bundle.
        preload_encoder: load the bundle's language model at start (else on the first
            ``/items``, which then takes the model's load time).
        torch_threads: intra-op threads of PyTorch (ranker, top-k); requests already run in
            parallel on the server's thread pool, so 1 avoids oversubscription (None: keep).
        bandit: ``point="auto"`` policy, ``"thompson"``, ``"linucb"`` or
            ``"epsilon_greedy"`` (``$PARETOREC_BANDIT``; None: "auto" answers 422).
        bandit_state: the bandit's state file, loaded at start and saved after every update
            (``$PARETOREC_BANDIT_STATE``; None: in memory only).
        retrieval: candidate retrieval, ``"auto"`` (the bundle's ANN index when it is
            approximate), ``"ann"`` or ``"exact"`` (``$PARETOREC_RETRIEVAL``; see
            :class:`Recommender`).
    """

    admin_token: str | None = field(default_factory=lambda: os.environ.get(TOKEN_ENV) or None)
    feedback_url: str = field(
        default_factory=lambda: os.environ.get(FEEDBACK_ENV) or "feedback.sqlite3"
    )
    max_k: int = 100
    max_body_bytes: int = 1_000_000
    encoder: Any = None
    handle_sighup: bool = True
    torch_threads: int | None = 1
    freeze_gc: bool = True
    preload_encoder: bool = False
    bandit: str | None = field(default_factory=lambda: os.environ.get(BANDIT_ENV) or None)
    bandit_state: str | None = field(
        default_factory=lambda: os.environ.get(BANDIT_STATE_ENV) or None
    )
    retrieval: str = field(default_factory=lambda: os.environ.get(RETRIEVAL_ENV) or "auto")


class _Service:
    """The state one app instance serves from (swapped whole on reload)."""

    def __init__(self, source: Recommender | str | Path, settings: ServiceSettings) -> None:
        self.source = source
        self.settings = settings
        self.recommender: Recommender | None = None
        self.store: FeedbackStore | None = None
        self.bundle_path: Path | None = None if isinstance(source, Recommender) else Path(source)
        self.added_items: list[dict[str, Any]] = []
        self.reloads = 0
        self.traffic: TallyCounter[str] = TallyCounter()
        self.reload_lock = threading.Lock()
        self.bandit: BanditChooser | None = None

    def start(self) -> None:
        if self.settings.torch_threads is not None:
            import torch

            torch.set_num_threads(self.settings.torch_threads)
        if isinstance(self.source, Recommender):
            self.recommender = self.source
            self.bundle_path = self.source.bundle.path
        else:
            self.recommender = self._load(Path(self.source))
        self._attach_bandit(self.recommender)
        if self.settings.preload_encoder and self.recommender.bundle.text_encoder is not None:
            encoder = self.recommender.encoder()
            if callable(getattr(encoder, "load", None)):
                encoder.load()
        self.store = FeedbackStore(self.settings.feedback_url)

    def _attach_bandit(self, recommender: Recommender) -> None:
        if not self.settings.bandit:
            return
        arms = tuple(str(point.id) for point in recommender.points)
        if self.bandit is None or self.bandit.arms != arms:
            self.bandit = BanditChooser(
                recommender, policy=self.settings.bandit, state_path=self.settings.bandit_state
            )
        self.bandit.attach(recommender)

    def _load(self, path: Path) -> Recommender:
        recommender = Recommender(
            path,
            encoder=self.settings.encoder,
            max_k=self.settings.max_k,
            retrieval=self.settings.retrieval,
        )
        recommender.warm_up()  # before it serves (or is swapped in)
        return recommender

    def reload(self, path: str | Path | None = None) -> tuple[Recommender, float]:
        """Load a bundle beside the serving one, then swap it in (requests in flight finish
        on the old one)."""
        started = time.perf_counter()
        with self.reload_lock:
            target = Path(path) if path is not None else self.bundle_path
            if target is None:
                raise ParetorecError("bundle: this service was started without a bundle path")
            # The load is a second or more of CPU in this thread while the event loop keeps
            # serving: hand the GIL over every 1 ms instead of 5 ms meanwhile, so requests
            # wait less for it (measured: the loop's median wait 2.9 -> 1.1 ms, ML-1M bundle).
            interval = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, 0.001))
            try:
                fresh = self._load(target)
            except ParetorecError:
                raise
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ParetorecError(f"bundle: cannot load {target}: {exc}") from exc
            finally:
                sys.setswitchinterval(interval)
            old = self.recommender
            if old is not None:
                own = self.bandit.observe if self.bandit is not None else None
                fresh.observers.extend(o for o in old.observers if o != own)
                if self.bandit is None:
                    fresh.auto_chooser = old.auto_chooser
                fresh._recent.update(old._recent)
            self._attach_bandit(fresh)
            if self.added_items:
                fresh.add_items(self.added_items)
            self.recommender = fresh
            self.bundle_path = target
            self.reloads += 1
        return fresh, time.perf_counter() - started

    def get(self) -> Recommender:
        if self.recommender is None:
            raise RuntimeError("the service has not started")
        return self.recommender


class _Guard:
    """Pure ASGI middleware: request body limit (413) and Prometheus metrics."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Any) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        label = path if path in ROUTES else "other"
        started = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body_bytes:
                await _plain_response(send_and_record, 413, "request body too large")
                return
            body = bytearray()
            if scope.get("method") in ("POST", "PUT", "PATCH"):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body.extend(message.get("body", b""))
                    more = bool(message.get("more_body", False))
                    if len(body) > self.max_body_bytes:
                        await _plain_response(send_and_record, 413, "request body too large")
                        return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}
                return await receive()

            await self.app(scope, replay, send_and_record)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics["latency"].labels(label).observe(elapsed)
            self.metrics["requests"].labels(label, str(status["code"])).inc()


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _plain_response(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _metrics() -> tuple[Any, dict[str, Any]]:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry()
    buckets = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    return registry, {
        "requests": Counter(
            "paretorec_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=registry,
        ),
        "latency": Histogram(
            "paretorec_request_latency_seconds",
            "Request latency by route",
            ["route"],
            buckets=buckets,
            registry=registry,
        ),
        "points": Counter(
            "paretorec_recommendations",
            "Lists served per operating point",
            ["point"],
            registry=registry,
        ),
        "feedback": Counter(
            "paretorec_feedback_events",
            "Feedback events stored, by kind",
            ["kind"],
            registry=registry,
        ),
        "reloads": Counter("paretorec_reloads", "Bundle reloads", registry=registry),
    }


def create_app(
    bundle_or_recommender: Recommender | str | Path,
    settings: ServiceSettings | None = None,
) -> Any:
    """The FastAPI app serving a bundle (a path, loaded in the lifespan) or a recommender."""
    settings = settings or ServiceSettings()
    service = _Service(bundle_or_recommender, settings)
    registry, metrics = _metrics()
    pending: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        if settings.freeze_gc:
            # the bundle's objects live as long as the process: moved out of the cyclic
            # collector's generations, a full collection no longer walks them (a pause of
            # tens of ms in the middle of a request otherwise)
            gc.collect()
            gc.freeze()
        loop = asyncio.get_running_loop()
        installed = False
        if settings.handle_sighup and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):

                def on_hangup() -> None:
                    task = loop.create_task(_reload_in_background())
                    pending.add(task)
                    task.add_done_callback(pending.discard)

                loop.add_signal_handler(signal.SIGHUP, on_hangup)
                installed = True
        try:
            yield
        finally:
            if installed:
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signal.SIGHUP)
            if service.store is not None:
                service.store.close()

    async def _reload_in_background() -> None:
        try:
            fresh, seconds = await run_in_threadpool(service.reload)
            metrics["reloads"].inc()
            log.info("reloaded %s in %.2fs", fresh.bundle.path, seconds)
        except Exception:  # a bad bundle must not take the service down
            log.exception("reload on SIGHUP failed; still serving the previous bundle")

    app = FastAPI(
        title="paretorec",
        summary="Multi-objective recommendations at a chosen operating point",
        lifespan=lifespan,
        responses={422: {"model": ErrorResponse}},
    )
    app.state.service = service
    app.state.metrics_registry = registry
    app.add_middleware(_Guard, max_body_bytes=settings.max_body_bytes, metrics=metrics)

    @app.exception_handler(ParetorecError)
    async def _user_error(_request: Request, exc: ParetorecError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    from sqlalchemy.exc import OperationalError

    @app.exception_handler(OperationalError)
    async def _store_down(_request: Request, exc: OperationalError) -> JSONResponse:
        # nothing was acknowledged: the client retries with the same idempotency keys
        log.warning("feedback store unavailable: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"detail": "the feedback store is unavailable; retry (same keys)"},
            headers={"Retry-After": "1"},
        )

    def require_token(authorization: str | None = Header(None)) -> None:
        expected = settings.admin_token
        scheme, _, token = (authorization or "").partition(" ")
        if (
            not expected
            or scheme.lower() != "bearer"
            or not secrets.compare_digest(token.strip().encode(), expected.encode())
        ):
            raise HTTPException(
                status_code=401,
                detail="a valid bearer token is required"
                + ("" if expected else f" (the service has none: set ${TOKEN_ENV})"),
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _recommend(body: RecommendRequest) -> dict[str, Any]:
        recommender = service.get()
        if body.k > settings.max_k:
            raise ParetorecError(f"k must be at most {settings.max_k}, got {body.k}")
        constraints = None
        if body.constraints is not None:
            constraints = [c if isinstance(c, str) else c.model_dump() for c in body.constraints]
        result = recommender.recommend(
            body.user_id,
            history=body.history,
            k=body.k,
            exclude=body.exclude,
            point=body.point,
            preference=body.preference,
            constraints=constraints,
            optimize=body.optimize,
            explain=body.explain,
        )
        point = str(result.point["id"])
        metrics["points"].labels(point).inc()
        service.traffic[point] += 1
        return result.to_dict()

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(body: RecommendRequest) -> dict[str, Any]:
        """One user's list at the chosen operating point (see ``Recommender.recommend``)."""
        if body.explain:  # deletion tests per item: tens of ms, off the event loop
            return await run_in_threadpool(_recommend, body)
        # A plain list is a few ms of CPU that holds the GIL most of the time: computed on
        # the event loop, it saves two thread hand-offs per request (the endpoint's and the
        # response validation's) and the GIL ping-pong between them.
        return _recommend(body)

    @app.post("/feedback", response_model=FeedbackResponse)
    def feedback(body: FeedbackRequest) -> dict[str, Any]:
        """Store events; answers only after the commit (durable)."""
        if service.store is None:
            raise RuntimeError("the service has not started")
        events = [event.model_dump() for event in body.events]
        result = service.store.add(events)
        stored = set(result.stored)
        fresh = [e for e in events if e["idempotency_key"] in stored]
        for event in fresh:
            metrics["feedback"].labels(event["kind"]).inc()
        if fresh:
            try:
                service.get().observe(fresh)
            except Exception:  # the events are stored; an observer bug must not undo the ack
                log.exception("a feedback observer failed")
        return {
            "stored": len(result.stored),
            "duplicates": len(result.duplicates),
            "committed": True,
        }

    @app.post("/items", response_model=ItemsResponse, dependencies=[Depends(require_token)])
    def items(body: ItemsRequest) -> dict[str, Any]:
        """Add or update items from their text; recommendable at once."""
        payload = [item.model_dump() for item in body.items]
        recommender = service.get()
        statuses = recommender.add_items(payload)
        service.added_items.extend(payload)
        return {"items": statuses, "n_items": recommender.n_items}

    @app.get("/front", response_model=FrontResponse)
    def front() -> dict[str, Any]:
        recommender = service.get()
        feedback_counts = service.store.counts_by_point() if service.store is not None else {}
        return {
            "objectives": list(recommender.bundle.objectives),
            "directions": list(recommender.bundle.directions),
            "default_point": recommender.default_point,
            "points": [point.to_dict() for point in recommender.points],
            "traffic": dict(service.traffic),
            "feedback": feedback_counts,
        }

    @app.get("/health", response_model=HealthResponse)
    async def health() -> dict[str, Any]:
        recommender = service.get()
        return {
            "status": "ok",
            "bundle": str(recommender.bundle.path),
            "items": recommender.n_items,
            "points": len(recommender.points),
            "reloads": service.reloads,
        }

    @app.get("/metrics", response_class=Response)
    async def metrics_endpoint() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", response_model=ReloadResponse, dependencies=[Depends(require_token)])
    def reload(body: ReloadRequest | None = None) -> dict[str, Any]:
        """Load a bundle (default: the serving path again) and swap it in without downtime."""
        fresh, seconds = service.reload(body.bundle if body is not None else None)
        metrics["reloads"].inc()
        return {
            "bundle": str(fresh.bundle.path),
            "items": fresh.n_items,
            "points": len(fresh.points),
            "seconds": seconds,
        }

    _mount_ui(app)
    return app


def _mount_ui(app: FastAPI) -> None:
    """The operator page (``serving/ui``), when that package is present."""
    try:
        from . import ui
    except ImportError:
        return
    mount = getattr(ui, "mount", None)
    if mount is not None:
        mount(app)


def app_from_env() -> Any:
    """App factory for ``uvicorn --factory`` (several workers): the bundle from
    ``$PARETOREC_BUNDLE``."""
    bundle = os.environ.get(BUNDLE_ENV)
    if not bundle:
        raise ParetorecError(f"set ${BUNDLE_ENV} to the bundle folder to serve")
    return create_app(bundle)


def serve(
    bundle: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Run the service with uvicorn (``paretorec serve``)."""
    import uvicorn

    from ._bundle import verify_bundle

    verify_bundle(bundle)  # refuse a corrupt bundle before binding the port
    if workers > 1:
        os.environ[BUNDLE_ENV] = str(Path(bundle).resolve())
        uvicorn.run(
            "paretorec.serving._app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
        )
    else:
        uvicorn.run(
            create_app(bundle), host=host, port=port, log_level=log_level, access_log=access_log
        )
