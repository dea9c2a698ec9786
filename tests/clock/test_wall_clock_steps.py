"""Door durations run on the monotonic clock: under libfaketime (Debian's ``faketime``
package), the wall clock stepped back an hour mid-run neither stretches a 5 s reader lockout
nor postpones a held-open alarm, and uptime stays positive. CLOCK_MONOTONIC is left alone
(``DONT_FAKE_MONOTONIC=1``), as it is by NTP or ``date -s`` on a Pi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgegate.store import journal
from edgegate.store.db import open_db, transaction
from tests.conftest import REPO

LIBS = [
    Path(f"/usr/lib/{arch}/faketime/libfaketimeMT.so.1")
    for arch in ("x86_64-linux-gnu", "aarch64-linux-gnu", "arm-linux-gnueabihf")
]
LIB = next((p for p in LIBS if p.exists()), None)


def run_stepped(
    tmp_path: Path, step: str, module: str = "faketime_door", start: str = "+0"
) -> dict:
    if LIB is None:
        pytest.fail("libfaketime is missing: run ./scripts/setup.sh test (package faketime)")
    step_file = tmp_path / "faketime"
    step_file.write_text(start)
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "LD_PRELOAD": str(LIB),
        "FAKETIME_TIMESTAMP_FILE": str(step_file),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
    }
    env.pop("FAKETIME", None)
    proc = subprocess.run(
        [sys.executable, "-m", f"tests.clock.{module}", str(tmp_path), str(step_file), step],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (tmp_path / "child.log").write_text(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_wall_clock_step_back_changes_no_duration(tmp_path: Path):
    out = run_stepped(tmp_path, "-3600")
    assert out["stepped_by"] == -3600  # the step really happened in the door's process
    assert out["lockout"] is True
    assert 0 < out["uptime_after_step"] < 60
    assert out["during_at"] < 5, "too slow a machine to tell"
    assert out["alice_during_lockout"] == ["access_denied", "lockout"]
    assert out["held_open_after"] is not None and 1.5 <= out["held_open_after"] < 5
    assert out["alice"] == ["access_granted", None]  # the 5 s lockout ended on time
    assert out["uptime_end"] >= out["uptime_after_step"]


@pytest.mark.slow
def test_wall_clock_step_forward_does_not_cut_a_lockout_short(tmp_path: Path):
    out = run_stepped(tmp_path, "+3600")
    assert out["stepped_by"] == 3600
    assert out["lockout"] is True
    assert out["during_at"] < 5, "too slow a machine to tell"
    assert out["alice_during_lockout"] == ["access_denied", "lockout"]
    assert out["held_open_after"] is not None and 1.5 <= out["held_open_after"] < 5
    assert 0 < out["uptime_after_step"] < 60


def test_clock_behind_at_start_decides_on_what_the_door_knows(tmp_path: Path):
    """Started a day behind (no RTC, before NTP): Bob's card, expired an hour ago, is still
    refused, because dates are never earlier than the newest one in the journal; the event is
    flagged, the condition journaled, and the catch-up journaled once NTP steps the clock."""
    from tests.rules.conftest import enrol, make_config

    cfg = make_config(tmp_path, [])
    real_now = time.time()
    enrol(cfg.storage.path, "bob", "1A2B3C4D5E", valid_until=real_now - 3600)
    conn = open_db(cfg.storage.path)
    with transaction(conn):  # the door ran today: its journal says so
        journal.append(conn, "door_closed", {}, site="test", door="d1", now=real_now - 60)
    conn.close()
    out = run_stepped(tmp_path, "", module="behind_door", start="-86400")
    assert out["clock_behind"] is not None and out["clock_behind"] > 80_000, out
    assert out["bob"] == ["access_denied", "expired"], out
    assert out["flag"] == "unsynchronised"
    assert out["synchronised"] is True
