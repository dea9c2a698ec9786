"""The office's own broker link, as `central doors` and the console's doors page show it.

``central serve`` knows whether it is connected to the broker; the CLI and the console run in
other processes. Each serve instance keeps its row in the store's ``instances`` table
(``central/leader.py``): its broker state (``connecting``, ``connected``, ``disconnected``),
since when, the last error, and a heartbeat at every duty check. A row whose heartbeat is
older than ``stale_after`` belongs to a serve that died or hangs: what it last said is
history, not news (``state`` ``stale``). A clean stop removes the row.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, select

from edgegate.central.engine import reads
from edgegate.central.leader import STALE_CHECKS
from edgegate.central.schema.archive import instances


def stale_after(duty_check_seconds: float) -> float:
    """Seconds without a heartbeat after which an instance is taken for dead (the same rule
    as ``leader.Duties.claim_instance``)."""
    return STALE_CHECKS * duty_check_seconds


def link_state(row: dict[str, Any], now: float, stale: float) -> str:
    """The state to show for an instance row: its broker state, or ``stale``."""
    return "stale" if now - row["heartbeat"] > stale else row["broker"]


@reads
def office_links(conn: Connection, now: float, stale: float) -> list[dict[str, Any]]:
    """Every serve instance's broker link, freshest first (empty: no serve runs)."""
    rows = conn.execute(select(instances).order_by(instances.c.heartbeat.desc())).mappings()
    return [
        {
            "instance": r["id"],
            "state": link_state(dict(r), now, stale),
            "broker_state": r["broker"],  # as the instance last reported it
            "since": r["broker_since"],
            "error": r["broker_error"],
            "heartbeat": r["heartbeat"],
            "heard": max(0.0, now - r["heartbeat"]),
            "leader": bool(r["leader"]),
        }
        for r in rows
    ]


def when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def describe(link: dict[str, Any]) -> str:
    """One instance's link in one line for people (the CLI's and the console's words)."""
    state, since, error = link["state"], link["since"], link["error"]
    name = link["instance"]
    err = f"; last error: {error}" if error else ""
    if state == "connected":
        return f"office ({name}): connected to the broker since {when(since)}"
    if state == "disconnected":
        return f"office ({name}): NOT CONNECTED to the broker since {when(since)}{err}"
    if state == "connecting":
        return f"office ({name}): connecting to the broker since {when(since)}{err}"
    return (
        f"office ({name}): NO WORD from central serve since {when(link['heartbeat'])} "
        f"(stopped or hung); it last said {link['broker_state']}{err}"
    )


def describe_all(links: list[dict[str, Any]]) -> list[str]:
    if not links:
        return ["office: no central serve is running on this store: nothing receives the doors"]
    return [describe(link) for link in links]
