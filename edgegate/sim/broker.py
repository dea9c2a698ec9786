"""A real Mosquitto broker on 127.0.0.1 and a free port, for tests, benchmarks and drills.

Not a fake: it runs the Debian ``mosquitto`` binary with a generated config. ``stop(kill=True)``
is ``kill -9`` (what a crashed broker or a pulled cable looks like to the door), and ``start``
brings it back on the same port, with its persistence file when ``persistent`` is set, so
queued QoS 1 messages of persistent sessions survive the restart as on a real server.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from edgegate.errors import EdgegateError


class BrokerUnavailable(EdgegateError, RuntimeError):
    """No mosquitto binary on this machine (scripts/setup.sh test installs it)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerUnavailable("mosquitto is not installed (apt-get install mosquitto)")


class Broker:
    """``with Broker() as b: ... b.host, b.port``; ``b.stop(kill=True)``; ``b.start()``."""

    def __init__(
        self,
        *,
        port: int | None = None,
        persistent: bool = True,
        extra_config: str = "",
        workdir: Path | None = None,
    ) -> None:
        self.binary = find_mosquitto()
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="edgegate-broker-"))
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            # Started as root, mosquitto drops to the 'mosquitto' user, which cannot write the
            # persistence file into our private temp dir: stay the user who started it.
            f"user {getpass.getuser()}",
            f"persistence {'true' if persistent else 'false'}",
            f"persistence_location {self.dir}/",
            # No artificial limits: the tests push 10,000-event streams through it.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            extra_config,
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            # Its own session: a Ctrl-C at the terminal goes to the whole foreground process
            # group, and the broker must outlive the doors and the office it serves until its
            # owner stops it (else they log a lost broker while shutting down).
            start_new_session=True,
        )
        logf.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return
            time.sleep(0.02)
        self.stop(kill=True)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self, *, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
