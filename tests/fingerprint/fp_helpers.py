"""Helpers shared by the fingerprint tests (imported by name: pytest puts this folder on
sys.path because it has no __init__.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from edgegate.hardware.base import CredentialRead


class RecordingSink:
    """A ReaderSink that records every call, plus the reader's two guidance callbacks."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def credential(self, read: CredentialRead) -> None:
        self.calls.append(("credential", read))

    def fault(self, reader: str, reason: str) -> None:
        self.calls.append(("fault", reason))

    def recovered(self, reader: str) -> None:
        self.calls.append(("recovered", reader))

    def reader_event(self, reader: str, type_: str, **fields: Any) -> None:
        self.calls.append((type_, fields))

    def unrecognised(self, reason: str) -> None:
        self.calls.append(("unrecognised", reason))

    def poor_capture(self, reason: str) -> None:
        self.calls.append(("poor_capture", reason))

    def of(self, kind: str) -> list[Any]:
        return [value for k, value in self.calls if k == kind]

    @property
    def reads(self) -> list[CredentialRead]:
        return self.of("credential")


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
