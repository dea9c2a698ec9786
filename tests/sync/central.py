"""The central office as the tests play it: a real paho client on the real broker, signing
with its own Ed25519 key, collecting what the door publishes."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.contract import messages as m
from edgegate.contract import signing
from edgegate.contract.topics import DoorTopics
from edgegate.sim.broker import Broker
from tests.conftest import make_config, office_mqtt

KEY = signing.generate()
SIGNER = signing.Signer(KEY)


def mqtt_config(tmp_path: Path, port: str, broker: Broker, **mqtt_over: Any) -> Config:
    base = make_config(tmp_path, port)
    raw = base.model_dump(mode="json", exclude_none=True)
    raw["mqtt"] = office_mqtt(
        broker, signing.public_text(KEY.public_key()), **{"keepalive": 5, **mqtt_over}
    )
    raw["daemon"] = {"watchdog": False}
    return parse(raw, tmp_path / "test.toml")


def now_iso(offset: float = 0.0) -> str:
    return m.rfc3339(datetime.now(UTC) + timedelta(seconds=offset))


def command(cmd: str, site: str = "test", door: str = "d1", ttl: float = 30, **kw: Any) -> dict:
    msg = {
        "type": "command",
        "id": uuid.uuid4().hex,
        "site": site,
        "door": door,
        "cmd": cmd,
        "issued": now_iso(-1),
        "expires": now_iso(ttl),
        "by": "tests",
    }
    msg.update(kw)
    return msg


def update(version: int, base: int, ops: list[dict], site: str = "test") -> dict:
    return {
        "type": "credentials",
        "site": site,
        "version": version,
        "base": base,
        "issued": now_iso(),
        "ops": ops,
    }


def snapshot_chunks(
    people: list[dict],
    credentials: list[dict],
    version: int,
    per_chunk: int = 5000,
    replace_local: bool = True,
) -> list[dict]:
    """Chunks of one snapshot. ``replace_local``: this office has already settled the people
    enrolled at the tests' doors (docs/central.md); tests/sync/test_local_people.py covers a
    door whose office has not."""
    sid = uuid.uuid4().hex[:12]
    n = max(1, -(-max(len(people), len(credentials)) // per_chunk))
    return [
        {
            "type": "snapshot",
            "site": "test",
            "door": "d1",
            "snapshot": sid,
            "version": version,
            "chunk": i,
            "chunks": n,
            "issued": now_iso(),
            "people": people[i * per_chunk : (i + 1) * per_chunk],
            "credentials": credentials[i * per_chunk : (i + 1) * per_chunk],
            "replace_local": replace_local,
        }
        for i in range(n)
    ]


class Central:
    """Subscribes to the door's topics with a persistent session and records everything."""

    def __init__(self, broker: Broker, site: str = "test", door: str = "d1") -> None:
        self.topics = DoorTopics(site, door)
        self.lock = threading.RLock()
        self.events: list[dict] = []
        self.by_topic: dict[str, list[bytes]] = {}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"central-{uuid.uuid4().hex[:8]}",
            clean_session=False,
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(0.05, 0.2)
        self.connected = threading.Event()
        self.client.connect(broker.host, broker.port, keepalive=5)
        self.client.loop_start()
        assert self.connected.wait(5), "central did not connect"

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        client.subscribe(f"edgegate/{self.topics.site}/#", qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.by_topic.setdefault(msg.topic, []).append(msg.payload)
            if msg.topic == self.topics.events:
                self.events.append(json.loads(msg.payload))

    def send(self, topic: str, message: dict | bytes, signed: bool = True) -> None:
        payload = message if isinstance(message, bytes) else SIGNER.sign(message)
        if not signed and isinstance(message, dict):
            payload = json.dumps(message).encode()
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def messages(self, topic: str) -> list[bytes]:
        with self.lock:
            return list(self.by_topic.get(topic, []))

    def wait_for(self, pred, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(self):
                    return
            time.sleep(0.02)
        with self.lock:
            types = Counter(e["type"] for e in self.events)
        raise AssertionError(f"timed out; events so far {dict(types)}")

    def events_of(self, type_: str) -> list[dict]:
        with self.lock:
            return [e for e in self.events if e["type"] == type_]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
