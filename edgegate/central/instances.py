"""The office's own broker link, as `central doors` and the console's doors page show it.

``central serve`` knows whether it is connected to the broker; the CLI and the console run in
other processes. So serve keeps its row in the store's ``instances`` table: its broker state
(``connecting``, ``connected``, ``disconnected``, ``stopped``), since when, the last error,
and a heartbeat it rewrites every ``HEARTBEAT_SECONDS`` (and at every change). A reader that
finds no heartbeat newer than ``STALE_SECONDS`` knows serve is gone or hung: the broker state
it recorded is then history, not news (``office_link`` says ``stale``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from edgegate.central.dialect import upsert
from edgegate.central.engine import reads
from edgegate.central.schema.archive import instances

HEARTBEAT_SECONDS = 5.0
# Three heartbeats missed: a loaded machine may delay one, not three.
STALE_SECONDS = 3 * HEARTBEAT_SECONDS
# Rows of instances that stopped or went silent this long ago are dropped at a start.
FORGET_SECONDS = 86400.0

STATES = ("connecting", "connected", "disconnected", "stopped")


@dataclass(slots=True)
class BrokerLink:
    """One serve's link as it knows it (changed on its event loop only)."""

    id: str
    host: str
    pid: int
    started: float
    state: str = "connecting"
    since: float = 0.0
    error: str = ""

    def change(self, state: str, now: float, error: str | None = None) -> bool:
        """Move to ``state`` (``since`` moves only when the state changes); the error is
        kept until a new one or a connection clears it. True when something changed."""
        assert state in STATES, state
        before = (self.state, self.error)
        if state != self.state:
            self.state, self.since = state, now
        if state == "connected":
            self.error = ""
        elif error is not None:
            self.error = error[:500]
        return (self.state, self.error) != before


def report(conn: Connection, link: BrokerLink, now: float) -> None:
    """Write the link and the heartbeat (insert at the first report)."""
    values = {
        "id": link.id,
        "host": link.host,
        "pid": link.pid,
        "started": link.started,
        "heartbeat": now,
        "broker": link.state,
        "broker_since": link.since,
        "broker_error": link.error,
    }
    stmt = upsert(conn, instances).values(**values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={k: stmt.excluded[k] for k in values if k not in ("id", "host", "pid", "started")},
        )
    )


def forget_old(conn: Connection, now: float) -> int:
    """Drop the rows of instances silent (or stopped) for ``FORGET_SECONDS``."""
    cutoff = now - FORGET_SECONDS
    return conn.execute(delete(instances).where(instances.c.heartbeat < cutoff)).rowcount


def stopped(conn: Connection, instance_id: str, now: float) -> None:
    conn.execute(
        update(instances)
        .where(instances.c.id == instance_id)
        .values(broker="stopped", broker_since=now, heartbeat=now)
    )


@reads
def office_link(conn: Connection, now: float | None = None) -> dict[str, Any]:
    """The office's broker link for the doors board: the freshest instance's row, with
    ``state`` ``stale`` when its heartbeat is older than ``STALE_SECONDS`` and ``none`` when
    no serve ever ran on this store. ``heard`` is the heartbeat's age in seconds."""
    now = time.time() if now is None else now
    row = (
        conn.execute(select(instances).order_by(instances.c.heartbeat.desc()).limit(1))
        .mappings()
        .first()
    )
    if row is None:
        return {"state": "none", "since": None, "error": "", "heard": None, "instance": None}
    state = row["broker"]
    if state != "stopped" and now - row["heartbeat"] > STALE_SECONDS:
        state = "stale"
    return {
        "state": state,
        "broker_state": row["broker"],  # as serve last reported it
        "since": row["broker_since"],
        "error": row["broker_error"],
        "heard": max(0.0, now - row["heartbeat"]),
        "heartbeat": row["heartbeat"],
        "instance": row["id"],
    }


def when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def describe(link: dict[str, Any]) -> str:
    """The link in one line for people (the CLI's and the console's words)."""
    state, since, error = link["state"], link["since"], link["error"]
    err = f"; last error: {error}" if error else ""
    if state == "connected":
        return f"office: connected to the broker since {when(since)} (serve {link['instance']})"
    if state == "disconnected":
        return f"office: NOT CONNECTED to the broker since {when(since)}{err}"
    if state == "connecting":
        return f"office: connecting to the broker since {when(since)}{err}"
    if state == "stopped":
        return f"office: central serve stopped at {when(since)}: nothing receives the doors"
    if state == "stale":
        return (
            f"office: NO WORD from central serve since {when(link['heartbeat'])} (stopped or "
            f"hung); it last said {link['broker_state']}{err}"
        )
    return "office: central serve has not run on this store: nothing receives the doors"
