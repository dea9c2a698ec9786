"""Door durations run on the monotonic clock: under libfaketime (Debian's ``faketime``
package), the wall clock stepped back an hour mid-run neither stretches a 2 s reader lockout
nor postpones a held-open alarm, and uptime stays positive. CLOCK_MONOTONIC is left alone
(``DONT_FAKE_MONOTONIC=1``), as it is by NTP or ``date -s`` on a Pi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

LIBS = [
    Path(f"/usr/lib/{arch}/faketime/libfaketimeMT.so.1")
    for arch in ("x86_64-linux-gnu", "aarch64-linux-gnu", "arm-linux-gnueabihf")
]
LIB = next((p for p in LIBS if p.exists()), None)


def run_stepped(tmp_path: Path, step: str) -> dict:
    if LIB is None:
        pytest.fail("libfaketime is missing: run ./scripts/setup.sh test (package faketime)")
    step_file = tmp_path / "faketime"
    step_file.write_text("+0")
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
        [sys.executable, "-m", "tests.clock.faketime_door", str(tmp_path), str(step_file), step],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_wall_clock_step_back_changes_no_duration(tmp_path: Path):
    out = run_stepped(tmp_path, "-3600")
    assert out["stepped_by"] == -3600  # the step really happened in the door's process
    assert out["lockout"] is True
    assert 0 < out["uptime_after_step"] < 60
    assert out["alice_during_lockout"] == ["access_denied", "lockout"]
    assert out["held_open_after"] is not None and 1.5 <= out["held_open_after"] < 3
    assert out["alice"] == ["access_granted", None]  # the 2 s lockout ended on time
    assert out["uptime_end"] >= out["uptime_after_step"]


def test_wall_clock_step_forward_does_not_cut_a_lockout_short(tmp_path: Path):
    out = run_stepped(tmp_path, "+3600")
    assert out["stepped_by"] == 3600
    assert out["lockout"] is True
    assert out["alice_during_lockout"] == ["access_denied", "lockout"]
    assert out["held_open_after"] is not None and 1.5 <= out["held_open_after"] < 3
    assert 0 < out["uptime_after_step"] < 60
