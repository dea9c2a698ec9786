"""Light simulated doors: plain paho clients speaking the doors' side of the MQTT contract that
the office sees (docs/mqtt.md): events at QoS 1, signed receipts, snapshot requests.

For the office's tests and benchmarks, where hundreds of door daemons would not fit on the
machine. Each door keeps every event until a receipt covers it and publishes again what none
covered once receipts stood still for ``resend_seconds`` (what a real door does, in memory
instead of a journal). Receipts are checked against the office's public key.
"""

from __future__ import annotations

import json
import selectors
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from edgegate.contract.signing import RejectedMessage, Verifier
from edgegate.contract.topics import DoorTopics


def event(site: str, door: str, seq: int, type_: str = "access_granted") -> dict[str, Any]:
    return {
        "id": f"{door}-{seq:08d}",
        "seq": seq,
        "ts": f"2026-12-02T{seq // 3600 % 24:02d}:{seq // 60 % 60:02d}:{seq % 60:02d}.000Z",
        "site": site,
        "door": door,
        "type": type_,
        "kind": "card",
        "credential": "0F00BC614E",
        "person": f"p{seq % 500}",
        "direction": "in",
    }


@dataclass
class LightDoor:
    """One door on its own paho connection (``loop_start``). ``publish(n)`` queues n more
    events; ``upto`` is the highest seq the office's receipts cover."""

    host: str
    port: int
    site: str
    door: str
    verifier: Verifier | None = None
    resend_seconds: float = 3.0
    max_inflight: int = 20
    seq: int = 0
    upto: int = 0
    resent: int = 0
    bad_receipts: int = 0
    snapshots: list[bytes] = field(default_factory=list)
    _progress: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.topics = DoorTopics(self.site, self.door)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"light-{self.site}-{self.door}",
            clean_session=False,
        )
        self.client.max_inflight_messages_set(self.max_inflight)
        self.client.max_queued_messages_set(0)
        # paho sleeps these as floats; its stub says int. A fifth of a second keeps the test short.
        self.client.reconnect_delay_set(0.2, 2)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        # Always: a broker killed with -9 comes back without the session.
        client.subscribe([(self.topics.receipts, 1), (self.topics.snapshot, 1)])
        self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topics.snapshot:
            self.snapshots.append(bytes(msg.payload))
            return
        try:
            payload = bytes(msg.payload)
            body = self.verifier.verify(payload) if self.verifier else json.loads(payload)
        except (RejectedMessage, ValueError):
            self.bad_receipts += 1
            return
        upto = int(body.get("upto", 0))
        with self._lock:
            if upto > self.upto:
                self.upto = upto
                self._progress = time.monotonic()

    def publish(self, n: int) -> None:
        for _ in range(n):
            self.seq += 1
            self._send(self.seq)

    def _send(self, seq: int, type_: str = "access_granted") -> None:
        body = json.dumps(event(self.site, self.door, seq, type_), separators=(",", ":"))
        self.client.publish(self.topics.events, body, qos=1)

    def send_event(self, type_: str) -> str:
        """One more event of ``type_`` (an alarm, say); returns its id."""
        self.seq += 1
        self._send(self.seq, type_)
        return str(event(self.site, self.door, self.seq)["id"])

    def request_snapshot(self, have: int = 0) -> None:
        body = {"type": "snapshot_request", "site": self.site, "door": self.door, "have": have}
        self.client.publish(self.topics.snapshot_request, json.dumps(body), qos=1)

    def resend_if_stalled(self) -> int:
        """What a door does when receipts stand still: publish again what none covered."""
        with self._lock:
            stalled = time.monotonic() - self._progress >= self.resend_seconds
            start = self.upto + 1
        if not stalled or start > self.seq or not self.connected.is_set():
            return 0
        for seq in range(start, self.seq + 1):
            self._send(seq)
        self.resent += self.seq - start + 1
        with self._lock:
            self._progress = time.monotonic()
        return self.seq - start + 1

    @property
    def done(self) -> bool:
        return self.upto >= self.seq


class DoorGroup:
    """Many light doors driven from one thread through paho's external loop (``loop_read``,
    ``loop_write``, ``loop_misc`` on a selector), for benchmarks with hundreds of doors.

    ``LightDoor.start`` gives each door paho's own network thread: at 200 doors a process
    those threads spend more CPU taking turns at the GIL than speaking MQTT, and that CPU is
    taken from the office the benchmark measures. Here one thread waits on every door's
    socket at once (epoll: no 1024 limit) and reads only the ready ones; a publish is
    written at once by paho (no network thread to hand it to). No reconnection: a door whose
    connection drops stays down (benchmarks do not kill their broker).
    """

    MISC_SECONDS = 1.0  # keepalive pings and retries (paho's loop_misc)

    def __init__(self, doors: list[LightDoor]) -> None:
        self.doors = doors
        self._selector = selectors.DefaultSelector()
        self._misc_at = 0.0

    def connect(self) -> None:
        for door in self.doors:
            door.client.connect(door.host, door.port, keepalive=30)
            sock = door.client.socket()
            assert sock is not None
            self._selector.register(sock, selectors.EVENT_READ, door)

    def run_until(self, done: Callable[[], bool], poll: float = 0.01) -> None:
        """Serves every door's socket until ``done()`` (asked between rounds)."""
        while not done():
            for key, _ in self._selector.select(poll):
                client = key.data.client
                if client.loop_read(100) != mqtt.MQTT_ERR_SUCCESS:
                    self._selector.unregister(key.fileobj)
                    continue
                if client.want_write():
                    client.loop_write()
            now = time.monotonic()
            if now >= self._misc_at:
                self._misc_at = now + self.MISC_SECONDS
                for door in self.doors:
                    door.client.loop_misc()
                    if door.client.want_write():
                        door.client.loop_write()

    def close(self) -> None:
        for door in self.doors:
            door.client.disconnect()
        self.run_until(lambda: True)
        self._selector.close()
