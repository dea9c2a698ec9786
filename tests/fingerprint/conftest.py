"""Fixtures for the fingerprint tests: simulated modules on real ptys and a recording sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fp_helpers import RecordingSink

from edgegate.sim.fingerprint import FingerprintSimulator


@pytest.fixture
def make_sim() -> Iterator[Callable[..., FingerprintSimulator]]:
    sims: list[FingerprintSimulator] = []

    def make(**kwargs: Any) -> FingerprintSimulator:
        sim = FingerprintSimulator(**kwargs).start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., FingerprintSimulator]) -> FingerprintSimulator:
    return make_sim()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()
