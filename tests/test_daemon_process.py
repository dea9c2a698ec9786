"""`edgegate run` as systemd runs it: READY, watchdog, decisions, SIGTERM, STOPPING."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import EDGEGATE, REPO, enrol, write_config_file


def recv_until(sock: socket.socket, wanted: str, timeout: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            break
        got.append(msg)
        if wanted in msg:
            return got
    raise AssertionError(f"no {wanted!r} from the daemon; got {got}")


def test_daemon_under_systemd_protocol(tmp_path: Path, subprocess_env):
    sim = Rdm6300Simulator()
    cfg = write_config_file(tmp_path, sim.port)
    enrol(tmp_path / "door.db", "alice", "0F00BC614E")
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    env = {**subprocess_env, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen(
        [*EDGEGATE, "run", "--config", str(cfg)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    env["WATCHDOG_PID"] = str(proc.pid)
    try:
        recv_until(sock, "READY=1", 15)
        recv_until(sock, "WATCHDOG=1", 3)
        sim.tap("0F00BC614E")
        sim.tap("7700112233")
        deadline = time.monotonic() + 5
        events: list[dict] = []
        while time.monotonic() < deadline and len(events) < 2:
            out = subprocess.run(
                [*EDGEGATE, "events", "--config", str(cfg), "--json"],
                capture_output=True,
                text=True,
                cwd=REPO,
                env=subprocess_env,
            )
            events = [json.loads(line) for line in out.stdout.splitlines()]
            time.sleep(0.1)
        assert [e["type"] for e in events] == ["access_granted", "access_denied"]
        for e in events:
            assert {"id", "seq", "ts", "site", "door", "type"} <= e.keys()
            assert e["site"] == "test" and e["door"] == "d1" and e["ts"].endswith("Z")
        proc.send_signal(signal.SIGTERM)
        recv_until(sock, "STOPPING=1", 5)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
        sim.close()
    # Under a non-tty stderr the logs are JSON lines, one object per line.
    stderr = proc.stderr.read() if proc.stderr else ""
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    names = [line["event"] for line in lines]
    assert "daemon_started" in names and "access_granted" in names and "daemon_stopped" in names


def test_daemon_exits_2_on_bad_config(tmp_path: Path, subprocess_env):
    bad = tmp_path / "bad.toml"
    bad.write_text('[door]\nsite="x"\nid="y"\nbogus=1\n')
    r = subprocess.run(
        [*EDGEGATE, "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env,
        timeout=30,
    )
    assert r.returncode == 2 and "door.bogus: unknown key" in r.stderr
    assert not os.path.exists(tmp_path / "door.db")
