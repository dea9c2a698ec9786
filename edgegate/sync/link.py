"""The asyncio side of the broker connection: paho's network loop in its own thread.

Why a thread and not ``add_reader``/``add_writer``: ``connect`` (DNS, TCP, TLS handshake) is
blocking in paho and would need an executor anyway, TLS sockets want-read/want-write dances
are handled inside paho's own loop, and paho's ``publish`` is thread-safe. So one thread of
ours runs ``reconnect()`` + ``loop()`` (automatic reconnection off) and sleeps a
jittered backoff between attempts; the asyncio loop never waits on the network.

Every paho callback runs in that thread and only hands work to the loop with
``call_soon_threadsafe``. PUBACKs are batched (``edgegate.mqtt.handoff``, as the office takes
the doors' messages): the thread appends (mid, error) to a list and wakes the loop once per
batch, so a drain of thousands of events per second costs one cross-thread wake-up per batch
rather than one per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import structlog

from edgegate.config.models import MqttConfig
from edgegate.errors import EdgegateError
from edgegate.mqtt.client import Backoff, build_client, connect_async
from edgegate.mqtt.handoff import Handoff

log = structlog.get_logger(__name__)

MessageHandler = Callable[[str, bytes], None]


def _only_queue(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """The network thread's select() sees queued packets by itself (want_write)."""


