"""Fixtures for the OSDP reader tests: libosdp's own PD on a pty, keys in files."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgegate.sim.osdp import OsdpReaderSimulator
from tests.fingerprint.fp_helpers import RecordingSink


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
