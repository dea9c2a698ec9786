"""Parsing what doors send the central office. Pure functions: bytes in, value or error out.

Doors are many and some run old or broken software; nothing a door sends may stop the central
office. Every parser raises ``BadMessage`` (with a counter name) for anything it cannot take.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from edgegate.contract import messages as m
from edgegate.contract.topics import door_of
from edgegate.errors import EdgegateError

M = TypeVar("M", m.SnapshotRequest, m.LocalPeople, m.EnrolProgress)
# What paho hands over as a message payload.
Payload = bytes | bytearray

# Doors' payloads are small; anything bigger is refused before parsing.
MAX_INBOUND = 256 * 1024
ID_MAX = 128
_EPOCH = re.compile(m.EPOCH_PATTERN)


class BadMessage(EdgegateError, ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Inbound:
    site: str
    door: str
    kind: str  # events, availability, state, telemetry, credentials/request


KINDS = (
    "events",
    "availability",
    "state",
    "telemetry",
    "credentials/request",
    "credentials/local",
    "enrol",
)


def classify(topic: str, site: str) -> Inbound:
    try:
        t_site, door, rest = door_of(topic)
    except ValueError as exc:
        raise BadMessage("bad_topic", str(exc)) from None
    if t_site != site or rest not in KINDS or door == "all":
        raise BadMessage("bad_topic", topic[:200])
    return Inbound(t_site, door, rest)


def json_object(payload: Payload) -> dict[str, Any]:
    if len(payload) > MAX_INBOUND:
        raise BadMessage("too_large", f"{len(payload)} bytes")
    try:
        value = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadMessage("malformed", f"not JSON: {str(exc)[:100]}") from None
    if not isinstance(value, dict):
        raise BadMessage("malformed", "not a JSON object")
    return value


def _text(event: dict[str, Any], key: str, limit: int = ID_MAX) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise BadMessage(
            "malformed", f"event {key} must be a string of 1..{limit} characters, no NUL"
        )
    return value


def parse_event(payload: Payload, where: Inbound) -> dict[str, Any]:
    """One event object: ``id``, ``seq``, ``ts``, ``type`` required; ``site``/``door``, when
    present, must be those of the topic (a door cannot write into another door's history);
    ``epoch``, when present, a journal epoch (a door from before epochs sends none)."""
    event = json_object(payload)
    _text(event, "id")
    _text(event, "ts", 64)
    _text(event, "type", 64)
    seq = event.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or seq >= 1 << 63:
        raise BadMessage("malformed", "event seq must be a non-negative integer")
    epoch = event.get("epoch", "")
    if not isinstance(epoch, str) or not _EPOCH.fullmatch(epoch):
        raise BadMessage("malformed", "event epoch must be up to 64 of A-Z a-z 0-9 _ -")
    for key, expected in (("site", where.site), ("door", where.door)):
        if key in event and event[key] != expected:
            raise BadMessage("wrong_door", f"event {key} {str(event[key])[:64]!r} on {expected}")
    return event


def parse_availability(payload: Payload) -> str:
    text = payload.decode("utf-8", "replace").strip()
    if text not in ("online", "offline"):
        raise BadMessage("malformed", f"availability {text[:32]!r}")
    return text


def _door_message(payload: Payload, where: Inbound, model: type[M], name: str) -> M:
    """A door's JSON message of the contract, for the door of its topic."""
    data = json_object(payload)
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(message)"
        raise BadMessage("malformed", f"{name} {loc}: {first['msg']}") from None
    site, door = message.site, message.door
    if (site, door) != (where.site, where.door):
        raise BadMessage("wrong_door", f"message for {site}/{door}")
    return message


def parse_snapshot_request(payload: Payload, where: Inbound) -> m.SnapshotRequest:
    return _door_message(payload, where, m.SnapshotRequest, "snapshot_request")


def parse_local_people(payload: Payload, where: Inbound) -> m.LocalPeople:
    return _door_message(payload, where, m.LocalPeople, "local_people")


def parse_enrol_progress(payload: Payload, where: Inbound) -> m.EnrolProgress:
    return _door_message(payload, where, m.EnrolProgress, "enrol_progress")


def telemetry_version(telemetry: dict[str, Any]) -> int | None:
    """The credential version a door reports in its telemetry, if it does."""
    for key in ("credential_version", "credentials_version", "version"):
        value = telemetry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None
