"""systemd/edgegate-central.service: systemd's verifier accepts it and its sandboxing is at
least as tight as the door's (``systemd-analyze security --offline``)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO
from tests.ops.test_systemd_unit import EXEC, MAX_EXPOSURE, analyze, exposure, parse_unit

UNIT = REPO / "systemd" / "edgegate-central.service"


def staged(tmp_path: Path) -> Path:
    binary = tmp_path / "root" / EXEC.lstrip("/")
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    unit = tmp_path / "edgegate-central.service"
    unit.write_text(UNIT.read_text().replace(EXEC, str(binary)))
    return unit


def test_central_unit_verifies_clean_and_is_sandboxed(tmp_path: Path) -> None:
    unit = staged(tmp_path)
    proc = subprocess.run(
        [analyze(), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "edgegate-central" in line] == []
    assert exposure(unit) <= MAX_EXPOSURE


def test_central_unit_runs_serve_with_its_secrets() -> None:
    from edgegate.store.sealed import CREDENTIAL_NAME

    unit = parse_unit(UNIT.read_text())
    s = unit["Service"]
    assert s["ExecStart"][0].split()[:3] == [EXEC, "central", "serve"]
    assert s["Restart"] == ["on-failure"] and unit["Unit"]["StartLimitIntervalSec"] == ["0"]
    assert s["User"] == ["edgegate"] and s["StateDirectory"] == ["edgegate"]
    creds = {v.lstrip("-").split(":")[0] for v in s["LoadCredential"]}
    assert {CREDENTIAL_NAME, "mqtt-password"} <= creds
    assert s["PrivateDevices"] == ["yes"] and s["DevicePolicy"] == ["closed"]
