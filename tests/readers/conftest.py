"""Helpers for the reader tests: a door config with given reader tables on the rules suite's
door (tests/rules/conftest.py: mock pins, a test-driven clock, SQLite), and libosdp's own PD
on a pty with keys in files for the OSDP tests."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgegate.config.models import Config
from edgegate.sim.osdp import OsdpReaderSimulator
from edgegate.store.journal import Event
from tests.fingerprint.fp_helpers import RecordingSink
from tests.rules.conftest import make_config


def door_config(tmp_path: Path, *readers: dict[str, Any], **top: Any) -> Config:
    """The rules suite's door with these ``[[readers]]`` tables instead of RDM6300s."""
    return make_config(tmp_path, [], readers=list(readers), **top)


def wiegand(name: str, **keys: Any) -> dict[str, Any]:
    """A Wiegand reader table named ``name``; its simulated wires are injected by name
    (``running_door(..., edge_sources={name: wires})``)."""
    return {"type": "wiegand", "d0": 24, "d1": 25, "name": name, **keys}


async def decision(d: Any) -> Event:
    """The next access_granted / access_denied event, skipping others."""
    while True:
        ev = await d.next_event()
        if ev.type in ("access_granted", "access_denied"):
            return ev


class ReaderEventSink(RecordingSink):
    """The fingerprint tests' recording sink, plus the events a reader journals itself."""

    def reader_event(self, reader: str, type_: str, **fields: Any) -> None:
        self.calls.append(("reader_event", (type_, fields)))

    def event_types(self) -> list[str]:
        return [type_ for type_, _ in self.of("reader_event")]


@pytest.fixture
def sink() -> ReaderEventSink:
    return ReaderEventSink()


@pytest.fixture
def scbk() -> bytes:
    return secrets.token_bytes(16)


@pytest.fixture
def key_file(tmp_path: Path, scbk: bytes) -> Path:
    path = tmp_path / "reader.scbk"
    path.write_text(scbk.hex() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def make_pd() -> Iterator[Callable[..., OsdpReaderSimulator]]:
    sims: list[OsdpReaderSimulator] = []

    def make(**kwargs: Any) -> OsdpReaderSimulator:
        sim = OsdpReaderSimulator(**kwargs)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.close()
