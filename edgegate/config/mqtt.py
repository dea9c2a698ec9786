"""``[mqtt]`` (the broker of the central office, docs/mqtt.md) and ``[homeassistant]``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgegate.config.base import StrictModel


class MqttConfig(StrictModel):
    host: str = Field("localhost", description="Broker host name or address.")
    port: int = Field(1883, gt=0, lt=65536, description="Broker TCP port.")
    # --- MQTT sync (docs/mqtt.md) -----------------------------------------------------------
    protocol: Literal["3.1.1", "5"] = Field(
        "5", description="MQTT protocol version: '5' (default) or '3.1.1' for older brokers."
    )
    client_id: str = Field(
        "",
        max_length=128,
        description="MQTT client id; default 'edgegate-<site>-<door>'. Must be stable: the "
        "broker keeps the door's persistent session under it.",
    )
    keepalive: int = Field(
        30,
        ge=5,
        le=3600,
        description="Seconds between keepalive pings; the broker declares "
        "the door offline (last will) after 1.5 times this without traffic.",
    )
    session_expiry_seconds: int = Field(
        7 * 24 * 3600,
        ge=0,
        description="MQTT 5: how long the broker keeps the door's session (and queued "
        "commands) while it is away. 3.1.1 sessions never expire.",
    )
    tls: bool = Field(False, description="Connect with TLS (also implied by ca_file or cert_file).")
    ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) that signed the broker's certificate; "
        "default: the system's trust store.",
    )
    cert_file: Path | None = Field(
        None, description="Client certificate (PEM) for brokers that require one."
    )
    key_file: Path | None = Field(
        None, description="Private key (PEM) of cert_file (default: inside cert_file)."
    )
    tls_insecure: bool = Field(
        False,
        description="Skip the broker host name check (never in production; for test brokers "
        "addressed by IP).",
    )
    username: str | None = Field(None, description="Broker user name.")
    password_file: Path | None = Field(
        None,
        description="File holding the broker password (one line). Default: the systemd "
        "credential 'mqtt-password' ($CREDENTIALS_DIRECTORY), if present.",
    )
    central_public_keys: list[str] = Field(
        default_factory=list,
        description="Public key(s) of the central office, one base64 line each (edgegate "
        "central keygen prints it). Every key listed is trusted (key roll-over).",
    )
    central_public_key_file: Path | None = Field(
        None,
        description="File with more central public keys, one per line. The systemd credential "
        "'central-public-key' is read too, if present. Without any key, every signed message "
        "is refused (unknown_key) and the door only reports.",
    )
    telemetry_seconds: float = Field(
        60.0, ge=1, le=86400, description="Seconds between telemetry messages."
    )
    max_inflight: int = Field(
        256,
        ge=1,
        le=65000,
        description="QoS 1 events published and not yet acknowledged by the broker at once.",
    )
    receipts: bool = Field(
        True,
        description="End-to-end receipts: keep every event until the central office's signed "
        "receipt (edgegate/<site>/<door>/receipts) says it is stored, re-send what the broker "
        "acknowledged but no receipt covered after receipt_timeout_seconds, prune only covered "
        "events. false: a broker's PUBACK is the end of the door's duty (a third-party "
        "consumer that sends no receipts).",
    )
    receipt_timeout_seconds: float = Field(
        300.0,
        ge=1,
        le=86400,
        description="Seconds after the broker's PUBACK before an event no receipt covers is "
        "sent again (receipts on), at least: the door waits up to three times this when it "
        "measured that the office's receipts lag more, and doubles the pause after each "
        "re-send while receipts stand still.",
    )
    receipt_window: int = Field(
        2000,
        ge=1,
        le=1_000_000,
        description="Events the door publishes ahead of the office's receipts (receipts on): "
        "an event more than this above the lowest one no receipt covers waits in the journal "
        "until a receipt moves on. Bounds what queues at the broker for a slow or absent "
        "office and what goes again after a broker crash.",
    )
    keep_sent_events: int = Field(
        100_000,
        ge=0,
        description="Sent events kept in the journal for `edgegate events`; older sent ones "
        "are pruned. Unsent events are never pruned, nor (receipts on) events no receipt "
        "covered.",
    )
    keep_sent_days: float | None = Field(
        None,
        gt=0,
        description="If set, sent events are pruned only once older than this many days and "
        "beyond keep_sent_events (both conditions).",
    )
    backoff_min_seconds: float = Field(
        0.5, gt=0, le=60, description="First reconnect delay after the broker is lost."
    )
    backoff_max_seconds: float = Field(
        60.0, gt=0, le=3600, description="Reconnect delay cap (doubling, with random jitter)."
    )
    command_max_age_seconds: float = Field(
        3600.0,
        gt=0,
        description="Commands whose validity (expires - issued, or expires - now) is longer "
        "than this are refused as expired; bounds the replay window and how long seen "
        "command ids are kept.",
    )

    @field_validator("central_public_keys")
    @classmethod
    def _keys_parse(cls, value: list[str]) -> list[str]:
        # Imported here: the config models stay importable without the crypto stack loaded.
        from edgegate.contract.signing import parse_public

        for line in value:
            parse_public(line)  # ValueError names the problem (not base64, wrong length)
        return value

    @model_validator(mode="after")
    def _backoff_ordered(self) -> MqttConfig:
        if self.backoff_max_seconds < self.backoff_min_seconds:
            raise ValueError("backoff_max_seconds must not be below backoff_min_seconds")
        return self


class HomeAssistantConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Announce the door to Home Assistant by MQTT discovery (needs [mqtt]): a "
        "lock and sensors for door contact, mode, last access, today's traffic and journal "
        "depth (docs/homeassistant.md).",
    )
    prefix: str = Field(
        "homeassistant",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Home Assistant's MQTT discovery prefix (its MQTT integration's setting).",
    )
