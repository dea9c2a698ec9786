"""Operators of the console: accounts, roles, argon2 passwords, sign-in throttling, sessions.

Sign-in throttling: each consecutive failure of an account makes the next answer slower
(``delay``) and, from ``LOCK_AFTER`` failures on, locks the account for ``LOCK_SECONDS``; both
are written to the audit log. A name that does not exist is hashed against a dummy hash so
its answer takes as long as a real one (no user enumeration by timing).
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from edgegate.central.schema.console import operators, sessions
from edgegate.central.services import ROLES, Actor, audit
from edgegate.errors import EdgegateError

LOCK_AFTER = 5
LOCK_SECONDS = 300.0
SESSION_SECONDS = 12 * 3600.0
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8

_hasher = PasswordHasher()


@functools.cache
def _dummy() -> str:
    # Hashed on first use, not at import: argon2 is slow on purpose, and every CLI command
    # imports this module.
    return _hasher.hash("not a password of anyone")


class OperatorError(EdgegateError, ValueError):
    """A refused change (bad name, unknown role, weak password, unknown operator)."""


@dataclass(frozen=True, slots=True)
class SignIn:
    ok: bool
    operator: str = ""
    role: str = ""
    locked_until: float | None = None
    failures: int = 0


def delay(failures: int) -> float:
    """Seconds to wait before answering after ``failures`` consecutive failures."""
    return min(0.2 * failures, 2.0)


def _check(name: str, role: str | None, password: str | None) -> None:
    if not NAME_RE.match(name):
        raise OperatorError(f"bad operator name {name!r}: letters, digits, _ . @ -, up to 64")
    if role is not None and role not in ROLES:
        raise OperatorError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise OperatorError(f"the password needs at least {MIN_PASSWORD} characters")


def add(engine: Engine, actor: Actor, name: str, role: str, password: str) -> None:
    _check(name, role, password)
    try:
        with engine.begin() as conn:
            conn.execute(
                operators.insert().values(
                    name=name,
                    role=role,
                    password_hash=_hasher.hash(password),
                    enabled=True,
                    created=time.time(),
                    failed=0,
                )
            )
    except IntegrityError:
        raise OperatorError(f"operator {name!r} exists already") from None
    audit.record(engine, actor, "operator_added", name, role=role)


def _update(engine: Engine, name: str, **values: Any) -> None:
    with engine.begin() as conn:
        cur = conn.execute(update(operators).where(operators.c.name == name).values(**values))
    if cur.rowcount == 0:
        raise OperatorError(f"no operator {name!r}")


def set_role(engine: Engine, actor: Actor, name: str, role: str) -> None:
    _check(name, role, None)
    _update(engine, name, role=role)
    audit.record(engine, actor, "operator_role", name, role=role)


def set_password(engine: Engine, actor: Actor, name: str, password: str) -> None:
    _check(name, None, password)
    _update(engine, name, password_hash=_hasher.hash(password), failed=0, locked_until=None)
    end_sessions(engine, name)
    audit.record(engine, actor, "operator_password_reset", name)


def set_enabled(engine: Engine, actor: Actor, name: str, enabled: bool) -> None:
    _update(engine, name, enabled=enabled)
    if not enabled:
        end_sessions(engine, name)
    audit.record(engine, actor, "operator_enabled" if enabled else "operator_disabled", name)


def unlock(engine: Engine, actor: Actor, name: str) -> None:
    _update(engine, name, failed=0, locked_until=None)
    audit.record(engine, actor, "operator_unlocked", name)


def list_all(engine: Engine) -> list[dict[str, Any]]:
    cols = [c for c in operators.c if c.name != "password_hash"]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(*cols).order_by(operators.c.name)).mappings()]


def get(engine: Engine, name: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(operators).where(operators.c.name == name)).mappings().first()
    return None if row is None else dict(row)


def authenticate(
    engine: Engine, name: str, password: str, *, now: float | None = None, via: str = "console"
) -> SignIn:
    """Check a sign-in; records failures, lockouts and successes (audit log)."""
    now = time.time() if now is None else now
    row = get(engine, name) if NAME_RE.match(name) else None
    if row is None:
        _verify(_dummy(), password)
        audit.record(
            engine,
            Actor(name[:64] or "?", via),
            "signin_failed",
            name[:64],
            reason="unknown operator",
        )
        return SignIn(False)
    who = Actor(name, via, row["role"])
    if row["locked_until"] and row["locked_until"] > now:
        _verify(_dummy(), password)
        audit.record(engine, who, "signin_refused", name, reason="locked")
        return SignIn(False, locked_until=row["locked_until"], failures=row["failed"])
    if not _verify(row["password_hash"], password) or not row["enabled"]:
        failed = row["failed"] + 1
        locked = now + LOCK_SECONDS if failed >= LOCK_AFTER else None
        _update(engine, name, failed=failed, locked_until=locked)
        reason = "disabled" if row["enabled"] is False else "bad password"
        audit.record(engine, who, "signin_failed", name, reason=reason, failures=failed)
        if locked:
            audit.record(engine, who, "operator_locked", name, until=locked)
        return SignIn(False, locked_until=locked, failures=failed)
    _update(engine, name, failed=0, locked_until=None, last_signin=now)
    audit.record(engine, who, "signin", name)
    return SignIn(True, name, row["role"])


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


# --- sessions -------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Session:
    operator: str
    role: str
    csrf: str
    token_hash: str


def start_session(
    engine: Engine, name: str, *, now: float | None = None, seconds: float = SESSION_SECONDS
) -> tuple[str, str]:
    """A new session for ``name``: (cookie token, CSRF token). Only the token's hash is kept."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(
            sessions.insert().values(
                token_hash=token_hash(token),
                operator=name,
                csrf=csrf,
                created=now,
                expires=now + seconds,
            )
        )
    return token, csrf


def session(engine: Engine, token: str, *, now: float | None = None) -> Session | None:
    now = time.time() if now is None else now
    q = (
        select(sessions.c.operator, operators.c.role, sessions.c.csrf, sessions.c.token_hash)
        .join(operators, operators.c.name == sessions.c.operator)
        .where(
            sessions.c.token_hash == token_hash(token),
            sessions.c.expires > now,
            operators.c.enabled.is_(True),
        )
    )
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return None if row is None else Session(*row)


def end_session(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash(token)))


def end_sessions(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(sessions).where(sessions.c.operator == name))
