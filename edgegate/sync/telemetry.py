"""The ``telemetry`` message: the door's health and counters (docs/mqtt.md has an example)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgegate import __version__
from edgegate.store import epoch as store_epoch
from edgegate.store import journal
from edgegate.store.credential_sync import get_version, local_held
from edgegate.store.credentials import count_credentials
from edgegate.store.rules_state import occupancy

if TYPE_CHECKING:
    from edgegate.config.models import DoorConfig
    from edgegate.store.store import AsyncStore
    from edgegate.sync.drain import Drainer
    from edgegate.sync.link import MqttLink
    from edgegate.sync.ports import StatusSource

THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")


def cpu_temperature(path: Path = THERMAL) -> float | None:
    """Degrees Celsius from the kernel's thermal zone (Raspberry Pi: the SoC), if any."""
    try:
        return round(int(path.read_text().strip()) / 1000, 1)
    except (OSError, ValueError):
        return None


def disk_free(path: Path) -> int | None:
    """Bytes free on the file system holding the store."""
    try:
        return shutil.disk_usage(path if path.exists() else path.parent).free
    except OSError:
        return None


def store_figures(conn: sqlite3.Connection) -> dict[str, Any]:
    return {
        "local_held": local_held(conn),
        "credentials": count_credentials(conn),
        "credentials_version": get_version(conn),
        "unsent": journal.unsent_count(conn),
        "unarchived": journal.unarchived_count(conn),
        "epoch": store_epoch.current(conn),
    }


async def build(
    source: StatusSource,
    store: AsyncStore,
    *,
    door: DoorConfig,
    area: str,
    storage_path: Path,
    link: MqttLink,
    drainer: Drainer,
    rejected: Counter[str],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """One telemetry object. ``extra`` holds the sync service's own counters."""
    figures = await store.call(store_figures)
    status = source.status()
    readers: list[dict[str, Any]] = status["readers"]
    bad_frames = sum(
        n
        for r in readers
        for key in ("bad_frames", "bad_checksum")
        if isinstance(n := r.get(key, 0), int)
    )
    return {
        "ts": journal.rfc3339(time.time()),
        "site": door.site,
        "door": door.id,
        "name": door.name,
        "location": door.location,
        "version": __version__,
        "uptime": status["uptime"],
        "healthy": status["healthy"],
        "loop_lag_ms": status["loop_lag_ms"],
        "credentials": {
            "count": figures["credentials"],
            "version": figures["credentials_version"],
            # A snapshot refused to keep the people enrolled here (docs/mqtt.md).
            "local_held": figures["local_held"],
        },
        # Flat copies for consumers that read one key (central `doors`, Home Assistant).
        "credentials_version": figures["credentials_version"],
        "journal_depth": figures["unsent"],
        "journal_unarchived": figures["unarchived"],
        # Today's traffic at this door (docs/rules.md, `edgegate stats`).
        "today": await source.today_counts(),
        # The anti-passback area's live count, as this door knows it (its own and its area
        # peers' passages): the office shows it per area beside its muster list.
        "area": {"id": area, "occupancy": await store.call(occupancy, area)},
        "journal": {
            # The journal's epoch (edgegate/store/epoch.py): a new one says the store changed.
            "epoch": figures["epoch"],
            "unsent": figures["unsent"],
            "unarchived": figures["unarchived"],
            "published": drainer.published,
            "acked": drainer.acked,
            "refused": drainer.failed,
        },
        "readers": [
            {
                "name": r["name"],
                "family": r.get("family"),  # the reader model, for the equipment register
                "healthy": r["healthy"],
                "last_error": r["last_error"],
            }
            for r in readers
        ],
        "bad_frames": bad_frames,
        "rejected": dict(rejected),
        "decisions": status["decisions"],
        "mqtt": {"connects": link.connects, "disconnects": link.disconnects},
        "cpu_temp": cpu_temperature(),
        "disk_free": disk_free(Path(storage_path)),
        "pid": os.getpid(),
        **extra,
    }
