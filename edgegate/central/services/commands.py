"""Commands to one door or all: built and checked against the contract, recorded in the
master's ``commands`` table, audited, then sent through the office's hook. Never queued: a
command the broker did not take is reported as not sent (a late unlock is a hazard).

Recording and marking sent are announced to every ``central serve`` instance's live views
(``archive.changing``: a NOTIFY in the transaction on PostgreSQL, the office's ``changed``
hook inside serve), so every console's commands page shows a command the moment it is issued
and sent, whoever sent it; the doors' acknowledgements reach them as archived events."""

from __future__ import annotations

import time
from typing import Any, get_args

from edgegate.central import archive, store
from edgegate.central.publisher import command_message, command_topic
from edgegate.central.services import Actor, Office, audit
from edgegate.contract import messages as m
from edgegate.errors import EdgegateError

# What the commands page offers: every command but the ones with their own page and
# arguments (enrol_finger: the person's page, services/biometrics.py).
COMMANDS: tuple[str, ...] = tuple(c for c in get_args(m.CommandName) if c != "enrol_finger")
# Ask for a confirmation in the console (and ``confirm=true`` in the API).
DANGEROUS = frozenset({"emergency", "lockdown"})


class CommandRefused(EdgegateError, ValueError):
    pass


def needs_confirmation(door: str, cmd: str) -> bool:
    return cmd in DANGEROUS or door == "all"


def build(
    office: Office,
    actor: Actor,
    door: str,
    cmd: str,
    *,
    ttl: float | None = None,
    seconds: float | None = None,
    person: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    c = office.config.central
    args: dict[str, Any] = dict(extra or {})
    if seconds is not None:
        if cmd != "unlock":
            raise CommandRefused("seconds goes with unlock only")
        args["seconds"] = seconds
    if person:
        if cmd != "staff_release":
            raise CommandRefused("a person goes with staff_release only")
        args["person"] = person
    try:
        return command_message(
            c.site, door, cmd, ttl=ttl or c.command_ttl_seconds, by=actor.name, args=args
        )
    except ValueError as exc:
        raise CommandRefused(f"not a valid command: {exc}") from None


def record(office: Office, actor: Actor, message: dict[str, Any]) -> None:
    with archive.changing(office.master(), archive.LIVE_COMMANDS, office.changed) as conn:
        archive.record_command(conn, message)
    audit.record(
        office.engine,
        actor,
        "command",
        message["door"],
        cmd=message["cmd"],
        id=message["id"],
        args=message["args"],
    )


def mark_sent(office: Office, message: dict[str, Any]) -> None:
    with archive.changing(office.master(), archive.LIVE_COMMANDS, office.changed) as conn:
        archive.mark_command_sent(conn, message["id"], time.time())


def send(office: Office, actor: Actor, door: str, cmd: str, **kwargs: Any) -> dict[str, Any]:
    """Build, record, audit and send; raises when the broker did not take it."""
    return send_built(office, actor, build(office, actor, door, cmd, **kwargs))


def send_built(office: Office, actor: Actor, message: dict[str, Any]) -> dict[str, Any]:
    """Record, audit and send a message made by ``build``; raises when the broker did not
    take it."""
    if office.send_command is None:
        raise CommandRefused("this office process cannot reach the broker")
    door = message["door"]
    record(office, actor, message)
    office.send_command(command_topic(office.config.central.site, door), message)
    mark_sent(office, message)
    return message


def recent(office: Office, limit: int = 30) -> list[dict[str, Any]]:
    with store.reading(office.master()) as conn:
        rows = archive.recent_commands(conn, limit)
        acks = archive.command_acks(conn, [r["id"] for r in rows])
    for r in rows:
        r["acks"] = acks.get(r["id"], [])
    return rows
