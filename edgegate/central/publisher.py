"""Signing and publishing what goes to the doors: credential versions, commands, snapshots.

Everything goes out at QoS 1 and counts as sent only once the broker's PUBACK is back. The
CLI writes the master store first and publishes second: when the broker cannot be reached the
change is kept as an unpublished version, published before the next one, and a door that
missed it asks for a snapshot (its version will not match the next update's ``base``).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from sqlalchemy import Engine

from edgegate.central import store
from edgegate.config.models import MqttConfig
from edgegate.contract import messages as m
from edgegate.contract.signing import Signer
from edgegate.contract.topics import ALL_DOORS, DoorTopics, site_credentials
from edgegate.errors import EdgegateError
from edgegate.mqtt.client import build_client

log = structlog.get_logger(__name__)


class BrokerUnreachable(EdgegateError, RuntimeError):
    """No connection to the broker, or no PUBACK within the timeout."""


def new_client(cfg: MqttConfig, client_id: str = "", *, clean: bool = True) -> mqtt.Client:
    """The office's connections, from the one client factory (edgegate/mqtt/client.py): MQTT
    3.1.1 with paho's own reconnection (``loop_start``), and more QoS 1 messages in flight so
    a 100-version import or a 50-chunk snapshot does not wait one round trip per message."""
    return build_client(
        cfg, client_id, clean=clean, protocol="3.1.1", auto_reconnect=True, max_inflight=100
    )


def publish_signed(
    client: mqtt.Client, signer: Signer, topic: str, message: dict[str, Any]
) -> mqtt.MQTTMessageInfo:
    return client.publish(topic, signer.sign(message), qos=1)


def wait_all(
    infos: list[mqtt.MQTTMessageInfo], timeout: float, abort: threading.Event | None = None
) -> None:
    """Block until the broker acknowledged every message (QoS 1 PUBACK). ``abort`` (set by
    a stopping ``central serve``) ends the wait early: after the client disconnected no
    PUBACK comes, and a snapshot's wait of minutes would hold the process's exit (the
    executor's thread is joined at shutdown)."""
    deadline = time.monotonic() + timeout
    for info in infos:
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise BrokerUnreachable(f"publish failed: {mqtt.error_string(info.rc)}")
        try:
            while not info.is_published():
                left = deadline - time.monotonic()
                if left <= 0 or (abort is not None and abort.is_set()):
                    break
                info.wait_for_publish(left if abort is None else min(left, 0.2))
        except (RuntimeError, ValueError) as exc:
            raise BrokerUnreachable(str(exc)) from None
        if not info.is_published():
            if abort is not None and abort.is_set():
                raise BrokerUnreachable("stopping: PUBACKs no longer awaited")
            raise BrokerUnreachable(f"no PUBACK within {timeout:g} s")


class Publisher:
    """A short-lived connection for one CLI command: ``with Publisher(...) as pub: ...``."""

    def __init__(self, cfg: MqttConfig, signer: Signer, site: str, timeout: float = 5.0) -> None:
        self.cfg = cfg
        self.signer = signer
        self.site = site
        self.timeout = timeout
        self.client = new_client(cfg, f"edgegate-central-cli-{uuid.uuid4().hex[:8]}")
        self.client.connect_timeout = timeout
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            self._connected.set()

    def __enter__(self) -> Publisher:
        try:
            self.client.connect(self.cfg.host, self.cfg.port, keepalive=30)
        except OSError as exc:
            raise BrokerUnreachable(f"{self.cfg.host}:{self.cfg.port}: {exc}") from None
        self.client.loop_start()
        if not self._connected.wait(self.timeout):
            self.close()
            raise BrokerUnreachable(f"{self.cfg.host}:{self.cfg.port}: no CONNACK")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, topic: str, messages: list[dict[str, Any]]) -> None:
        infos = [publish_signed(self.client, self.signer, topic, msg) for msg in messages]
        wait_all(infos, self.timeout + 0.01 * len(infos))

    def versions(self, engine: Engine, progress: Any = None) -> list[int]:
        """Publish every version not yet acknowledged, oldest first; mark them published."""
        with engine.connect() as conn:
            pending = store.unpublished(conn)
        topic = site_credentials(self.site)
        sent: list[int] = []
        # Batches keep memory flat on a 100,000-people import and mark progress as it goes.
        for start in range(0, len(pending), 20):
            batch = pending[start : start + 20]
            self.send(topic, [v.message(self.site) for v in batch])
            with engine.begin() as conn:
                store.mark_published(conn, [v.version for v in batch], time.time())
            sent.extend(v.version for v in batch)
            if progress is not None:
                progress.update(len(batch))
        if sent:
            log.info("versions_published", first=sent[0], last=sent[-1])
        return sent


def command_message(
    site: str, door: str, cmd: str, *, ttl: float, by: str = "", args: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A command, checked against the contract model before anyone signs it."""
    issued = datetime.now(UTC)
    message = {
        "type": "command",
        "v": m.PROTOCOL,
        "id": uuid.uuid4().hex,
        "site": site,
        "door": door,
        "cmd": cmd,
        "args": args or {},
        "issued": m.rfc3339(issued),
        "expires": m.rfc3339(issued + timedelta(seconds=ttl)),
        "by": by,
    }
    m.Command.model_validate(message)
    return message


def command_topic(site: str, door: str) -> str:
    topics = DoorTopics(site, door)
    return topics.all_cmd if door == ALL_DOORS else topics.cmd
