"""A real ``edgegate central serve`` process and a door daemon config pointing at it, for the
tests that need the office's answers (receipts, snapshots) and not a stand-in."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from edgegate.cli.main import main
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from tests.conftest import EDGEGATE, REPO, write_config_file


class Office:
    """``edgegate central serve`` for site ``test`` (the tests' door is ``test/d1``)."""

    def __init__(self, tmp_path: Path, broker: Broker, env: dict[str, str]) -> None:
        self.dir = tmp_path / "office"
        self.dir.mkdir(exist_ok=True)
        self.db = self.dir / "central.db"
        self.config = self.dir / "central.toml"
        self.config.write_text(
            f'[central]\nsite = "test"\nkey_file = "{self.dir / "central.key"}"\n'
            f'db = "{self.db}"\npublish_timeout_seconds = 2\n\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        )
        assert main(["central", "keygen", "--config", str(self.config)]) == 0
        key = signing.load_private(self.dir / "central.key")
        self.public_key = signing.public_text(key.public_key())
        self.env = env
        self.log = (self.dir / "serve.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*EDGEGATE, "central", "serve", "--config", str(self.config)],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_subscribed(self, timeout: float = 120) -> None:
        """Until ``serve`` has its subscriptions: a door's first snapshot request published
        before that reaches nobody (the door asks again only on its next connect). Its start
        (imports, migrations) was seen taking 55 s on 2 cores at load 24."""
        log = self.dir / "serve.log"
        wait_for(lambda: b"central_subscribed" in log.read_bytes(), timeout, "central serve")

    def cli(self, *args: str) -> int:
        return main(["central", *args, "--config", str(self.config)])

    def ids(self, type_: str | None = None) -> set[str]:
        """Ids in the office's archive (a read-only look at its SQLite store)."""
        if not self.db.exists():
            return set()
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            sql = "SELECT id FROM events" + (" WHERE type = ?" if type_ else "")
            return {r[0] for r in conn.execute(sql, (type_,) if type_ else ())}
        except sqlite3.OperationalError:
            return set()  # not migrated yet
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def door_config(tmp_path: Path, port: str, broker: Broker, office_key: str, **mqtt: Any) -> Path:
    """The tests' door (``test/d1``) with ``[mqtt]`` on ``broker`` trusting ``office_key``."""
    path = write_config_file(tmp_path, port)
    keys = {
        "keepalive": 5,
        "backoff_min_seconds": 0.05,
        "backoff_max_seconds": 0.3,
        "telemetry_seconds": 1,
        **mqtt,
    }
    with path.open("a") as f:
        f.write(f'\n[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n')
        f.write(f'central_public_keys = ["{office_key}"]\n')
        for k, v in keys.items():
            f.write(f"{k} = {str(v).lower() if isinstance(v, bool) else v}\n")
        f.write("\n[daemon]\nwatchdog = false\n")
    return path


def start_door(config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``edgegate run`` on ``config``, as systemd would start it (log beside the config)."""
    with (config.parent / "door.log").open("ab") as log:
        return subprocess.Popen(
            [*EDGEGATE, "run", "--config", str(config)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_for(cond: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
