"""Fixtures shared by the foundation tests: a door on a pty with gpiozero mock pins."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from gpiozero.pins.mock import MockFactory
from hypothesis import HealthCheck, settings
from structlog.testing import capture_logs

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.daemon.app import Daemon
from edgegate.daemon.door_journal import DoorJournal
from edgegate.sim.broker import Broker, BrokerUnavailable
from edgegate.sim.postgres import Postgres, PostgresUnavailable
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.store.journal import Event, JournalTx

# Property tests check behaviour, never speed: no per-example deadline and no "too slow"
# health check, which only measure how busy the machine is (a 2-core CI box running brokers).
settings.register_profile("edgegate", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("edgegate")

REPO = Path(__file__).resolve().parents[1]
EDGEGATE = [sys.executable, "-m", "edgegate"]

LOCK, GREEN, RED, BUZZER = 17, 27, 22, 23


def make_config(tmp_path: Path, port: str, **door: Any) -> Config:
    return parse(
        {
            "door": {"site": "test", "id": "d1", "unlock_seconds": 0.3, **door},
            "gpio": {
                "pin_factory": "mock",
                "lock": LOCK,
                "green_led": GREEN,
                "red_led": RED,
                "buzzer": BUZZER,
                "deny_led_seconds": 0.2,
                "deny_beep_seconds": 0.1,
                "grant_beep_seconds": 0.05,
            },
            "readers": [
                {"type": "rdm6300", "port": port, "name": "entry", "hold_off_seconds": 0.3}
            ],
            "storage": {"path": str(tmp_path / "door.db")},
        },
        tmp_path / "test.toml",
    )


def office_mqtt(broker: Broker, key: str, **extra: Any) -> dict[str, Any]:
    """The ``[mqtt]`` section of a door joined to a test office that signs with ``key``:
    quick reconnects, so a test that restarts the broker does not wait out the backoff."""
    return {
        "host": broker.host,
        "port": broker.port,
        "central_public_keys": [key],
        "backoff_min_seconds": 0.1,
        "backoff_max_seconds": 0.5,
        **extra,
    }


def entry_exit_config(
    tmp_path: Path, reader: str, entry: str, exit_: str, broker: Broker, key: str, zone: str
) -> Config:
    """A door of site ``hq`` with an entry and an exit reader of type ``reader`` on two ptys,
    joined to a test office."""
    raw = make_config(tmp_path, entry, zone=zone).model_dump(mode="json", exclude_none=True)
    raw["door"]["site"] = "hq"
    raw["readers"] = [
        {"type": reader, "port": entry, "name": "entry", "hold_off_seconds": 0},
        {"type": reader, "port": exit_, "name": "exit", "direction": "out",
         "hold_off_seconds": 0},
    ]  # fmt: skip
    raw["mqtt"] = office_mqtt(broker, key)
    raw["daemon"] = {"watchdog": False}
    return parse(raw, tmp_path / "door.toml")


async def until(
    cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition", tick: float = 0.05
) -> Any:
    """Wait for ``cond()`` to be truthy and return it: a condition wait, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(tick)
    return value


def write_config_file(tmp_path: Path, port: str, **door: Any) -> Path:
    cfg = make_config(tmp_path, port, **door)
    path = tmp_path / "edgegate.toml"
    path.write_text(
        f"""[door]
site = "test"
id = "d1"
unlock_seconds = {cfg.door.unlock_seconds}

[gpio]
pin_factory = "mock"

[[readers]]
type = "rdm6300"
port = "{port}"
name = "entry"

[storage]
path = "{cfg.storage.path}"
"""
    )
    return path


@contextmanager
def all_logs() -> Iterator[list[dict[str, Any]]]:
    """structlog's ``capture_logs`` at every level, whatever an earlier test in this worker
    configured (a daemon's ``[logging] level = "warning"`` filters ``info`` lines before any
    processor sees them, so a capture after it would miss them); the config is put back."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def journal_writer(site: str = "s", door: str = "d") -> JournalTx:
    """The door's one journal writer (``DoorJournal.write_tx``) for tests that call the store
    thread's functions directly: it needs no store or loop, only the caller's connection."""
    return DoorJournal(None, site=site, door=door, turnstile=False, clock=time.time).write_tx  # type: ignore[arg-type]


def enrol(db: Path, person: str, uid: str, **kw: Any) -> None:
    conn = open_db(db, synchronous="NORMAL")
    with transaction(conn):
        creds.upsert_person(conn, creds.Person(person, person.title()))
        creds.add_credential(conn, "card", uid, person, **kw)
    conn.close()


@dataclass
class DoorUnderTest:
    daemon: Daemon
    sim: Rdm6300Simulator
    factory: MockFactory
    events: asyncio.Queue[Event]
    lock_history: list[tuple[float, bool]]

    @property
    def lock_high(self) -> bool:
        return bool(self.factory.pin(LOCK).state)

    async def next_event(self, timeout: float = 3.0) -> Event:
        return await asyncio.wait_for(self.events.get(), timeout)


@asynccontextmanager
async def running_door(
    tmp_path: Path,
    sim: Rdm6300Simulator | None = None,
    config: Config | None = None,
    setup: Callable[[Config], None] | None = None,
) -> AsyncIterator[DoorUnderTest]:
    own_sim = sim is None
    sim = sim or Rdm6300Simulator()
    config = config or make_config(tmp_path, sim.port)
    if setup:
        setup(config)
    factory = MockFactory()
    daemon = Daemon(config, pin_factory=factory)
    queue: asyncio.Queue[Event] = asyncio.Queue()
    history: list[tuple[float, bool]] = []
    daemon.door.add_listener(queue.put_nowait)
    daemon.outputs.add_listener(
        lambda name, on: (
            history.append((asyncio.get_running_loop().time(), on)) if name == "lock" else None
        )
    )
    await daemon.start()
    try:
        yield DoorUnderTest(daemon, sim, factory, queue, history)
    finally:
        await daemon.stop()
        if own_sim:
            sim.close()


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("NOTIFY_SOCKET", None)
    env.pop("WATCHDOG_USEC", None)
    return env


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A real mosquitto on 127.0.0.1 and a free port (installed by scripts/setup.sh test)."""
    try:
        b = Broker()
    except BrokerUnavailable as exc:
        pytest.fail(f"{exc}: run ./scripts/setup.sh test")
    with b:
        yield b


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Postgres]:
    """One real PostgreSQL cluster per test session (initdb into a temp dir, a free port);
    tests get a fresh database each from ``office_db``."""
    try:
        pg = Postgres()
    except PostgresUnavailable as exc:
        pytest.fail(f"{exc}: run ./scripts/setup.sh test")
    with pg:
        yield pg


OFFICE_ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def office_template(postgres_cluster: Postgres) -> str:
    """A database migrated once per session; each test's database is a copy of it."""
    from edgegate.central import migrate
    from edgegate.central.engine import make_engine

    postgres_cluster.database("office_template")
    engine = make_engine(postgres_cluster.url("office_template"))
    migrate.upgrade(engine)
    engine.dispose()
    return "office_template"


@pytest.fixture(params=OFFICE_ENGINES)
def office_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The office store of one test, on each engine in turn: an SQLite file path, or the URL
    of a fresh database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    cluster: Postgres = request.getfixturevalue("postgres_cluster")
    return cluster.database(template=request.getfixturevalue("office_template"))
