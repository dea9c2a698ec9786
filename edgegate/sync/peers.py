"""What a door hears from its peers and the office over the broker, for the site rules.

- **Area peers** (``[area] peers``): their ``events``. Each grant with a person, a direction
  and this door's area is merged into this door's presence in the area's total order
  (``edgegate/core/areas.py``), so anti-passback and occupancy hold across the area's doors
  without the office. A peer's grant is not journaled here: the peer journaled it.
- **The interlock peer** (``[interlock] peer``): its retained ``state`` and ``availability``.
- **The office** (``[offline]``): each ``central serve`` instance's retained availability.

Everything arrives on the loop through ``handlers`` (a topic -> handler table the sync service
subscribes from); nothing here is ever awaited by a decision: it only updates what the next
decision reads. Bad messages are counted and logged, never raised.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from edgegate.config.models import Config
from edgegate.contract.topics import PREFIX, DoorTopics, office_availability_filter
from edgegate.core.areas import Passage
from edgegate.store.journal import parse_rfc3339

log = structlog.get_logger(__name__)

Handler = Callable[[str, bytes], None]


class SiteRulesPort(Protocol):
    """What the peers feed: the door's run-time site rules (edgegate/daemon/site_rules.py)."""

    def office_changed(self, online: bool) -> None: ...
    def peer_state(self, state: dict[str, Any]) -> None: ...
    def peer_availability(self, online: bool) -> None: ...
    def link_changed(self, up: bool) -> None: ...


# Applies one peer passage to the store; True when it changed this door's presence.
MergePresence = Callable[[Passage], Awaitable[bool]]
Spawn = Callable[[Awaitable[Any]], None]


class Peers:
    def __init__(
        self, config: Config, rules: SiteRulesPort, merge: MergePresence, spawn: Spawn
    ) -> None:
        door = config.door
        self.site = door.site
        self.area = door.area or door.zone or door.id
        self.rules = rules
        self.merge = merge
        self.spawn = spawn
        self.counters: Counter[str] = Counter()
        self.handlers: dict[str, Handler] = {}
        self.filters: dict[str, Handler] = {}  # wildcard subscriptions, matched by prefix
        self.area_peers = frozenset(p for p in config.area.peers if p != door.id)
        for peer in sorted(self.area_peers):
            self.handlers[DoorTopics(self.site, peer).events] = self._peer_event
        if config.interlock is not None:
            topics = DoorTopics(self.site, config.interlock.peer)
            self.handlers[topics.state] = self._interlock_state
            self.handlers[topics.availability] = self._interlock_availability
        self._offices: dict[str, bool] = {}
        if config.offline.after_minutes > 0:
            self.filters[office_availability_filter(self.site)] = self._office

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(t, 1) for t in (*self.handlers, *self.filters)]

    def handler_for(self, topic: str) -> Handler | None:
        handler = self.handlers.get(topic)
        if handler is not None:
            return handler
        office_root = f"{PREFIX}/{self.site}/office/"
        if topic.startswith(office_root) and topic.endswith("/availability"):
            return self.filters.get(office_availability_filter(self.site))
        return None

    def link_changed(self, up: bool) -> None:
        if not up:
            self._offices.clear()
        self.rules.link_changed(up)

    def _bad(self, topic: str, why: str) -> None:
        self.counters[f"rejected_{why}"] += 1
        log.warning("peer_message_rejected", topic=topic, reason=why)

    # --- area peers ---------------------------------------------------------------------------
    def _peer_event(self, topic: str, payload: bytes) -> None:
        try:
            event = json.loads(payload)
            if not isinstance(event, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            self._bad(topic, "malformed")
            return
        if event.get("type") != "access_granted" or event.get("area") != self.area:
            return
        person, direction = event.get("person"), event.get("direction")
        if not isinstance(person, str) or not person or direction not in ("in", "out"):
            return
        try:
            ts = parse_rfc3339(str(event["ts"]))
            seq = int(event["seq"])
            door = str(event["door"])
        except (KeyError, TypeError, ValueError):
            self._bad(topic, "malformed")
            return
        if door not in self.area_peers:
            self._bad(topic, "not_a_peer")
            return
        self.spawn(self._apply(Passage(person, self.area, direction, ts, door, seq)))

    async def _apply(self, passage: Passage) -> None:
        try:
            changed = await self.merge(passage)
        except Exception:
            self.counters["merge_failed"] += 1
            log.exception("peer_presence_failed", door=passage.door, person=passage.person_id)
            return
        self.counters["applied" if changed else "older"] += 1
        if changed:
            # Debug: a busy area merges many passages a second; the counters say how many.
            log.debug(
                "peer_presence",
                door=passage.door,
                person=passage.person_id,
                state=passage.state,
                area=passage.area,
            )

    # --- interlock ----------------------------------------------------------------------------
    def _interlock_state(self, topic: str, payload: bytes) -> None:
        try:
            state = json.loads(payload)
            if not isinstance(state, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            self._bad(topic, "malformed")
            return
        self.rules.peer_state(state)

    def _interlock_availability(self, topic: str, payload: bytes) -> None:
        self.rules.peer_availability(payload == b"online")

    # --- the office ---------------------------------------------------------------------------
    def _office(self, topic: str, payload: bytes) -> None:
        instance = topic.split("/")[-2]
        self._offices[instance] = payload == b"online"
        self.rules.office_changed(any(self._offices.values()))
