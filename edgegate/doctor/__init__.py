"""``edgegate doctor``: open every configured part and say in plain words what works.

Each check returns ``Check`` results (ok / warn / fail with one sentence). The door's own code
is reused wherever it exists (config loader, store opener, RDM6300 parser, fingerprint driver,
gpiozero pin factories), so doctor exercises what the daemon will run. Run it with the daemon
stopped: a running daemon holds the serial ports (opened exclusive) and the GPIO pins.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    part: str
    status: Status
    message: str

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def ok(part: str, message: str) -> Check:
    return Check(part, Status.OK, message)


def warn(part: str, message: str) -> Check:
    return Check(part, Status.WARN, message)


def fail(part: str, message: str) -> Check:
    return Check(part, Status.FAIL, message)
