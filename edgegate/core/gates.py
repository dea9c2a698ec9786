"""Gates: steps a read may have to pass before the door decides on it (a PIN after the card,
a face with the card). Each gate implements ``Gate``; the door offers every read to its gates
in order, and a read no gate takes is decided at once.

A gate holds no ``Door``: it gets a ``GatePort``, the few things a gate may ask of the door
(implemented by ``edgegate.daemon.door.Door``). Declared in the core so that a gate in any
layer (the card+face gate lives with the face reader) depends on the core only.
Whatever a gate concludes reaches the journal through the port (the door's one journal seam),
and the door's outputs are driven by the door's rules, never by a gate.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from edgegate.core.decision import CredentialRecord, Decision, Reason
from edgegate.core.pin import PinResult
from edgegate.core.reads import CredentialKind, CredentialRead


class Gate(Protocol):
    def offer(self, read: CredentialRead) -> bool:
        """Take the read (True: the gate decides what becomes of it) or let it pass."""
        ...

    def close(self) -> None:
        """Cancel whatever the gate waits for (the daemon stops)."""
        ...


class GatePort(Protocol):
    """What a gate may ask of the door (implemented by ``Door``)."""

    clock: Callable[[], float]

    def spawn(self, coro: Coroutine[Any, Any, object]) -> None: ...

    async def lookup(self, kind: CredentialKind, value: str) -> CredentialRecord | None:
        """The store's credential and person for a value (one store hop)."""
        ...

    async def pin_hashes(self, person_id: str) -> tuple[str | None, str | None]:
        """The person's PIN hash and duress PIN hash (one store hop)."""
        ...

    async def evaluate(self, read: CredentialRead) -> Decision:
        """The decision a read would get now under the door's rules, journaling nothing."""
        ...

    async def handle_read(
        self, read: CredentialRead, pin: PinResult | None = None
    ) -> Decision | None:
        """Decide on the read for good: journal, then act."""
        ...

    def submit(self, read: CredentialRead, after: Gate) -> None:
        """Hand a read on to the gates behind ``after`` (then to the decision)."""
        ...

    async def deny(
        self,
        kind: str,
        reader: str,
        reason: Reason,
        *,
        lockout: bool,
        **fields: object,
    ) -> None:
        """Journal an ``access_denied`` the decision core did not make, then signal it."""
        ...

    def retry(self) -> None:
        """Ask the person at the door for another try (two beeps)."""
        ...

    def biometric_success(self, reader: str) -> None:
        """A biometric reader's read led to a grant: reset its retries-then-staff count."""
        ...

    def count_error(self) -> None: ...
