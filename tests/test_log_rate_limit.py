"""Repeated warnings are rate-limited per event and reason; the next line written says how
many were suppressed, and the door's counters stay exact (20,000 forged MQTT messages)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate import logging_setup
from edgegate.log_rate_limit import RepeatLimiter
from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import running_door
from tests.sync.central import mqtt_config
from tests.sync.test_inbound_props import _NoBroker


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


@settings(max_examples=300, deadline=None)
@given(
    burst=st.integers(1, 5),
    items=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["warning", "info"])),
        max_size=200,
    ),
    steps=st.lists(st.floats(0, 30), max_size=200),
)
def test_every_line_is_written_or_counted_exactly_once(burst, items, steps):
    clock = Clock()
    limiter = RepeatLimiter(burst, 10.0, clock)
    written: Counter[tuple[str, str]] = Counter()
    reported: Counter[tuple[str, str]] = Counter()
    per_window: Counter[tuple[str, float]] = Counter()
    sent: Counter[tuple[str, str]] = Counter()
    for i, (reason, level) in enumerate(items):
        clock.t += steps[i] if i < len(steps) else 0.0
        key = ("bad", reason)
        sent[key, level] += 1
        try:
            out = limiter(None, level, {"event": "bad", "reason": reason, "level": level})
        except structlog.DropEvent:
            assert level == "warning"  # only warnings and errors are ever dropped
            continue
        written[key, level] += 1
        reported[key] += out.get("suppressed", 0)
        if level == "warning":
            per_window[reason, limiter._keys[key].start] += 1
    assert all(n <= burst for n in per_window.values())
    pending = limiter.pending()
    for (key, level), n in sent.items():
        if level == "info":
            assert written[key, level] == n
    for key in {k for k, _ in sent}:
        total = sent[key, "warning"]
        assert written[key, "warning"] + reported[key] + pending.get(key, 0) == total


@pytest.fixture
def json_log(capsys):
    saved = structlog.get_config()
    logging_setup.configure("info", "json", repeat_burst=10, repeat_window_seconds=1.0)
    yield capsys
    structlog.configure(**saved)


def test_twenty_thousand_forged_messages(tmp_path: Path, json_log):
    sim = Rdm6300Simulator()
    cfg = mqtt_config(tmp_path, sim.port, _NoBroker())

    async def flood() -> tuple[dict, float]:
        async with running_door(tmp_path, sim=sim, config=cfg) as d:
            sync = d.daemon.sync
            await asyncio.wait_for(sync.ready.wait(), 10)
            t0 = asyncio.get_running_loop().time()
            for i in range(20_000):
                await sync.handle(sync.topics.cmd, b"{not json %d" % i)
            await asyncio.sleep(1.1)  # the window ends; the next line says what was left out
            await sync.handle(sync.topics.cmd, b"{not json")
            return dict(sync.rejected), asyncio.get_running_loop().time() - t0

    try:
        rejected, took = asyncio.run(flood())
    finally:
        sim.close()
    assert rejected == {"malformed": 20_001}  # the counter is exact
    lines = [json.loads(x) for x in json_log.readouterr().err.splitlines() if x.startswith("{")]
    warned = [x for x in lines if x["event"] == "mqtt_message_rejected"]
    assert len(warned) <= 10 * (int(took) + 2)  # 10 lines per 1 s window, not 20,000
    assert sum(x.get("suppressed", 0) for x in warned) + len(warned) == 20_001
    assert warned[-1]["suppressed"] > 0
