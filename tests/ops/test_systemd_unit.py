"""systemd/edgegate.service (the door) and systemd/edgegate-central.service (the office):
systemd's own verifier accepts them and their sandboxing holds.

``systemd-analyze`` comes from Debian's ``systemd`` package (scripts/setup.sh test installs
it); it verifies unit files offline, without a running systemd. It insists that ExecStart's
binary exists, so the test verifies a copy whose ExecStart points into a temporary root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

UNIT = REPO / "systemd" / "edgegate.service"
CENTRAL_UNIT = REPO / "systemd" / "edgegate-central.service"
BOTH = pytest.mark.parametrize("source", [UNIT, CENTRAL_UNIT], ids=["door", "central"])
EXEC = "/opt/edgegate/venv/bin/edgegate"
# Regression guard on `systemd-analyze security --offline=yes` (1.6 when written; see
# docs/operations.md). Loosening the sandbox past this needs a deliberate change here.
MAX_EXPOSURE = 2.5


def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is missing: run ./scripts/setup.sh test (apt systemd)")
    return tool


def staged_unit(tmp_path: Path, source: Path = UNIT) -> Path:
    """A copy of a unit whose ExecStart binary exists (an executable in tmp_path)."""
    binary = tmp_path / "root" / EXEC.lstrip("/")
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    unit = tmp_path / source.name
    unit.write_text(source.read_text().replace(EXEC, str(binary)))
    return unit


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


@BOTH
def test_unit_verifies_clean(tmp_path: Path, source: Path) -> None:
    unit = staged_unit(tmp_path, source)
    proc = subprocess.run(
        [analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    # verify only warns (exit 0) on unknown keys and bad values: any line about our unit fails.
    ours = [line for line in proc.stderr.splitlines() if source.name in line]
    assert ours == []


def test_verify_catches_a_typo(tmp_path: Path) -> None:
    """The check above can fail: a misspelt sandboxing key is reported."""
    unit = staged_unit(tmp_path)
    unit.write_text(unit.read_text().replace("NoNewPrivileges=", "NoNewPrivilegez="))
    proc = subprocess.run(
        [analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert "NoNewPrivilegez" in proc.stderr


def exposure(unit: Path) -> float:
    proc = subprocess.run(
        [analyze(), "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SYSTEMD_COLORS": "0"},
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout[-2000:] + proc.stderr
    return float(match.group(1))


@BOTH
def test_security_exposure_stays_low(tmp_path: Path, source: Path) -> None:
    """The office's unit is held to the same bound as the door's."""
    score = exposure(staged_unit(tmp_path, source))
    assert score <= MAX_EXPOSURE


def test_exposure_measure_reacts(tmp_path: Path) -> None:
    """Dropping the sandbox raises the score well past the bound: the guard measures it."""
    unit = staged_unit(tmp_path)
    kept = [
        line
        for line in unit.read_text().splitlines()
        if not line.startswith(("Protect", "Restrict", "SystemCall", "Capability", "Private"))
    ]
    unit.write_text("\n".join(kept) + "\n")
    assert exposure(unit) > MAX_EXPOSURE + 2


def test_unit_has_what_the_door_needs() -> None:
    s = parse_unit(UNIT.read_text())["Service"]
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    # Restarted for ever (a full disk must not leave the door down once space returns).
    unit = parse_unit(UNIT.read_text())["Unit"]
    assert unit["StartLimitIntervalSec"] == ["0"] and "StartLimitBurst" not in unit
    assert float(s["WatchdogSec"][0]) > 2  # the daemon pings every half interval, at most 1 s
    assert s["User"] == ["edgegate"]
    assert set(s["SupplementaryGroups"][0].split()) == {"gpio", "dialout", "video", "input"}
    assert s["StateDirectory"] == ["edgegate"]
    assert s["ConfigurationDirectory"] == ["edgegate"]
    assert s["ExecStart"][0].split()[0] == EXEC
    # lgpio writes its notification pipes into the working directory: it must be writable.
    assert s["WorkingDirectory"] == ["%t/edgegate"] and s["RuntimeDirectory"] == ["edgegate"]
    assert "ProcSubset" not in s  # gpiozero reads /proc/device-tree to identify the board
    creds = {v.lstrip("-").split(":")[0] for v in s["LoadCredential"]}
    assert {"store-key", "mqtt-password", "central-public-key", "osdp-scbk"} <= creds
    # The store key credential name is the one edgegate/store/sealed.py looks up.
    from edgegate.store.sealed import CREDENTIAL_NAME

    assert CREDENTIAL_NAME in creds
    # Devices the door drives stay reachable through the device policy.
    allowed = " ".join(s["DeviceAllow"])
    for dev in ("gpiochip", "ttyAMA", "ttyUSB", "video4linux"):
        assert dev in allowed


def test_central_unit_runs_serve_with_its_secrets() -> None:
    from edgegate.store.sealed import CREDENTIAL_NAME

    unit = parse_unit(CENTRAL_UNIT.read_text())
    s = unit["Service"]
    assert s["ExecStart"][0].split()[:3] == [EXEC, "central", "serve"]
    assert s["Restart"] == ["on-failure"] and unit["Unit"]["StartLimitIntervalSec"] == ["0"]
    assert s["User"] == ["edgegate"] and s["StateDirectory"] == ["edgegate"]
    creds = {v.lstrip("-").split(":")[0] for v in s["LoadCredential"]}
    assert {CREDENTIAL_NAME, "mqtt-password"} <= creds
    assert s["PrivateDevices"] == ["yes"] and s["DevicePolicy"] == ["closed"]
