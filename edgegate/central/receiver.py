"""Processes of their own that receive the doors' events for ``central serve``
(``[central] event_receivers``).

Why: in serve's process paho's network thread takes turns at the GIL with the store's, the
receipts' and the loop's Python work, and waits for its turn after every socket read. A paho
thread receiving next to one busy Python thread received 3.6x slower at the same CPU per
message; in ``central serve`` (bench/office_ingest.py, 500 doors) moving the receiving out
took one instance from 3,242 to 4,803 events/s, and the office's CPU per event from 245 to
166 µs (docs/benchmarks.md). It works on either engine: only the receiving moves, the store
stays serve's (one writer on SQLite).

What a receiver does: one MQTT 5 client (client id
``edgegate-central-<site>-<instance>-events-<k>``, the instance's session expiry, manual
acknowledgement) in the office's shared subscription to
the doors' events; every message is handed over a pipe to serve, in batches (whatever arrived
while the last batch was being sent), and acknowledged to the broker only when serve sends its
id back after the commit: the same promise as in process (server.py). Everything else (door
rows, snapshot requests, enrolment steps) still comes to serve's own client.

Lifecycle and hazards:

* The pipe carries ``("subscribed", n)`` once the broker granted the subscription (serve says
  ``central_subscribed`` only when its own client and every receiver are subscribed: what
  was published before that had no subscriber in the share to go to), then
  ``("batch", [(topic, payload, qos, mid), ...])``; serve sends back lists of ``(mid, qos)``.
* A receiver whose serve is gone (killed with -9: nobody closes it) reads end-of-file on the
  pipe and exits at once: left running it would hold the session, and the next serve's
  receiver with the same client id would take it over, back and forth.
* A receiver that died is started again (``event_receiver_died``, counted) with a new
  generation: acknowledgements of what the old one received are dropped (a message id
  means nothing on another connection); the broker sends those messages again to the new
  session and the archive drops the copies by id.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgegate.config.mqtt import MqttConfig
from edgegate.mqtt.client import build_client

log = structlog.get_logger(__name__)

RESTART_SECONDS = 1.0  # between a receiver's death and its next start

# What a receiver hands over: (topic, payload, qos, mid).
Raw = tuple[str, bytes, int, int]


@dataclass(frozen=True, slots=True)
class Received:
    """A message a receiver got: what serve's store needs of it, and whom to acknowledge it
    to (``source``: the receiver; ``generation``: which start of it)."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    source: int
    generation: int


def _receive(
    cfg: dict[str, Any], client_id: str, topics: list[str], expiry: int, conn: Connection
) -> None:
    """The receiver process's body (``spawn``: nothing of serve's threads comes along)."""
    mq = MqttConfig.model_validate(cfg)
    client = build_client(mq, client_id, protocol="5", auto_reconnect=True, max_inflight=100)
    client.manual_ack_set(True)
    lock = threading.Lock()
    pending: list[Raw] = []
    wake = threading.Event()
    send = threading.Lock()  # the main thread's batches and paho's "subscribed"

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            pending.append((msg.topic, bytes(msg.payload), msg.qos, msg.mid))
        wake.set()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            c.subscribe([(t, 1) for t in topics])

    def on_subscribe(_c: mqtt.Client, _u: Any, _m: int, codes: Any, _p: Any) -> None:
        with send:
            conn.send_bytes(pickle.dumps(("subscribed", len(codes))))

    client.on_message = on_message
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry
    client.connect_async(mq.host, mq.port, keepalive=30, clean_start=False, properties=props)
    client.loop_start()

    def acknowledge() -> None:
        while True:
            try:
                mids = conn.recv()
            except (EOFError, OSError):
                # serve is gone: so is this receiver, now (see the module docstring).
                os._exit(0)
            for mid, qos in mids:
                client.ack(mid, qos)

    threading.Thread(target=acknowledge, name="acks", daemon=True).start()
    while True:
        wake.wait()
        wake.clear()  # before taking: a message put after this wakes the next round
        with lock:
            batch = pending[:]
            del pending[:]
        if batch:
            try:
                with send:
                    conn.send_bytes(pickle.dumps(("batch", batch), pickle.HIGHEST_PROTOCOL))
            except OSError:
                os._exit(0)


class Receivers:
    """``count`` receiver processes, their batches handed to ``put`` (from a reader thread
    per receiver), restarted when one dies."""

    def __init__(
        self,
        cfg: MqttConfig,
        client_id: str,
        topics: list[str],
        expiry: int,
        count: int,
        put: Callable[[Received], None],
        on_subscribed: Callable[[], None],
        on_death: Callable[[int], None],
    ) -> None:
        self._args = (cfg.model_dump(), topics, expiry)
        self._client_id = client_id
        self._put = put
        self._on_subscribed = on_subscribed
        self._on_death = on_death
        self._ctx = mp.get_context("spawn")
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the connections and generations (reader threads)
        self._conns: list[Connection | None] = [None] * count
        self._procs: list[mp.process.BaseProcess | None] = [None] * count
        self._generation = [0] * count
        self.subscribed = [False] * count
        self._readers = [
            threading.Thread(target=self._run, args=(k,), name=f"receiver-{k}", daemon=True)
            for k in range(count)
        ]

    def start(self) -> None:
        for reader in self._readers:
            reader.start()

    @property
    def all_subscribed(self) -> bool:
        return all(self.subscribed)

    def _spawn(self, k: int) -> Connection:
        ours, theirs = self._ctx.Pipe()
        cfg, topics, expiry = self._args
        proc = self._ctx.Process(
            target=_receive,
            args=(cfg, f"{self._client_id}-{k}", topics, expiry, theirs),
            name=f"edgegate-receiver-{k}",
            daemon=True,
        )
        proc.start()
        theirs.close()
        with self._lock:
            self._generation[k] += 1
            self._conns[k], self._procs[k] = ours, proc
        log.info("event_receiver_started", receiver=k, pid=proc.pid)
        return ours

    def _run(self, k: int) -> None:
        """Reader thread of receiver ``k``: its batches to ``put``; a death, a restart."""
        while not self._stopping.is_set():
            conn = self._spawn(k)
            generation = self._generation[k]
            while True:
                try:
                    kind, body = pickle.loads(conn.recv_bytes())
                except (EOFError, OSError):
                    break
                if kind == "subscribed":
                    self.subscribed[k] = True
                    self._on_subscribed()
                    continue
                for topic, payload, qos, mid in body:
                    self._put(Received(topic, payload, qos, mid, k, generation))
            if self._stopping.is_set():
                return
            self.subscribed[k] = False
            self._on_death(k)
            time.sleep(RESTART_SECONDS)

    def ack(self, source: int, generation: int, mids: list[tuple[int, int]]) -> bool:
        """Loop thread: acknowledge ``mids`` through receiver ``source`` if it is still the
        start that received them (False: dropped, the broker sends them again)."""
        with self._lock:
            conn = self._conns[source] if self._generation[source] == generation else None
        if conn is None:
            return False
        try:
            conn.send(mids)
        except OSError:
            return False  # it died meanwhile: its reader thread restarts it
        return True

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._procs if p is not None and p.pid is not None]

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            procs, conns = list(self._procs), list(self._conns)
        for proc in procs:
            if proc is not None:
                proc.terminate()
        for proc in procs:
            if proc is not None:
                proc.join(5)
        for conn in conns:
            if conn is not None:
                conn.close()
