"""Topic names (docs/mqtt.md). The root ``edgegate/<site>/<door>/`` is fixed by PRODUCT.md."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "edgegate"
ALL_DOORS = "all"


@dataclass(frozen=True, slots=True)
class DoorTopics:
    site: str
    door: str

    @property
    def root(self) -> str:
        return f"{PREFIX}/{self.site}/{self.door}"

    @property
    def availability(self) -> str:
        """door ->, retained ``online`` / ``offline`` (the last will)."""
        return f"{self.root}/availability"

    @property
    def state(self) -> str:
        """door ->, retained JSON: lock, contact, mode."""
        return f"{self.root}/state"

    @property
    def events(self) -> str:
        """door ->, one JSON event per message, QoS 1."""
        return f"{self.root}/events"

    @property
    def telemetry(self) -> str:
        """door ->, periodic JSON health and counters."""
        return f"{self.root}/telemetry"

    @property
    def cmd(self) -> str:
        """-> door, signed commands for this door."""
        return f"{self.root}/cmd"

    @property
    def all_cmd(self) -> str:
        """-> every door of the site, signed commands."""
        return f"{PREFIX}/{self.site}/{ALL_DOORS}/cmd"

    @property
    def credentials(self) -> str:
        """-> every door of the site, signed versioned credential updates."""
        return site_credentials(self.site)

    @property
    def receipts(self) -> str:
        """-> this door, signed ``Receipt``: the events the office has stored (retained)."""
        return f"{self.root}/receipts"

    @property
    def snapshot_request(self) -> str:
        """door ->, asks the central office for a full snapshot (``SnapshotRequest``)."""
        return f"{self.root}/credentials/request"

    @property
    def local_people(self) -> str:
        """door ->, the people it enrolled on its own, offered for import (``LocalPeople``)."""
        return f"{self.root}/credentials/local"

    @property
    def enrol(self) -> str:
        """door ->, progress and the sealed result of an ``enrol_finger`` command."""
        return f"{self.root}/enrol"

    @property
    def snapshot(self) -> str:
        """-> this door, signed snapshot chunks answering its request."""
        return f"{self.root}/credentials/snapshot"


# The office's own presence: each ``central serve`` instance keeps a retained ``online`` here,
# with ``offline`` as its last will. Doors with an [offline] policy follow the filter; the
# office level sits one deeper than a door's topics, so ``+/availability`` never matches it.
OFFICE = "office"


def office_availability(site: str, instance: str) -> str:
    """office ->, retained ``online`` / ``offline`` (last will) of one office instance."""
    return f"{PREFIX}/{site}/{OFFICE}/{instance}/availability"


def office_availability_filter(site: str) -> str:
    return f"{PREFIX}/{site}/{OFFICE}/+/availability"


def site_credentials(site: str) -> str:
    return f"{PREFIX}/{site}/credentials"


# Subscriptions of the central office (``+`` is one door id).
def central_subscriptions(site: str) -> list[str]:
    return [
        f"{PREFIX}/{site}/+/events",
        f"{PREFIX}/{site}/+/availability",
        f"{PREFIX}/{site}/+/state",
        f"{PREFIX}/{site}/+/telemetry",
        f"{PREFIX}/{site}/+/credentials/request",
        f"{PREFIX}/{site}/+/credentials/local",
        f"{PREFIX}/{site}/+/enrol",
    ]


def door_of(topic: str) -> tuple[str, str, str]:
    """``edgegate/<site>/<door>/<rest...>`` -> (site, door, rest). ValueError otherwise."""
    parts = topic.split("/", 3)
    if len(parts) != 4 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        raise ValueError(f"not an edgegate door topic: {topic!r}")
    return parts[1], parts[2], parts[3]
