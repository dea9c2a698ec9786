"""Templates (Jinja2, autoescaped: every value is HTML-escaped unless marked safe, which the
console never does with data) and small formatting helpers shared by the pages."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from edgegate import __version__
from edgegate.central.web.registry import menu

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def ago(ts: float | None) -> str:
    if ts is None:
        return "never"
    s = max(0.0, time.time() - ts)
    if s < 120:
        return f"{s:.0f}s ago"
    if s < 7200:
        return f"{s / 60:.0f}min ago"
    if s < 172800:
        return f"{s / 3600:.1f}h ago"
    return f"{s / 86400:.0f}d ago"


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters["ago"] = ago
templates.env.filters["when"] = when


def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    who = getattr(request.state, "principal", None)
    ctx.update(
        request=request,
        who=who,
        menu=menu(who.role) if who else [],
        site=request.app.state.office.config.central.site,
        version=__version__,
    )
    return templates.TemplateResponse(request, name, ctx, status_code=status)
