"""Helpers for the reader tests: a door config with given reader tables, on the rules
suite's door (tests/rules/conftest.py: mock pins, a test-driven clock, SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgegate.config.models import Config
from edgegate.store.journal import Event
from tests.rules.conftest import make_config


def door_config(tmp_path: Path, *readers: dict[str, Any], **top: Any) -> Config:
    """The rules suite's door with these ``[[readers]]`` tables instead of RDM6300s."""
    return make_config(tmp_path, [], readers=list(readers), **top)


def wiegand(name: str, **keys: Any) -> dict[str, Any]:
    """A Wiegand reader table on simulated wires named ``name``."""
    return {"type": "wiegand", "chip": f"sim:{name}", "d0": 24, "d1": 25, "name": name, **keys}


async def decision(d: Any) -> Event:
    """The next access_granted / access_denied event, skipping others."""
    while True:
        ev = await d.next_event()
        if ev.type in ("access_granted", "access_denied"):
            return ev
