"""Signed commands from the central office: checked, de-duplicated, carried out, acknowledged.

A command is refused when it is not for this door, past ``expires``, valid for longer than
``command_max_age_seconds`` (``expires - issued``, and ``expires - now``: a command issued in
the future cannot stretch the window), or its ``id`` was already seen. Seen ids are kept in the
store's ``seen_commands`` table until their command expires, written before the command is
carried out, whatever the journal's pruning; a restart reloads them, so no restart and no
pruning reopens the replay window.

Every accepted command is acknowledged by a ``command_ack`` event in the journal (so it
reaches the central office on ``events`` like any other), with ``result`` ``ok`` or
``refused`` and a ``reason``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from edgegate.contract.messages import Command, EnrolFingerArgs, rfc3339
from edgegate.contract.signing import RejectedMessage
from edgegate.core.decision import DoorMode
from edgegate.store import journal, seen_commands
from edgegate.store.store import AsyncStore
from edgegate.sync.ports import DoorControl, DoorJournalPort

log = structlog.get_logger(__name__)

ACK = "command_ack"


class CommandHandler:
    def __init__(
        self,
        door: DoorControl,
        journal: DoorJournalPort,
        store: AsyncStore,
        *,
        site: str,
        door_id: str,
        max_age_seconds: float,
        on_sync: Callable[[str], None],
        on_silence: Callable[[str], bool] | None = None,
        on_doctor: Callable[[str], None] | None = None,
        on_reset_presence: Callable[[str], None] = lambda _source: None,
        on_enrol_finger: Callable[[str, EnrolFingerArgs], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.door = door
        self.journal = journal
        self.store = store
        self.site = site
        self.door_id = door_id
        self.max_age = max_age_seconds
        self.on_sync = on_sync
        # The alarm output (None: no [gpio] siren) and the live doctor (edgegate/daemon/).
        self.on_silence = on_silence
        self.on_doctor = on_doctor
        # Forget who is in the door's area (after an evacuation), journaled by the door.
        self.on_reset_presence = on_reset_presence
        # Starts a finger enrolment on the door's sensor for the office (None: no
        # [fingerprint]); raises ValueError when it cannot start (busy, sensor down).
        self.on_enrol_finger = on_enrol_finger
        self.clock = clock
        self._seen: dict[str, float] = {}  # command id -> expires (UNIX seconds)
        # Command name -> what it does (raises ValueError when the door refuses it).
        self._handlers: dict[str, Callable[[Command, str], None]] = {
            "lockdown": self._set_mode,
            "normal": self._set_mode,
            "emergency": self._set_mode,
            "attended": self._set_mode,
            "unlock": self._release,
            "staff_release": self._release,
            "lock": lambda _cmd, source: self.door.lock(source),
            "sync": lambda _cmd, _source: self.on_sync("command"),
            "silence": self._silence,
            "doctor": self._doctor,
            "reset_presence": lambda _cmd, source: self.on_reset_presence(source),
            "enrol_finger": self._enrol_finger,
        }

    async def load_seen(self) -> None:
        """Ids of accepted commands that have not expired yet count as seen."""
        self._seen.update(await self.store.call(seen_commands.live, self.clock()))

    def check(self, cmd: Command) -> None:
        """Raise RejectedMessage (wrong_door, expired, replayed); else remember the id."""
        if cmd.site != self.site or cmd.door not in (self.door_id, "all"):
            raise RejectedMessage("wrong_door", f"for {cmd.site}/{cmd.door}")
        now = self.clock()
        expires = cmd.expires.timestamp()
        if expires <= now:
            raise RejectedMessage("expired", f"expired at {cmd.expires.isoformat()}")
        if max(expires - cmd.issued.timestamp(), expires - now) > self.max_age:
            raise RejectedMessage("expired", "validity longer than command_max_age_seconds")
        for cid, exp in list(self._seen.items()):
            if exp <= now:
                del self._seen[cid]
        if cmd.id in self._seen:
            raise RejectedMessage("replayed", f"command {cmd.id} already seen")
        self._seen[cmd.id] = expires

    async def execute(self, cmd: Command) -> journal.Event:
        """Carry out a checked command; journal and return its ``command_ack``."""
        # Remembered before it acts: a crash in between loses this command, never repeats it.
        await self.store.call(seen_commands.remember, cmd.id, cmd.expires.timestamp(), self.clock())
        result, reason = "ok", ""
        try:
            self._dispatch(cmd)
        except (ValueError, RuntimeError) as exc:
            result, reason = "refused", str(exc) or type(exc).__name__
        log.info(
            "command_executed", cmd=cmd.cmd, cmd_id=cmd.id, by=cmd.by, result=result, reason=reason
        )
        fields: dict[str, Any] = {
            "cmd_id": cmd.id,
            "cmd": cmd.cmd,
            "by": cmd.by,
            "result": result,
            "expires": rfc3339(cmd.expires),
        }
        if reason:
            fields["reason"] = reason
        return await self.journal.record(ACK, **fields)

    def _dispatch(self, cmd: Command) -> None:
        handler = self._handlers.get(cmd.cmd)
        if handler is None:  # pragma: no cover - Command.cmd admits nothing else
            raise ValueError(f"unknown command {cmd.cmd}")
        handler(cmd, f"command:{cmd.id}")

    def _set_mode(self, cmd: Command, source: str) -> None:
        self.door.set_mode(cmd.cmd, source)
        if cmd.cmd == "normal" and self.door.emergency:
            raise ValueError("the fire input is still active; the emergency stays on")

    def _silence(self, cmd: Command, _source: str) -> None:
        if self.on_silence is None:
            raise ValueError("this door has no alarm output ([gpio] siren)")
        if not self.on_silence(cmd.by or "central"):
            raise ValueError("the alarm output was not sounding")

    def _doctor(self, _cmd: Command, source: str) -> None:
        if self.on_doctor is None:
            raise ValueError("the live doctor is not available")
        self.on_doctor(source)

    def _enrol_finger(self, cmd: Command, _source: str) -> None:
        # Acknowledged as started (or refused); the steps and the sealed template follow on
        # the door's ``enrol`` topic (docs/mqtt.md).
        if self.on_enrol_finger is None:
            raise ValueError("this door has no fingerprint reader")
        args = EnrolFingerArgs.model_validate(cmd.args)  # ValidationError is a ValueError
        self.on_enrol_finger(cmd.id, args)

    def _release(self, cmd: Command, source: str) -> None:
        person = cmd.args.get("person")
        if person is not None and not isinstance(person, str):
            raise ValueError("args.person must be a string")
        if self.door.mode is DoorMode.LOCKDOWN and cmd.cmd == "unlock":
            raise ValueError("the door is in lockdown")
        self.door.staff_release(cmd.by or "central", source, person)
