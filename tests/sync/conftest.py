"""A broker that writes its persistence file on every change, so that ``kill -9`` loses no
subscription or queued message of the persistent sessions (the central office's included):
what the door guarantees ends at the broker's PUBACK; these tests check the whole chain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgegate.sim.broker import Broker, BrokerUnavailable

DURABLE = "autosave_on_changes true\nautosave_interval 1\n"


@pytest.fixture
def broker() -> Iterator[Broker]:
    try:
        b = Broker(extra_config=DURABLE)
    except BrokerUnavailable as exc:
        pytest.fail(f"{exc}: run ./scripts/setup.sh test")
    with b:
        yield b
