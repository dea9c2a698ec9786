"""A paho-mqtt 2.x client configured from ``[mqtt]``: protocol, TLS, credentials, session, will.

The one place a paho client is made: the door (``edgegate.sync.link``) and the central office
(``edgegate.central.publisher``) both build theirs here, so a broker key added to ``[mqtt]``
(TLS, credentials) reaches every connection. It only builds the client and reads secrets; it
runs no network loop itself.

Secrets come from files, never from the config text: the broker password from
``password_file`` or the systemd credential ``mqtt-password``; the central office's public
keys from ``central_public_keys`` / ``central_public_key_file`` / the credential
``central-public-key``.
"""

from __future__ import annotations

import os
import random
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgegate.config.models import MqttConfig
from edgegate.contract.signing import parse_public
from edgegate.errors import EdgegateError

PASSWORD_CREDENTIAL = "mqtt-password"
PUBLIC_KEY_CREDENTIAL = "central-public-key"


class MqttSetupError(EdgegateError, ValueError):
    """The [mqtt] section names a file or key that cannot be used."""


def credential_file(name: str) -> Path | None:
    """``$CREDENTIALS_DIRECTORY/<name>`` when systemd passed that credential, else None."""
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / name).is_file():
        return Path(cred_dir) / name
    return None


def read_password(cfg: MqttConfig) -> str | None:
    path = cfg.password_file or credential_file(PASSWORD_CREDENTIAL)
    if path is None:
        return None
    try:
        # One line; a trailing newline from `echo > file` is not part of the password.
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise MqttSetupError(f"mqtt.password_file {path}: {exc.strerror or exc}") from None


def central_keys(cfg: MqttConfig) -> list[Ed25519PublicKey]:
    """Every trusted central public key: config lines, key file lines, systemd credential."""
    lines = list(cfg.central_public_keys)
    for path in (cfg.central_public_key_file, credential_file(PUBLIC_KEY_CREDENTIAL)):
        if path is None:
            continue
        try:
            text = path.read_text()
        except OSError as exc:
            raise MqttSetupError(f"central public key file {path}: {exc}") from None
        if "-----BEGIN" in text:
            lines.append(text)
        else:
            lines.extend(line for line in text.splitlines() if line.strip())
    keys = []
    for line in lines:
        try:
            keys.append(parse_public(line))
        except ValueError as exc:
            raise MqttSetupError(f"central public key {line.strip()[:20]!r}...: {exc}") from None
    return keys


def default_client_id(site: str, door: str) -> str:
    return f"edgegate-{site}-{door}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: doubling from ``low`` to ``high``, each drawn in [d/2, d] so that a
    site's doors do not all hammer a broker that comes back at the same instant."""

    low: float
    high: float

    def delays(self, rng: random.Random | None = None) -> _Delays:
        return _Delays(self, rng or random.Random())


class _Delays:
    def __init__(self, backoff: Backoff, rng: random.Random) -> None:
        self._b = backoff
        self._rng = rng
        self._next = backoff.low

    def reset(self) -> None:
        self._next = self._b.low

    def next(self) -> float:
        d = self._next
        self._next = min(self._b.high, d * 2)
        return self._rng.uniform(d / 2, d)


def build_client(
    cfg: MqttConfig,
    client_id: str,
    *,
    will_topic: str | None = None,
    will_payload: bytes = b"offline",
    auto_reconnect: bool = False,
    clean: bool = False,
    protocol: Literal["3.1.1", "5"] | None = None,
    max_inflight: int | None = None,
) -> mqtt.Client:
    """A configured, unconnected client; ``connect_async(client, cfg)`` records where to go.

    By default the session is persistent (3.1.1 clean_session=False, 5 clean_start=False plus a
    session expiry) so that commands queued while the door was away reach it and the broker
    keeps its subscriptions; ``clean`` asks for a throw-away 3.1.1 session (the office's
    one-shot CLI connections). Automatic reconnection is off unless ``auto_reconnect`` (for a
    caller that runs ``loop_start``/``loop_forever``; then paho's own backoff from
    ``backoff_*`` applies, without jitter): the door's ``MqttLink`` owns reconnection itself,
    with jitter. ``protocol`` and ``max_inflight`` override the config's.
    """
    v5 = (protocol or cfg.protocol) == "5"
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if v5 else clean,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        reconnect_on_failure=auto_reconnect,
    )
    if auto_reconnect:
        client.reconnect_delay_set(
            max(1, round(cfg.backoff_min_seconds)), max(1, round(cfg.backoff_max_seconds))
        )
    apply_security(client, cfg)
    if will_topic is not None:
        client.will_set(will_topic, will_payload, qos=1, retain=True)
    client.max_inflight_messages_set(max_inflight or cfg.max_inflight)
    client.max_queued_messages_set(0)
    return client


def apply_security(client: mqtt.Client, cfg: MqttConfig) -> None:
    """TLS (CA, optional client certificate) and username/password from ``[mqtt]``."""
    if cfg.tls or cfg.ca_file or cfg.cert_file:
        client.tls_set(
            ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
            certfile=str(cfg.cert_file) if cfg.cert_file else None,
            keyfile=str(cfg.key_file) if cfg.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(cfg.tls_insecure)
    if cfg.username is not None:
        client.username_pw_set(cfg.username, read_password(cfg))


def connect_async(client: mqtt.Client, cfg: MqttConfig) -> None:
    """Record where and how to connect; the network thread calls ``reconnect()``."""
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry_seconds
        client.connect_async(cfg.host, cfg.port, cfg.keepalive, clean_start=False, properties=props)
    else:
        client.connect_async(cfg.host, cfg.port, cfg.keepalive)
