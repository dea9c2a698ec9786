"""A small real site for the console's end-to-end tests and benchmarks: ``central serve``
with its console (a process), a door daemon (a process) with an RDM6300 simulated on a
pseudo-terminal, both on the test's real mosquitto."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import httpx

from edgegate.central.config import load_central
from edgegate.central.services import Actor, open_office, operators
from edgegate.cli.main import main
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import EDGEGATE, REPO
from tests.console.conftest import PASSWORD, write_config

SETUP = Actor("test-setup", "cli")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout: float = 30.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NOTIFY_SOCKET", None)
    return env


class Proc:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log: IO[str] = log.open("w+")
        self.proc = subprocess.Popen(
            args, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, env=_env()
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode


class Site:
    def __init__(self, tmp_path: Path, broker: Broker, operators_: dict[str, str]) -> None:
        self.tmp = tmp_path
        self.broker = broker
        (tmp_path / "office").mkdir()
        self.http_port = free_port()
        self.config_path = write_config(tmp_path / "office", broker.port, self.http_port)
        assert main(["central", "keygen", "--config", str(self.config_path)]) == 0
        self.config = load_central(self.config_path)
        office = open_office(self.config)
        for name, role in operators_.items():
            operators.add(office.engine, SETUP, name, role, PASSWORD)
        office.engine.dispose()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.procs: list[Proc] = []
        self.sims: list[Rdm6300Simulator] = []

    def central(self, *args: str) -> int:
        return main(["central", *args, "--config", str(self.config_path)])

    def serve(self) -> Proc:
        p = Proc(
            [*EDGEGATE, "central", "serve", "--config", str(self.config_path)],
            self.tmp / "serve.log",
        )
        self.procs.append(p)

        def up() -> bool:
            assert p.proc.poll() is None, p.output()
            try:
                return httpx.get(self.url + "/signin", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 60, "the console")
        return p

    def door(
        self, name: str, fingerprint: str | None = None, camera: Path | None = None
    ) -> tuple[Proc, Rdm6300Simulator]:
        """A door daemon with a simulated RDM6300 and, when given, a fingerprint sensor (its
        port) and a camera (a video file the door plays as its camera)."""
        sim = Rdm6300Simulator()
        self.sims.append(sim)
        key = signing.public_text(signing.load_private(self.config.central.key_file).public_key())
        d = self.tmp / name
        d.mkdir()
        extra = (
            f'[fingerprint]\nport = "{fingerprint}"\npoll_interval = 0.05\n' if fingerprint else ""
        )
        if camera is not None:
            extra += f'\n[camera]\nsource = "{camera}"\nassist_after = 100\n'

        path = d / "edgegate.toml"
        path.write_text(
            f"""[door]
site = "hq"
id = "{name}"
unlock_seconds = 1

[gpio]
pin_factory = "mock"

[[readers]]
type = "rdm6300"
port = "{sim.port}"
name = "entry"
hold_off_seconds = 0

{extra}
[mqtt]
host = "{self.broker.host}"
port = {self.broker.port}
central_public_keys = ["{key}"]
telemetry_seconds = 2
backoff_min_seconds = 0.1
backoff_max_seconds = 0.5

[storage]
path = "{d / "door.db"}"

[daemon]
watchdog = false
"""
        )
        p = Proc([*EDGEGATE, "run", "--config", str(path)], d / "door.log")
        self.procs.append(p)
        return p, sim

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        for s in self.sims:
            s.close()


class Stream:
    """One console's server-sent-event stream, read on a thread: the ids of the event rows
    (``data-id``), in arrival order, and the raw frames."""

    def __init__(self, url: str, path: str, token: str) -> None:
        self.ids: list[str] = []
        self.frames: list[str] = []  # complete frames, in order
        self._frame: list[str] = []
        self.open = threading.Event()
        self._stop = False
        headers = {"Authorization": f"Bearer {token}"}
        self._thread = threading.Thread(target=self._read, args=(url + path, headers), daemon=True)
        self._thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", url, headers=headers, timeout=None) as r:
                for line in r.iter_lines():
                    self.open.set()  # the first frame or comment: subscribed to the hub
                    if self._stop:
                        return
                    if line:
                        self._frame.append(line)
                    else:
                        self.frames.append("\n".join(self._frame))
                        self._frame = []
                    self.ids += re.findall(r'data-id="([^"]+)"', line)
        except httpx.HTTPError:
            if not self._stop:  # the console went away under the test: its wait says so
                raise

    def last_frame(self) -> str:
        return self.frames[-1] if self.frames else ""

    def close(self) -> None:
        self._stop = True