def _log_refusal(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.warning("mqtt_publish_refused", error=str(fut.exception()))


class PublishError(EdgegateError, RuntimeError):
    """The broker refused a publish (MQTT 5 reason code) or it could not be queued."""


class MqttLink:
    def __init__(
        self,
        cfg: MqttConfig,
        client_id: str,
        *,
        will_topic: str | None = None,
        subscriptions: list[tuple[str, int]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.client = build_client(cfg, client_id, will_topic=will_topic)
        self.subscriptions = subscriptions or []
        self.connected = asyncio.Event()
        self.connects = 0
        self.disconnects = 0
        self.last_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_message: MessageHandler | None = None
        self._on_connected: list[Callable[[bool], None]] = []
        self._on_disconnected: list[Callable[[], None]] = []
        self._pending: dict[int, asyncio.Future[None]] = {}
        # PUBACKs (mid, error) from paho's thread; made on the loop (start).
        self._acks: Handoff[tuple[int, str | None]] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(cfg.backoff_min_seconds, cfg.backoff_max_seconds)
        c = self.client
        c.on_connect = self._t_on_connect
        c.on_disconnect = self._t_on_disconnect
        c.on_publish = self._t_on_publish
        c.on_message = self._t_on_message
        c.on_connect_fail = self._t_on_connect_fail
        # With no loop_start() thread, paho's publish() would write to the socket from the
        # calling thread (our event loop) while our network thread writes too: packets could
        # be reordered or interleaved. A registered write hook makes publish() only queue the
        # packet and wake the network thread through paho's socket pair.
        c.on_socket_register_write = _only_queue

    # --- set-up (loop thread) --------------------------------------------------------------
    def on_message(self, handler: MessageHandler) -> None:
        """``handler(topic, payload)`` is called on the loop for every message received."""
        self._on_message = handler

    def on_connected(self, fn: Callable[[bool], None]) -> None:
        """``fn(session_present)`` is called on the loop after every successful CONNACK."""
        self._on_connected.append(fn)

    def on_disconnected(self, fn: Callable[[], None]) -> None:
        """``fn()`` is called on the loop when the broker connection is lost."""
        self._on_disconnected.append(fn)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._acks = Handoff(self._loop, self._process_acks)
        connect_async(self.client, self.cfg)
        self._thread = threading.Thread(target=self._t_run, name="mqtt", daemon=True)
        self._thread.start()

    async def stop(self, final: list[tuple[str, bytes, bool]] | None = None) -> None:
        """Publish ``final`` (topic, payload, retain) messages if connected, then disconnect.

        A clean DISCONNECT suppresses the last will, so the door says ``offline`` itself.
        """
        if self.connected.is_set() and final:
            futs = [self.publish(t, p, qos=1, retain=r) for t, p, r in final]
            try:
                await asyncio.wait_for(asyncio.gather(*futs), 2.0)
            except (TimeoutError, PublishError):
                log.warning("mqtt_final_publish_failed")
        self._stopping.set()
        self.client.disconnect()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5.0)
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()

    # --- publishing (loop thread) ----------------------------------------------------------
    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Queue a message; the future resolves on the broker's PUBACK (QoS 1), or once
        written (QoS 0). While disconnected, QoS 1 messages wait in paho's session queue and
        are sent (again) on reconnect; QoS 0 fails at once with ``PublishError``."""
        assert self._loop is not None, "start() first"
        fut: asyncio.Future[None] = self._loop.create_future()
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and (qos == 0 or info.rc != mqtt.MQTT_ERR_NO_CONN):
            fut.set_exception(PublishError(mqtt.error_string(info.rc)))
            # Nobody may await a failed telemetry publish; do not warn about that.
            fut.exception()
            return fut
        # The PUBACK cannot be processed before this line: the thread only queues it, and
        # the loop handles the queue after the current callback (this one) returns.
        self._pending[info.mid] = fut
        return fut

    def publish_nowait(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> None:
        """Fire and forget (state, availability, requests): a refusal is only logged."""
        self.publish(topic, payload, qos=qos, retain=retain).add_done_callback(_log_refusal)

    @property
    def inflight(self) -> int:
        return len(self._pending)

    def _process_acks(self) -> None:
        assert self._acks is not None
        for mid, error in self._acks.take():
            fut = self._pending.pop(mid, None)
            if fut is None or fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(PublishError(error))

    # --- paho thread -----------------------------------------------------------------------
    def _t_run(self) -> None:
        delays = self._backoff.delays()
        while not self._stopping.is_set():
            try:
                self.client.reconnect()
                # loop(), not loop_forever(): loop() creates paho's socket pair, which is how
                # a publish() from the event loop wakes this thread's select() at once.
                while self.client.loop(timeout=1.0) == mqtt.MQTT_ERR_SUCCESS:
                    pass
            except Exception as exc:
                # Anything at all (DNS, TLS, a refused socket, a paho error): this thread must
                # never die, or the door would stop reporting until restarted.
                self._t_error(f"{type(exc).__name__}: {exc}")
            if self._stopping.is_set():
                break
            # A connection that got its CONNACK resets the backoff (in _t_on_connect).
            if self._connected_once_since_reset:
                delays.reset()
                self._connected_once_since_reset = False
            self._stopping.wait(delays.next())

    _connected_once_since_reset = False

    def _t_error(self, error: str) -> None:
        if error != self.last_error:
            log.warning("mqtt_connect_failed", error=error, host=self.cfg.host, port=self.cfg.port)
        self.last_error = error

    def _t_call(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # The loop may close between the check and the call (shutdown).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def _t_on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: Any,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            self._t_error(f"connection refused: {reason}")
            return
        self._connected_once_since_reset = True
        for topic, qos in self.subscriptions:
            client.subscribe(topic, qos=qos)
        self._t_call(self._loop_connected, bool(flags.session_present))

    def _t_on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._t_error("connect failed")

    def _t_on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._t_call(self._loop_disconnected, str(reason))

    def _t_on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        assert self._acks is not None  # made in start(), before this thread runs
        self._acks.put((mid, f"broker refused: {reason}" if reason.is_failure else None))

    def _t_on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_message is not None:
            self._t_call(self._on_message, msg.topic, msg.payload)

    # --- state changes, on the loop ---------------------------------------------------------
    def _loop_connected(self, session_present: bool) -> None:
        self.connects += 1
        self.last_error = None
        self.connected.set()
        log.info("mqtt_connected", host=self.cfg.host, port=self.cfg.port, session=session_present)
        for fn in self._on_connected:
            try:
                fn(session_present)
            except Exception:
                log.exception("mqtt_on_connected_failed")

    def _loop_disconnected(self, reason: str) -> None:
        if self.connected.is_set():
            self.disconnects += 1
            log.warning("mqtt_disconnected", reason=reason, inflight=len(self._pending))
        self.connected.clear()
        for fn in self._on_disconnected:
            try:
                fn()
            except Exception:
                log.exception("mqtt_on_disconnected_failed")
