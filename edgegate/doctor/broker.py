"""Doctor check of the central office's broker: TCP reachability, TLS, MQTT CONNECT.

Reads the [mqtt] keys it knows with ``getattr`` so it keeps working as the sync layer adds
keys (tls, username, ...): host and port always exist.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

from edgegate.config.models import Config
from edgegate.doctor import Check, fail, ok, warn
from edgegate.sync.homeassistant import discovery_messages


def _credential_path(name: str) -> Path | None:
    """A systemd credential (LoadCredential=) of this name, when there is one."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    path = Path(directory) / name if directory else None
    return path if path and path.is_file() else None


def _credential(name: str) -> str | None:
    path = _credential_path(name)
    return path.read_text().strip() if path else None


def check_homeassistant(config: Config) -> list[Check]:
    if not config.homeassistant.enabled:
        return []
    if config.mqtt is None:
        return [warn("home assistant", "[homeassistant] is enabled but there is no [mqtt]")]
    entities = discovery_messages(config)
    return [
        ok(
            "home assistant",
            f"{len(entities)} entities announced under {config.homeassistant.prefix}/ "
            "on each connection",
        )
    ]


def check_broker(config: Config, timeout: float = 5.0) -> list[Check]:
    cfg = config.mqtt
    if cfg is None:
        return [ok("broker", "no [mqtt] section: the door runs standalone")]
    host, port = cfg.host, cfg.port
    where = f"{host}:{port}"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return [fail("broker", f"cannot reach {where}: {exc.strerror or exc}")]
    out = [ok("broker", f"{where} reachable over TCP")]
    tls = bool(getattr(cfg, "tls", False))
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgegate-doctor-{uuid.uuid4().hex[:8]}"
    )
    if tls:
        ca = getattr(cfg, "ca_file", None) or getattr(cfg, "tls_ca", None)
        cert = getattr(cfg, "cert_file", None) or getattr(cfg, "tls_cert", None)
        key = _credential_path("mqtt-client-key") or getattr(cfg, "key_file", None)
        try:
            client.tls_set(
                ca_certs=str(ca) if ca else None,
                certfile=str(cert) if cert else None,
                keyfile=str(key) if key and cert else None,
            )
        except (OSError, ssl.SSLError, ValueError) as exc:
            return [*out, fail("broker tls", f"TLS set-up failed: {exc}")]
    username = getattr(cfg, "username", None)
    if username:
        password = _credential("mqtt-password") or getattr(cfg, "password", None)
        client.username_pw_set(username, password)
    result: dict[str, object] = {}
    done = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        result["reason"] = reason
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except ssl.SSLError as exc:
        return [*out, fail("broker tls", f"TLS handshake with {where} failed: {exc}")]
    except OSError as exc:
        return [*out, fail("broker", f"MQTT connection to {where} failed: {exc}")]
    client.loop_start()
    try:
        answered = done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    if not answered:
        return [*out, fail("broker", f"{where} accepted TCP but sent no MQTT CONNACK")]
    reason = result["reason"]
    if getattr(reason, "is_failure", False):
        return [*out, fail("broker", f"{where} refused the MQTT connection: {reason}")]
    mode = "TLS" if tls else "no TLS"
    out.append(ok("broker", f"{where} accepted an MQTT connection ({mode})"))
    if not tls and host not in ("localhost", "127.0.0.1", "::1"):
        out.append(warn("broker tls", "events and commands cross the network unencrypted"))
    return out
