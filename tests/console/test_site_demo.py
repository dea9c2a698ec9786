"""``edgegate demo --site`` (what ``./scripts/setup.sh demo`` runs): the office console answers
with the printed sign-in, the doors come online and produce traffic, and at the end nothing is
left behind (temporary directory, office process, broker)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import EDGEGATE, REPO
from tests.console.conftest import csrf_of

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_site_demo(subprocess_env) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.Popen(
        [*EDGEGATE, "demo", "--site", "--port", "0", "--speed", "2"],
        cwd=REPO,
        env=subprocess_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(lines)
        url = re.search(r"console:\s+(\S+)", text).group(1)  # type: ignore[union-attr]
        user, password = re.search(r"sign in:\s+(\S+) / (\S+)", text).groups()  # type: ignore[union-attr]
        work = Path(re.search(r"removes (\S+)", text).group(1))  # type: ignore[union-attr]
        with httpx.Client(base_url=url, timeout=10, follow_redirects=True) as c:
            form = c.get("/signin")
            r = c.post(
                "/signin", data={"username": user, "password": password, "csrf": csrf_of(form.text)}
            )
            assert "demo (admin)" in r.text
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                doors = c.get("/api/v1/doors", headers={"Accept": "application/json"}).json()
                events = c.get("/api/v1/events?limit=5").json()["events"]
                if doors["online"] == 3 and events:
                    break
                time.sleep(0.5)
            assert doors["online"] == 3, doors
            assert events
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "stopped; removed" in rest
    assert not work.exists()
