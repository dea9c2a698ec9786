"""The durable outbox of outgoing notifications, and its first channel: signed webhooks.

Producers (the event fan-out below, the visitors' host notifications, the alarms' e-mail)
only ``enqueue`` a row in the office store; ``Dispatcher`` delivers due rows on its own task,
so a slow or dead receiver never holds up the archive. A failed attempt is logged in
``outbox_deliveries`` and retried with exponential backoff (``backoff``) up to
``MAX_ATTEMPTS``; then the row is ``failed`` and stays visible in the delivery log.

Channels are a dispatch table (``CHANNELS``): a channel is a function that sends one row and
raises ``DeliveryError`` on failure. Another branch adds ``email`` with ``register_channel``.

Webhooks are signed by ``edgegate/central/notify.py`` (``webhook_headers``), the one signing
path of the office's webhooks, the alarms' configured URLs included.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine

from edgegate.central.dialect import inserted_id
from edgegate.central.notify import sign as sign  # re-exported for receivers' checks
from edgegate.central.notify import webhook_headers
from edgegate.central.schema.console import cursors, deliveries, outbox, webhooks
from edgegate.central.services import Actor, audit
from edgegate.errors import EdgegateError

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 10
TIMEOUT_SECONDS = 10.0
BATCH = 50


class DeliveryError(EdgegateError):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def backoff(attempts: int) -> float:
    """Seconds until the next try after ``attempts`` failures: 5 s doubling, at most 1 h."""
    return min(5.0 * 2 ** max(attempts - 1, 0), 3600.0)


def enqueue(
    engine: Engine, channel: str, target: str, kind: str, body: str, *, now: float | None = None
) -> int:
    now = time.time() if now is None else now
    with engine.begin() as conn:
        res = conn.execute(
            outbox.insert().values(
                channel=channel,
                target=target,
                kind=kind,
                body=body,
                created=now,
                attempts=0,
                next_attempt=now,
                status="pending",
            )
        )
    return inserted_id(res)


# --- webhooks: registration -----------------------------------------------------------


def add_webhook(engine: Engine, actor: Actor, url: str, event_types: list[str]) -> tuple[int, str]:
    """Register a URL; returns (id, secret). The secret is shown this once."""
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise ValueError("the URL must start with http:// or https://")
    types = sorted({t.strip() for t in event_types if t.strip()}) or ["*"]
    secret = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        res = conn.execute(
            webhooks.insert().values(
                url=url,
                event_types=types,
                secret=secret,
                enabled=True,
                created=time.time(),
                created_by=actor.name,
            )
        )
    hook_id = inserted_id(res)
    # The URL may carry a token in its query: the audit keeps scheme and host only.
    audit.record(engine, actor, "webhook_added", str(hook_id), url=_safe_url(url), types=types)
    return hook_id, secret


def _safe_url(url: str) -> str:
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}{':' + str(u.port) if u.port else ''}{u.path}"


def remove_webhook(engine: Engine, actor: Actor, hook_id: int) -> None:
    with engine.begin() as conn:
        cur = conn.execute(delete(webhooks).where(webhooks.c.id == hook_id))
    if cur.rowcount == 0:
        raise ValueError(f"no webhook {hook_id}")
    audit.record(engine, actor, "webhook_removed", str(hook_id))


def list_webhooks(engine: Engine) -> list[dict[str, Any]]:
    cols = [c for c in webhooks.c if c.name != "secret"]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(*cols).order_by(webhooks.c.id)).mappings()]


def delivery_log(
    engine: Engine, *, limit: int = 100, failed_only: bool = False
) -> list[dict[str, Any]]:
    q = (
        select(
            deliveries,
            outbox.c.channel,
            outbox.c.target,
            outbox.c.kind,
            outbox.c.status,
        )
        .join(outbox, outbox.c.id == deliveries.c.outbox_id)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    )
    if failed_only:
        q = q.where(deliveries.c.ok.is_(False))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def wanted(engine: Engine) -> bool:
    """Whether any enabled webhook exists, i.e. whether archived events must be read at all."""
    with engine.connect() as conn:
        q = select(webhooks.c.id).where(webhooks.c.enabled.is_(True)).limit(1)
        return conn.execute(q).first() is not None


def fan_out(
    engine: Engine, events: list[dict[str, Any]], cursor: tuple[str, int] | None = None
) -> int:
    """Outbox rows for every enabled webhook that wants these events; returns how many.
    With ``cursor`` (name, position) the fan-out's place in the archive moves in the same
    transaction as the rows: a crash repeats nothing and skips nothing."""
    with engine.connect() as conn:
        hooks = conn.execute(
            select(webhooks.c.id, webhooks.c.event_types).where(webhooks.c.enabled.is_(True))
        ).all()
    rows = []
    now = time.time()
    for ev in events:
        for hook_id, types in hooks:
            if "*" in types or ev.get("type") in types:
                body = json.dumps({"event": ev}, separators=(",", ":"), sort_keys=True)
                rows.append(
                    {
                        "channel": "webhook",
                        "target": str(hook_id),
                        "kind": str(ev.get("type", "")),
                        "body": body,
                        "created": now,
                        "attempts": 0,
                        "next_attempt": now,
                        "status": "pending",
                    }
                )
    with engine.begin() as conn:
        if rows:
            conn.execute(outbox.insert(), rows)
        if cursor is not None:
            _move_cursor(conn, *cursor)
    return len(rows)


def get_cursor(engine: Engine, name: str) -> int | None:
    with engine.connect() as conn:
        row = conn.execute(select(cursors.c.position).where(cursors.c.name == name)).first()
    return None if row is None else int(row[0])


def set_cursor(engine: Engine, name: str, position: int) -> None:
    with engine.begin() as conn:
        _move_cursor(conn, name, position)


def _move_cursor(conn: Connection, name: str, position: int) -> None:
    cur = conn.execute(update(cursors).where(cursors.c.name == name).values(position=position))
    if cur.rowcount == 0:
        conn.execute(cursors.insert().values(name=name, position=position))


# --- delivery ---------------------------------------------------------------------------

Channel = Callable[[Engine, dict[str, Any], httpx.AsyncClient], Awaitable[int | None]]


async def send_webhook(engine: Engine, row: dict[str, Any], client: httpx.AsyncClient) -> int:
    with engine.connect() as conn:
        hook = conn.execute(
            select(webhooks.c.url, webhooks.c.secret, webhooks.c.enabled).where(
                webhooks.c.id == int(row["target"])
            )
        ).first()
    if hook is None or not hook[2]:
        raise DeliveryError("webhook removed or disabled")
    body = row["body"].encode()
    headers = webhook_headers(hook[1], body, row["kind"], str(row["id"]))
    try:
        resp = await client.post(hook[0], content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
    if resp.status_code >= 300:
        raise DeliveryError(f"HTTP {resp.status_code}", resp.status_code)
    return resp.status_code


CHANNELS: dict[str, Channel] = {"webhook": send_webhook}


def register_channel(name: str, channel: Channel) -> None:
    CHANNELS[name] = channel


def due(engine: Engine, now: float, limit: int = BATCH) -> list[dict[str, Any]]:
    q = (
        select(outbox)
        .where(outbox.c.status == "pending", outbox.c.next_attempt <= now)
        .order_by(outbox.c.next_attempt, outbox.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


@dataclass
class Dispatcher:
    """Delivers due outbox rows; run ``run_once`` on a timer (``central serve`` does)."""

    engine: Engine
    client: httpx.AsyncClient

    async def run_once(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        rows = due(self.engine, now)
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row: dict[str, Any]) -> None:
        started = time.monotonic()
        attempt = row["attempts"] + 1
        status_code: int | None = None
        error: str | None = None
        channel = CHANNELS.get(row["channel"])
        try:
            if channel is None:
                raise DeliveryError(f"no channel {row['channel']!r}")
            status_code = await channel(self.engine, row, self.client)
        except DeliveryError as exc:
            error, status_code = str(exc), exc.status_code
        except Exception as exc:  # a channel's bug must not stop the dispatcher
            log.exception("outbox_channel_failed", channel=row["channel"], id=row["id"])
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        now = time.time()
        if error is None:
            values: dict[str, Any] = {
                "status": "sent",
                "attempts": attempt,
                "done": now,
                "last_error": None,
            }
        elif attempt >= MAX_ATTEMPTS:
            values = {"status": "failed", "attempts": attempt, "done": now, "last_error": error}
        else:
            values = {
                "attempts": attempt,
                "next_attempt": now + backoff(attempt),
                "last_error": error,
            }
        with self.engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.id == row["id"]).values(**values))
            conn.execute(
                deliveries.insert().values(
                    outbox_id=row["id"],
                    attempt=attempt,
                    ts=now,
                    ok=error is None,
                    status_code=status_code,
                    error=error,
                    seconds=seconds,
                )
            )
        if error is None:
            log.info("outbox_delivered", channel=row["channel"], id=row["id"], attempt=attempt)
        else:
            # The target is a webhook id or an address, never the secret or the signed URL.
            log.warning(
                "outbox_delivery_failed",
                channel=row["channel"],
                id=row["id"],
                attempt=attempt,
                error=error,
                final=values.get("status") == "failed",
            )
