"""The console and API application (FastAPI): one router module per feature.

``create_app`` is given what it needs (the office services, the live hub) by the composition
root (``central serve``); it opens no store of its own.
"""

from __future__ import annotations

import importlib

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from edgegate import __version__
from edgegate.central.services import Office
from edgegate.central.services.biometrics import FingerSessions
from edgegate.central.web.auth import SignInRequired
from edgegate.central.web.hub import Hub
from edgegate.central.web.render import HERE, page

log = structlog.get_logger(__name__)

# Feature modules, each with a ``router`` (pages) and/or under api/ (REST). Another branch
# adds its feature by adding its module names here (docs/console.md).
PAGE_MODULES = [
    "signin",
    "doors",
    "muster",
    "alarms",
    "events",
    "people",
    "enrolments",
    "commands",
    "traffic",
    "operators",
    "webhooks",
    "visitors",
]
API_MODULES = [
    "doors",
    "muster",
    "alarms",
    "events",
    "people",
    "enrolments",
    "commands",
    "traffic",
    "admin",
    "visits",
]
API_PREFIX = "/api/v1"


def create_app(
    office: Office,
    hub: Hub,
    *,
    session_hours: float = 12.0,
    fingers: FingerSessions | None = None,
) -> FastAPI:
    app = FastAPI(
        title="edgegate office API",
        version=__version__,
        description="The office's REST API: the same operations as the console "
        "(docs/console.md). Authenticate with `Authorization: Bearer <token>`.",
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.office = office
    app.state.hub = hub
    # Finger enrolments at doors; ``central serve`` feeds them the doors' steps.
    app.state.fingers = fingers if fingers is not None else FingerSessions()
    app.state.session_seconds = session_hours * 3600
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    # (prefix, router) of every feature: the role-matrix test walks these.
    app.state.routers = []
    for package, prefix, names in (("pages", "", PAGE_MODULES), ("api", API_PREFIX, API_MODULES)):
        for name in names:
            router = importlib.import_module(f"edgegate.central.web.{package}.{name}").router
            app.include_router(router, prefix=prefix, include_in_schema=package == "api")
            app.state.routers.append((prefix, router))

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        if getattr(request.state, "principal", None) is not None and request.method == "GET":
            return page(
                request, "message.html", exc.status_code, title="Not allowed", text=str(exc.detail)
            )
        return PlainTextResponse(str(exc.detail), exc.status_code, headers=exc.headers)

    @app.middleware("http")
    async def _headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        # Everything the console loads comes from the office itself (no CDN).
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app
