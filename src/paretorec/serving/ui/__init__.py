"""The operator page at ``/ui``: static HTML and a small script, no build step, no CDN.

The page talks to the same app's JSON API (``/front``, ``/recommend``, ``/feedback``), so it
shows exactly what a client gets. Everything it needs ships in this folder; it loads nothing
from the network. ``create_app`` calls :func:`mount`.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at runtime
# and ``Request`` is imported inside :func:`ui_router`.
from importlib import resources
from typing import Any

__all__ = ["mount", "ui_router"]

_NO_CACHE = {"cache-control": "no-cache"}
#: users offered by the page's user picker
N_SAMPLE_USERS = 50


def _read(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def ui_router() -> Any:
    """An ``APIRouter`` serving ``GET /ui`` (the page), ``GET /ui/app.js`` (its script) and
    ``GET /ui/users`` (a few known user ids for the picker, read from ``app.state.service``).

    The routes are left out of the OpenAPI schema: they are not part of the JSON API.
    """
    from fastapi import APIRouter, Request
    from fastapi.responses import RedirectResponse, Response

    router = APIRouter(include_in_schema=False)
    page, script = _read("index.html"), _read("app.js")

    @router.get("/ui")
    def operator_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_NO_CACHE)

    @router.get("/ui/")
    def operator_page_slash() -> Response:
        return RedirectResponse("/ui")

    @router.get("/ui/app.js")
    def operator_script() -> Response:
        return Response(script, media_type="text/javascript; charset=utf-8", headers=_NO_CACHE)

    @router.get("/ui/users")
    def sample_users(request: Request) -> dict[str, list[Any]]:
        service = getattr(request.app.state, "service", None)
        if service is None:
            return {"users": []}
        ids = service.get().bundle.user_ids[:N_SAMPLE_USERS]
        return {"users": [value.item() if hasattr(value, "item") else value for value in ids]}

    return router


def mount(app: Any) -> None:
    """Add the operator page's routes to a FastAPI ``app``."""
    app.include_router(ui_router())
