"""API tokens, one per integration: a role, shown once, stored as a SHA-256 hash, revocable.

A token is ``eg_<prefix>_<secret>``; the prefix (not secret) identifies it in lists and logs.
A SHA-256 (not argon2) is enough: the secret is 32 random bytes, not a human password, and
every API request checks it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from edgegate.central.schema.console import api_tokens
from edgegate.central.services import ROLES, Actor, audit
from edgegate.central.services.operators import NAME_RE, OperatorError


@dataclass(frozen=True, slots=True)
class TokenUser:
    name: str
    role: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(engine: Engine, actor: Actor, name: str, role: str) -> str:
    """A new token; the returned text is the only time it is ever visible."""
    if not NAME_RE.match(name):
        raise OperatorError(f"bad token name {name!r}: letters, digits, _ . @ -, up to 64")
    if role not in ROLES:
        raise OperatorError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    prefix = secrets.token_hex(4)
    token = f"eg_{prefix}_{secrets.token_urlsafe(32)}"
    try:
        with engine.begin() as conn:
            conn.execute(
                api_tokens.insert().values(
                    name=name,
                    role=role,
                    token_hash=_hash(token),
                    prefix=prefix,
                    created=time.time(),
                    created_by=actor.name,
                )
            )
    except IntegrityError:
        raise OperatorError(f"a token named {name!r} exists already") from None
    audit.record(engine, actor, "token_created", name, role=role, prefix=prefix)
    return token


# ``last_used`` is written at most this often per token: every API request checks its token,
# and a write per request would take the store's write lock in front of the request's own
# change (a lost card waited behind it); a minute is precise enough for "last used".
LAST_USED_EVERY = 60.0


def check(engine: Engine, token: str, *, now: float | None = None) -> TokenUser | None:
    now = time.time() if now is None else now
    h = _hash(token)
    with engine.connect() as conn:
        row = conn.execute(
            select(
                api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.last_used
            ).where(api_tokens.c.token_hash == h, api_tokens.c.revoked.is_(None))
        ).first()
    if row is None:
        return None
    if row[3] is None or now - row[3] >= LAST_USED_EVERY:
        with engine.begin() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == row[0]).values(last_used=now))
    return TokenUser(row[1], row[2])


def revoke(engine: Engine, actor: Actor, name: str) -> None:
    with engine.begin() as conn:
        cur = conn.execute(
            update(api_tokens)
            .where(api_tokens.c.name == name, api_tokens.c.revoked.is_(None))
            .values(revoked=time.time())
        )
    if cur.rowcount == 0:
        raise OperatorError(f"no active token {name!r}")
    audit.record(engine, actor, "token_revoked", name)


def list_all(engine: Engine) -> list[dict[str, Any]]:
    cols = [c for c in api_tokens.c if c.name != "token_hash"]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(*cols).order_by(api_tokens.c.id)).mappings()]
