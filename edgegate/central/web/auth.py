"""Who is asking, and may they: sessions (console) and bearer tokens (API), roles, CSRF.

Every route declares the roles allowed with ``guard(...)`` (pages and API alike); the guard
is the only way in, and the role-matrix test walks every route of the app and checks it. A
console request that changes something (any method but GET/HEAD) must carry the session's
CSRF token, as the ``csrf`` form field or the ``X-CSRF-Token`` header (htmx sends it).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from edgegate.central.services import Actor, operators, tokens
from edgegate.errors import EdgegateError

SESSION_COOKIE = "eg_session"
ALL = ("admin", "security", "reception", "viewer")
PEOPLE_READ = ("admin", "security", "reception")
LOST_CARDS = ("admin", "security", "reception")
SECURITY = ("admin", "security")
ADMIN = ("admin",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(EdgegateError):
    """A page asked for without a session: answered with a redirect to the sign-in page."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    via: str  # console or api
    csrf: str = ""

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.via, self.role)

    def can(self, roles: tuple[str, ...]) -> bool:
        return self.role in roles


async def principal_of(request: Request) -> Principal | None:
    office = request.app.state.office
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        user = await run_in_threadpool(tokens.check, office.engine, auth[7:].strip())
        return None if user is None else Principal(user.name, user.role, "api")
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    s = await run_in_threadpool(operators.session, office.engine, token)
    return None if s is None else Principal(s.operator, s.role, "console", s.csrf)


async def _csrf_ok(request: Request, expected: str) -> bool:
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached on the request: the endpoint reads it again
            value = form.get("csrf")
            sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent, expected)


Guard = Callable[[Request], Coroutine[Any, Any, Principal]]


def guard(*roles: str) -> Any:
    """``Depends`` for a route open to ``roles`` (see the module docstring)."""
    unknown = set(roles) - set(ALL)
    if unknown or not roles:
        raise ValueError(f"bad roles {roles}")

    async def check(request: Request) -> Principal:
        who = await principal_of(request)
        api = request.url.path.startswith("/api/")
        if who is None:
            if api or request.method not in SAFE_METHODS or "hx-request" in request.headers:
                raise HTTPException(401, "sign in first", {"WWW-Authenticate": "Bearer"})
            raise SignInRequired()
        request.state.principal = who  # the error page shows the menu of this role
        if who.role not in roles:
            raise HTTPException(403, f"the {who.role} role may not do this")
        if (
            who.via == "console"
            and request.method not in SAFE_METHODS
            and not await _csrf_ok(request, who.csrf)
        ):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page")
        request.state.principal = who
        return who

    check.roles = roles  # type: ignore[attr-defined]  # read by the role-matrix test
    return Depends(check)


# Route parameters, one per access level: ``who: Viewer`` admits every role, ``who: Admin``
# only admins. Feature modules use these (or ``Annotated[Principal, guard(...)]``).
Viewer = Annotated[Principal, guard(*ALL)]
PeopleReader = Annotated[Principal, guard(*PEOPLE_READ)]
LostCardDesk = Annotated[Principal, guard(*LOST_CARDS)]
Security = Annotated[Principal, guard(*SECURITY)]
Admin = Annotated[Principal, guard(*ADMIN)]
