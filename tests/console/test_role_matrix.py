"""The role matrix: every route of the app (pages and API, present and future) under every
role answers exactly as its declared roles allow: 403 for the others, never 401/403 for the
allowed ones; and no route is without a guard unless it is on the short public list."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi.routing import APIRoute

from edgegate.central.services import ROLES, Office, operators
from edgegate.central.web.auth import SESSION_COOKIE

# The host's one-time link (docs/visitors.md): no account, the link's token is the key.
PUBLIC = {
    ("GET", "/signin"),
    ("POST", "/signin"),
    ("GET", "/visit-link/{token}"),
    ("POST", "/visit-link/{token}"),
}


def declared_roles(route: APIRoute) -> tuple[str, ...] | None:
    found = []

    def walk(dep) -> None:  # type: ignore[no-untyped-def]
        for sub in dep.dependencies:
            roles = getattr(sub.call, "roles", None)
            if roles is not None:
                found.append(roles)
            walk(sub)

    walk(route.dependant)
    assert len(found) <= 1, f"{route.path}: more than one guard"
    return found[0] if found else None


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def routes(app) -> list[tuple[str, str, tuple[str, ...] | None]]:  # type: ignore[no-untyped-def]
    out = []
    for prefix, router in app.state.routers:
        for r in router.routes:
            assert isinstance(r, APIRoute)
            for method in sorted(r.methods - {"HEAD"}):
                out.append((method, prefix + r.path, declared_roles(r)))
    return out


def test_every_route_is_guarded(app) -> None:  # type: ignore[no-untyped-def]
    table = routes(app)
    assert len(table) >= 4
    for method, path, roles in table:
        if (method, path) in PUBLIC:
            assert roles is None, f"{method} {path} is public and guarded?"
        else:
            assert roles, f"{method} {path} has no guard(...)"


def test_role_matrix(app, office: Office, served: str) -> None:  # type: ignore[no-untyped-def]
    checked = 0
    with httpx.Client(base_url=served, timeout=10) as http:
        for method, path, roles in routes(app):
            if roles is None:
                continue
            url = concrete(path)
            # Anonymous: pages redirect to the sign-in page, API and changes say 401.
            with http.stream(method, url, follow_redirects=False) as r:
                assert r.status_code in (303, 401), (method, path, r.status_code)
            for role in ROLES:
                token, csrf = operators.start_session(office.engine, role)
                headers = {"X-CSRF-Token": csrf, "Cookie": f"{SESSION_COOKIE}={token}"}
                with http.stream(method, url, headers=headers, follow_redirects=False) as r:
                    status = r.status_code
                if role in roles:
                    assert status not in (401, 403), (method, path, role, status)
                else:
                    assert status == 403, (method, path, role, status)
                checked += 1
    assert checked >= 4 * len(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_menu_lists_only_allowed_pages(app, client_as, role: str) -> None:  # type: ignore[no-untyped-def]
    from edgegate.central.web.registry import PAGES

    html = client_as(role).get("/doors").text
    for page in PAGES:
        shown = f'href="{page.path}"' in html
        assert shown == (role in page.roles), (role, page.path)
