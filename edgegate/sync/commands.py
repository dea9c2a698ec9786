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
from dataclasses import replace
from typing import Any

import structlog

from edgegate.contract.messages import Command, rfc3339
from edgegate.contract.signing import RejectedMessage
from edgegate.core.door_state import In, Input
from edgegate.daemon.door import Door
from edgegate.store import journal, seen_commands

log = structlog.get_logger(__name__)

ACK = "command_ack"


class CommandHandler:
    def __init__(
        self,
        door: Door,
        *,
        max_age_seconds: float,
        on_sync: Callable[[str], None],
        on_silence: Callable[[str], bool] | None = None,
        on_doctor: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.door = door
        self.max_age = max_age_seconds
        self.on_sync = on_sync
        # The alarm output (None: no [gpio] siren) and the live doctor (edgegate/daemon/).
        self.on_silence = on_silence
        self.on_doctor = on_doctor
        self.clock = clock
        self._seen: dict[str, float] = {}  # command id -> expires (UNIX seconds)

    async def load_seen(self) -> None:
        """Ids of accepted commands that have not expired yet count as seen."""
        self._seen.update(await self.door.store.call(seen_commands.live, self.clock()))

    def check(self, cmd: Command) -> None:
        """Raise RejectedMessage (wrong_door, expired, replayed); else remember the id."""
        cfg = self.door.config.door
        if cmd.site != cfg.site or cmd.door not in (cfg.id, "all"):
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
        await self.door.store.call(
            seen_commands.remember, cmd.id, cmd.expires.timestamp(), self.clock()
        )
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
        return await self.door.record(ACK, **fields)

    def _dispatch(self, cmd: Command) -> None:
        door, source = self.door, f"command:{cmd.id}"
        name = cmd.cmd
        if name in ("lockdown", "normal", "emergency", "attended"):
            door.set_mode(name, source)
            if name == "normal" and door.rules.state.emergency:
                raise ValueError("the fire input is still active; the emergency stays on")
        elif name in ("unlock", "staff_release"):
            person = cmd.args.get("person")
            if person is not None and not isinstance(person, str):
                raise ValueError("args.person must be a string")
            if door.rules.state.mode.value == "lockdown" and name == "unlock":
                raise ValueError("the door is in lockdown")
            door.staff_release(cmd.by or "central", source, person)
        elif name == "lock":
            lock_now(door)
        elif name == "sync":
            self.on_sync("command")
        elif name == "silence":
            if self.on_silence is None:
                raise ValueError("this door has no alarm output ([gpio] siren)")
            if not self.on_silence(cmd.by or "central"):
                raise ValueError("the alarm output was not sounding")
        elif name == "reset_presence":
            door.reset_presence(source)
        elif name == "doctor":
            if self.on_doctor is None:
                raise ValueError("the live doctor is not available")
            self.on_doctor(f"command:{cmd.id}")
        else:  # pragma: no cover - Command.cmd admits nothing else
            raise ValueError(f"unknown command {name}")


def lock_now(door: Door) -> None:
    """End a running release at once (the lock command). Emergency releases are not ended:
    only ``normal`` resets an emergency, and only when the fire input is clear."""
    rules = door.rules
    if rules.state.emergency:
        raise ValueError("emergency: the locks stay released until 'normal'")
    if rules.state.release_until is not None:
        rules.state = replace(rules.state, release_until=door.monotonic())
    rules.apply(Input(In.TICK, door.monotonic()))
