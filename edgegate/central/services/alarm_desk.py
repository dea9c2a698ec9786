"""What operators do with alarms, for the console, the REST API and the CLI alike: acknowledge
(the door's alarm output is silenced, never for a duress), clear, and release an assist naming
the person whose identity was checked. Every action is in the alarm's history and the office's
audit log; commands go through the commands service (recorded, audited, signed, sent).

The data side (states, history, escalation, reports) is ``edgegate/central/alarms.py``; the
equipment and maintenance side ``edgegate/central/maintenance.py``.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError

from edgegate.central.alarms import AlarmError, AlarmService, ensure_tables
from edgegate.central.maintenance import MaintenanceService
from edgegate.central.services import Actor, Office, audit, commands

log = structlog.get_logger(__name__)


class AlarmDesk:
    def __init__(self, office: Office) -> None:
        self.office = office
        c = office.config
        ensure_tables(office.engine)
        self.alarms = AlarmService(office.engine, c.alarms, c.central.site, office.changed)
        self.maintenance = MaintenanceService(office.engine, c.central.site)

    def refresh(self) -> None:
        """Take in what the archive holds now (also when no ``central serve`` runs). Best
        effort: a ``serve`` ingesting at the same moment wins (the unique event id), and
        this process shows what is there."""
        try:
            self.alarms.ingest(time.time(), limit=100_000)
        except DBAPIError as exc:
            log.info("alarm_refresh_skipped", reason=str(exc.orig))

    def acknowledge(self, actor: Actor, alarm_id: int, note: str) -> dict[str, Any]:
        now = time.time()
        alarm = self.alarms.acknowledge(alarm_id, actor.name, note, now)
        audit.record(self.office.engine, actor, "alarm_acknowledged", str(alarm_id), note=note)
        if self.alarms.silences_door(alarm):
            self._command(actor, alarm, "silence", "silence", now)
        return alarm

    def clear(self, actor: Actor, alarm_id: int, note: str) -> dict[str, Any]:
        alarm = self.alarms.clear(alarm_id, actor.name, note, time.time())
        audit.record(self.office.engine, actor, "alarm_cleared", str(alarm_id), note=note)
        return alarm

    def release(self, actor: Actor, alarm_id: int, person: str, note: str) -> dict[str, Any]:
        """Release the door of an assist for ``person`` (verified by ``actor``); the door
        journals ``staff_release`` with both. Raises AlarmError when it is no assist, and
        whatever the commands service raises when the command could not be sent."""
        alarm = self.alarms.get(alarm_id)
        if alarm["type"] != "assist_requested":
            raise AlarmError(f"alarm {alarm_id} is {alarm['type']}, not an assist")
        if not person:
            raise AlarmError("name the person whose identity you checked")
        now = time.time()
        message = self._command(actor, alarm, "staff_release", "release", now, person=person)
        text = f"person {person} verified; command {message['id']}" + (f"; {note}" if note else "")
        self.alarms.add_history(alarm_id, "released", actor.name, text, now)
        audit.record(
            self.office.engine,
            actor,
            "assist_released",
            str(alarm_id),
            door=alarm["door"],
            person=person,
            command=message["id"],
            note=note,
        )
        if alarm["state"] != "cleared":
            alarm = self.alarms.clear(alarm_id, actor.name, f"released {person}", now)
        return {**alarm, "command": message["id"]}

    def _command(
        self,
        actor: Actor,
        alarm: dict[str, Any],
        cmd: str,
        what: str,
        now: float,
        **kwargs: Any,
    ) -> dict[str, Any]:
        try:
            message = commands.send(self.office, actor, alarm["door"], cmd, **kwargs)
        except Exception as exc:
            self.alarms.add_history(alarm["id"], f"{what}_not_sent", actor.name, str(exc), now)
            log.warning("alarm_command_not_sent", id=alarm["id"], cmd=cmd, error=str(exc))
            if what == "silence":
                # The acknowledgement stands; the siren stops on its own after siren_seconds.
                return {"id": ""}
            raise
        self.alarms.add_history(
            alarm["id"], f"{what}_sent", actor.name, f"command {message['id']}", now
        )
        return message
