"""Sign-in, sessions, cookies, CSRF, throttling and lockout, the audit chain: the real app on
a real office store, through HTTP."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from edgegate.central.config import load_central
from edgegate.central.schema.console import audit_log
from edgegate.central.services import Office, audit, open_office, operators
from edgegate.cli.main import main
from tests.console.conftest import PASSWORD, csrf_of, page_csrf, sign_in, write_config


def actions(office: Office) -> list[str]:
    return [r["action"] for r in reversed(audit.recent(office.engine, limit=1000))]


def test_password_is_argon2_and_never_stored_in_clear(office: Office) -> None:
    row = operators.get(office.engine, "admin")
    assert row is not None
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]


def test_pages_need_a_session(client_as) -> None:  # type: ignore[no-untyped-def]
    anon = client_as(None)
    r = anon.get("/doors", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")
    assert anon.post("/signout").status_code == 401


def test_session_cookie_flags(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        form = c.get("/signin")
        r = c.post(
            "/signin",
            data={"username": "admin", "password": PASSWORD, "csrf": csrf_of(form.text)},
            follow_redirects=False,
        )
        cookie = r.headers["set-cookie"].lower()
        assert "eg_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    with TestClient(app, base_url="https://testserver") as c:
        form = c.get("/signin")
        r = c.post(
            "/signin",
            data={"username": "admin", "password": PASSWORD, "csrf": csrf_of(form.text)},
            follow_redirects=False,
        )
        cookie = next(h for h in r.headers.get_list("set-cookie") if "eg_session=" in h)
        assert "secure" in cookie.lower()


def test_signin_form_needs_its_csrf(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        c.get("/signin")
        r = c.post("/signin", data={"username": "admin", "password": PASSWORD, "csrf": "x"})
        assert r.status_code == 403
        assert "eg_session" not in c.cookies


def test_csrf_required_on_changes(client_as) -> None:  # type: ignore[no-untyped-def]
    c = client_as("admin")
    assert c.post("/signout", data={}).status_code == 403
    assert c.post("/signout", data={"csrf": "wrong"}).status_code == 403
    assert c.get("/doors").status_code == 200  # still signed in
    token = page_csrf(c)
    r = c.post("/signout", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert c.get("/doors", follow_redirects=False).status_code == 303  # session ended


def test_throttling_lockout_and_audit(office: Office, app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        for i in range(operators.LOCK_AFTER):
            form = c.get("/signin")
            r = c.post(
                "/signin",
                data={"username": "viewer", "password": f"wrong{i}", "csrf": csrf_of(form.text)},
            )
            assert r.status_code == 401
        assert "locked" in r.text
        # The right password no longer helps while the lock lasts.
        form = c.get("/signin")
        r = c.post(
            "/signin", data={"username": "viewer", "password": PASSWORD, "csrf": csrf_of(form.text)}
        )
        assert r.status_code == 401
    row = operators.get(office.engine, "viewer")
    assert row and row["locked_until"] and row["failed"] == operators.LOCK_AFTER
    seen = actions(office)
    assert seen.count("signin_failed") == operators.LOCK_AFTER
    assert "operator_locked" in seen and "signin_refused" in seen
    assert operators.delay(1) < operators.delay(3) <= operators.delay(99)
    # After the lock (time moved past it) the right password works and resets the count.
    ok = operators.authenticate(office.engine, "viewer", PASSWORD, now=row["locked_until"] + 1)
    assert ok.ok and operators.get(office.engine, "viewer")["failed"] == 0  # type: ignore[index]


def test_unknown_operator_is_audited_not_revealed(office: Office, app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        form = c.get("/signin")
        r = c.post(
            "/signin",
            data={"username": "nobody", "password": "whatever1", "csrf": csrf_of(form.text)},
        )
        assert r.status_code == 401 and "Wrong user name or password" in r.text
    assert actions(office)[-1] == "signin_failed"


def test_disabled_operator_is_signed_out(office: Office, client_as) -> None:  # type: ignore[no-untyped-def]
    c = client_as("security")
    assert c.get("/doors").status_code == 200
    operators.set_enabled(office.engine, operators_actor(), "security", False)
    assert c.get("/doors", follow_redirects=False).status_code == 303


def operators_actor():  # type: ignore[no-untyped-def]
    from tests.console.conftest import ADMIN

    return ADMIN


def test_audit_chain_verify_and_tamper(tmp_path: Path, office: Office, capsys) -> None:  # type: ignore[no-untyped-def]
    verify = ["central", "audit", "verify", "--config", str(tmp_path / "central.toml")]
    assert main(verify) == 0
    assert "intact" in capsys.readouterr().out
    with office.engine.begin() as conn:  # someone edits one entry in the database
        conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(target="mallory"))
    assert main(verify) == 1
    assert "entry 2" in capsys.readouterr().err
    with office.engine.begin() as conn:  # ... or removes one
        conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(target="security"))
        conn.execute(delete(audit_log).where(audit_log.c.seq == 3))
    assert main(verify) == 1
    assert "entry 4" in capsys.readouterr().err


def test_operators_cli_reads_password_never_from_argv(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path)
    add = ["central", "operators", "add", "boss", "--role", "admin", "--config", str(path)]
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-pass-word\n"))
    assert main(add) == 0
    out = capsys.readouterr()
    assert "s3cret" not in out.out + out.err
    office = open_office(load_central(path))
    assert operators.authenticate(office.engine, "boss", "s3cret-pass-word").ok
    assert actions(office)[:2] == ["operator_added", "signin"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main([*add[:3], "shorty", *add[4:]]) == 1
    assert "at least" in capsys.readouterr().err
    # There is no option that would take a password on the command line.
    with pytest.raises(SystemExit):
        main([*add, "--password", "x"])


def test_signed_in_page_shows_menu_for_role(client_as) -> None:  # type: ignore[no-untyped-def]
    html = client_as("viewer").get("/doors").text
    assert 'href="/doors"' in html
    assert "viewer (viewer)" in html
    _ = sign_in


def test_cli_roles_match_the_services() -> None:
    from edgegate.central.services import ROLES
    from edgegate.cli import central_console

    assert central_console.ROLES == ROLES
