"""Central office fixtures: a config on a real broker, a subscriber that verifies signatures,
the service running in a thread, fake doors as plain paho clients."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import Engine

from edgegate.central.config import CentralConfig, load_central
from edgegate.central.server import CentralServer
from edgegate.central.store import open_master
from edgegate.cli.main import main
from edgegate.contract import signing
from edgegate.contract.topics import DoorTopics
from edgegate.sim.broker import Broker

SITE = "hq"
T = TypeVar("T")


def write_central_toml(
    tmp_path: Path, port: int, db: str | None = None, site: str = SITE, **central: Any
) -> Path:
    """central.toml on ``db`` (an SQLite path or a PostgreSQL URL; default an SQLite file in
    ``tmp_path``). A PostgreSQL store gets a store key file of its own (it has no directory
    to create one in)."""
    db = db or str(tmp_path / "central.db")
    if "://" in db and "store_key_file" not in central:
        key = tmp_path / "office-store.key"
        if not key.exists():
            key.write_bytes(os.urandom(32))
            key.chmod(0o600)
        central["store_key_file"] = str(key)
    if "://" in db and "erasure_ledger" not in central:
        # Without a store directory the ledger's default is a fixed system path.
        central["erasure_ledger"] = str(tmp_path / "erasures.jsonl")
    lines = [
        "[central]",
        f'site = "{site}"',
        f'key_file = "{tmp_path / "central.key"}"',
        f"db = {json.dumps(db)}",
        "publish_timeout_seconds = 2",
        *(f"{k} = {json.dumps(v)}" for k, v in central.items()),
        "",
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {port}",
    ]
    path = tmp_path / "central.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Central:
    path: Path
    config: CentralConfig
    verifier: signing.Verifier
    signer: signing.Signer
    _engine: Engine | None = None

    def run(self, *args: str) -> int:
        """``edgegate central ARGS --config PATH`` in this process (fast; output in capsys)."""
        return main(["central", *args, "--config", str(self.path)])

    def db(self) -> Engine:
        """The office store's engine (migrated, carrying the store key)."""
        if self._engine is None:
            c = self.config.central
            self._engine = open_master(c.db, key_file=c.store_key_file)
        return self._engine

    def q(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(conn, ...)`` in a short transaction of its own: tests poll the store while
        serve writes, and must neither hold a lock nor read a stale snapshot."""
        with self.db().begin() as conn:
            return fn(conn, *args, **kwargs)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def make_central(
    tmp_path: Path, port: int, db: str | None = None, site: str = SITE, **central: Any
) -> Central:
    path = write_central_toml(tmp_path, port, db, site, **central)
    assert main(["central", "keygen", "--config", str(path)]) == 0
    config = load_central(path)
    key = signing.load_private(config.central.key_file)
    return Central(path, config, signing.Verifier([key.public_key()]), signing.Signer(key))


@pytest.fixture
def central(tmp_path: Path, broker: Broker, office_db: str) -> Iterator[Central]:
    """The office on each engine in turn (SQLite file, PostgreSQL database)."""
    c = make_central(tmp_path, broker.port, office_db)
    yield c
    c.close()


class Subscriber:
    """A plain paho client collecting (topic, payload) from the broker."""

    def __init__(self, broker: Broker, *topics: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, msg.payload))
        # The SUBACK has to be back before anything is published, or QoS 1 means nothing.
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([(t, 1) for t in topics])
        assert done.wait(5)

    def get(self, timeout: float = 5.0) -> tuple[str, bytes]:
        return self.messages.get(timeout=timeout)

    def take(self, n: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        return [self.get(max(0.01, deadline - time.monotonic())) for _ in range(n)]

    def none_within(self, seconds: float) -> bool:
        try:
            self.messages.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(*topics: str) -> Subscriber:
        made.append(Subscriber(broker, *topics))
        return made[-1]

    yield make
    for s in made:
        s.close()


class ServerThread:
    """``CentralServer`` on its own asyncio loop in a thread, as ``serve`` runs it."""

    def __init__(self, central: Central) -> None:
        self.server = CentralServer(central.config, central.signer)
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "central server did not connect"

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            await self.server.start()
            await asyncio.wait_for(self.server.connected.wait(), 10)
            self._ready.set()
            await self._stop.wait()
            await self.server.stop()

        self._loop.run_until_complete(main())

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)


@pytest.fixture
def serving(central: Central) -> Iterator[ServerThread]:
    s = ServerThread(central)
    yield s
    s.stop()


class FakeDoor:
    """A door as the central office sees it: a paho client with a last will, publishing
    availability, events and snapshot requests in the shapes of docs/mqtt.md."""

    def __init__(self, broker: Broker, door: str, *, will: bool = True) -> None:
        self.topics = DoorTopics(SITE, door)
        self.door = door
        self.seq = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"door-{door}")
        if will:
            self.client.will_set(self.topics.availability, b"offline", qos=1, retain=True)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def online(self) -> None:
        self.send(self.topics.availability, b"online", retain=True)

    def event(self, type_: str = "access_granted", **fields: Any) -> dict[str, Any]:
        self.seq += 1
        ev = {
            "id": f"{self.door}-{self.seq:06d}",
            "seq": self.seq,
            "ts": f"2026-11-23T12:{self.seq // 60 % 60:02d}:{self.seq % 60:02d}.000Z",
            "site": SITE,
            "door": self.door,
            "type": type_,
            **fields,
        }
        return ev

    def publish_event(self, ev: dict[str, Any]) -> None:
        self.send(self.topics.events, json.dumps(ev))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
