"""The configuration file's schema. Section and key names are fixed by PRODUCT.md.

Every model forbids unknown keys (a typo must fail loudly, not be ignored on a door) and every
field carries a description: `docs/config.md` is generated from these descriptions. The reader
tables live in ``readers.py``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from edgegate.config.base import ID_PATTERN, Pin, StrictModel
from edgegate.config.readers import (
    READER_TYPES,
    OsdpConfig,
    PinConfig,
    Pn532Config,
    Rdm6300Config,
    ReaderConfig,
    WiegandConfig,
)

__all__ = [
    "ID_PATTERN",
    "READER_TYPES",
    "OsdpConfig",
    "Pin",
    "PinConfig",
    "Pn532Config",
    "Rdm6300Config",
    "ReaderConfig",
    "StrictModel",
    "WiegandConfig",
]


class DoorConfig(StrictModel):
    site: str = Field(
        description="Site id; part of every MQTT topic (letters, digits, _ and -).",
        pattern=ID_PATTERN,
    )
    id: str = Field(
        description="Door id, unique within the site (letters, digits, _ and -).",
        pattern=ID_PATTERN,
    )
    name: str = Field("", description="Human-readable door name shown in the central office.")
    unlock_seconds: float = Field(
        5.0, gt=0, le=600, description="How long the lock relay stays released after a grant."
    )
    zone: str = Field(
        "",
        description="Zone this door belongs to; a visitor pass opens only the zones it lists.",
    )
    area: str = Field(
        "",
        description="Anti-passback area this door leads into (default: the zone, else the door "
        "id). Doors sharing an area share every person's in/out state.",
    )
    mode: Literal["door", "turnstile"] = Field(
        "door",
        description="'door': contact-based relock; 'turnstile': one passage per grant, counted "
        "by the [gpio] passage input, a second passage is tailgating.",
    )
    groups: list[str] = Field(
        default_factory=list,
        description="Groups allowed at this door (empty: every group). Per-door groups.",
    )
    held_open_seconds: float = Field(
        30.0, gt=0, le=3600, description="Open longer than this raises door_held_open."
    )
    prealarm_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="door_held_prealarm comes this many seconds before door_held_open (0: none).",
    )
    relock_on_close: bool = Field(
        True,
        description="Relock as soon as the door closes after a pass instead of waiting for "
        "unlock_seconds to run out.",
    )


class GpioConfig(StrictModel):
    pin_factory: str = Field(
        "lgpio",
        description="gpiozero pin factory: lgpio (Pi 5 and bookworm), rpigpio, native, or "
        "'mock' for tests and the demo.",
    )
    lock: Pin = Field(17, description="Output driving the lock relay.")
    lock_active_high: bool = Field(
        True,
        description="True when the relay closes on a high output; false for active-low boards.",
    )
    green_led: Pin | None = Field(27, description="Green LED output (grant). Omit if not wired.")
    red_led: Pin | None = Field(22, description="Red LED output (deny). Omit if not wired.")
    buzzer: Pin | None = Field(23, description="Buzzer output. Omit if not wired.")
    door_contact: Pin | None = Field(
        None, description="Door contact input (closed door pulls the pin low). Optional."
    )
    exit_button: Pin | None = Field(
        None, description="Request-to-exit button input (pressed pulls low). Optional."
    )
    fire_alarm: Pin | None = Field(
        None, description="Fire alarm input (active pulls low); releases every lock. Optional."
    )
    passage: Pin | None = Field(
        None,
        description="Turnstile passage sensor (a passage pulls low); one passage per grant. "
        "Optional.",
    )
    obstruction: Pin | None = Field(
        None,
        description="Obstruction (anti-pinch) sensor, active low: the gate never closes while "
        "it is active. Optional.",
    )
    staff_release: Pin | None = Field(
        None, description="Staff release button (pressed pulls low) for attended mode. Optional."
    )
    fire_reset: Pin | None = Field(
        None,
        description="Key switch that resets the emergency once the fire input has cleared "
        "(pressed pulls low). Optional; the 'normal' mode command also resets.",
    )
    input_bounce_seconds: float | None = Field(
        0.01,
        ge=0,
        le=1,
        description="Debounce of the inputs: edges within this many seconds of the last one "
        "are ignored (the first edge always acts at once). None: no debounce.",
    )
    grant_beep_seconds: float = Field(
        0.1, ge=0, le=5, description="Length of the short beep on a grant."
    )
    deny_beep_seconds: float = Field(
        0.6, ge=0, le=5, description="Length of the long beep on a denial."
    )
    deny_led_seconds: float = Field(
        1.5, ge=0, le=30, description="How long the red LED stays on after a denial."
    )

    @model_validator(mode="after")
    def _pins_unique(self) -> GpioConfig:
        used: dict[str, str] = {}
        for key in (
            "lock",
            "green_led",
            "red_led",
            "buzzer",
            "door_contact",
            "exit_button",
            "fire_alarm",
            "passage",
            "obstruction",
            "staff_release",
            "fire_reset",
        ):
            pin = getattr(self, key)
            if pin is None:
                continue
            if str(pin) in used:
                raise ValueError(f"pin {pin} is used by both {used[str(pin)]} and {key}")
            used[str(pin)] = key
        return self


class FingerprintConfig(StrictModel):
    port: str = Field("/dev/ttyUSB0", description="Serial device of the fingerprint module.")
    baudrate: int = Field(57600, gt=0, description="Module baud rate (57600 by default).")
    direction: Literal["in", "out"] = Field("in", description="Direction of this reader.")
    name: str = Field("finger", pattern=ID_PATTERN, description="Reader name in events and logs.")
    model: str = Field(
        "r307",
        pattern=ID_PATTERN,
        description="Sensor family (r307, r503, as608, zfm20). Templates are tagged with it: "
        "they are not portable between families.",
    )
    address: int = Field(
        0xFFFFFFFF, ge=0, le=0xFFFFFFFF, description="Module address (default 0xFFFFFFFF)."
    )
    password: int = Field(
        0, ge=0, le=0xFFFFFFFF, description="Module password (VfyPwd); 0 on a new module."
    )
    min_score: int = Field(
        50, ge=0, le=1000, description="Lowest match score that counts as a match."
    )
    poll_interval: float = Field(
        0.15, gt=0, le=5, description="Seconds between finger-detection polls (GenImg)."
    )
    assist_after: int = Field(
        3,
        ge=1,
        le=100,
        description="Failed or poor touches within assist_window_seconds before an "
        "assist_requested event calls staff.",
    )
    assist_window_seconds: float = Field(
        60.0, gt=0, description="Window for counting failed touches towards assist_after."
    )


class CameraConfig(StrictModel):
    """Face entry (docs/face.md has the reasons behind each default)."""

    source: str = Field(
        "0", description="Camera: a device index ('0'), a video file path, or a stream URL."
    )
    direction: Literal["in", "out"] = Field("in", description="Direction of this reader.")
    name: str = Field("camera", pattern=ID_PATTERN, description="Reader name in events and logs.")
    mode: Literal["face", "card+face"] = Field(
        "face",
        description="'face': a recognised face opens alone; 'card+face': a card opens only "
        "with a face of the card's person within card_face_window_seconds (and a face alone "
        "never opens).",
    )
    card_face_window_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="With mode 'card+face': how long card and face may be apart.",
    )
    tolerance: float = Field(
        0.5,
        gt=0,
        le=1.0,
        description="Largest face distance that counts as a match. Stricter than the library's "
        "0.6: a door must rather refuse than open for a look-alike.",
    )
    margin: float = Field(
        0.08,
        ge=0,
        le=1.0,
        description="The best person's distance must beat the second-best person's by this much; "
        "otherwise the face is ambiguous and not matched.",
    )
    confirm_frames: int = Field(
        2, ge=1, le=30, description="k: the same person in k of the last n frames opens."
    )
    window_frames: int = Field(
        3, ge=1, le=60, description="n: frames of one try; k of them must name the same person."
    )
    min_face_px: int = Field(
        100,
        ge=20,
        le=1000,
        description="Faces smaller than this (box height, pixels of the full frame) are ignored: "
        "too far away to be the person at the door, and too few pixels to encode reliably.",
    )
    min_sharpness: float = Field(
        150.0,
        ge=0,
        description="Frames whose face region (scaled to 64x64) has a variance of Laplacian "
        "below this are motion-blurred and skipped (0: no check). Sharp faces score 350 and "
        "more on the test photos, a 35-pixel motion blur about 140.",
    )
    downscale: float = Field(
        0.5,
        gt=0,
        le=1.0,
        description="Detection runs on the frame scaled by this factor (encoding on the full "
        "frame); at 0.5 the detector finds faces from about 105 pixels tall, at 1.0 from about "
        "60 (four times the cost).",
    )
    dominance: float = Field(
        1.5,
        ge=1.0,
        description="With several faces in view the largest is decided only when its area is at "
        "least this many times the next one's; otherwise nobody is decided (two people side by "
        "side).",
    )
    liveness: bool = Field(
        False,
        description="Require a blink (eye aspect ratio dip over consecutive frames) before a "
        "grant. Stops a still photo; not a video or a mask (docs/face.md).",
    )
    blink_ear: float = Field(
        0.21, gt=0, lt=1, description="Eye aspect ratio below which the eyes count as closed."
    )
    liveness_frames: int = Field(
        30,
        ge=3,
        le=600,
        description="Frames of one face within which a blink must be seen before the try fails.",
    )
    assist_after: int = Field(
        3,
        ge=1,
        le=100,
        description="Failed tries within assist_window_seconds before assist_requested calls "
        "staff (a try is window_frames frames of a face in view).",
    )
    assist_window_seconds: float = Field(
        30.0, gt=0, description="Window for counting failed tries towards assist_after."
    )
    redecide_seconds: float = Field(
        5.0,
        gt=0,
        description="A face that stays in view after its decision is decided again only after "
        "this long (no event storm from someone standing at the door).",
    )
    retry_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="After a refused try the face is left alone this long before the next try "
        "(the person sees the red light; the CPU is not spent on every frame of a stranger).",
    )
    fps: float = Field(
        0.0,
        ge=0,
        le=120,
        description="Frame rate a video file is played at (0: the file's own); devices and "
        "streams run at their own rate.",
    )
    nice: int = Field(
        10, ge=0, le=19, description="Niceness of the face process, so cards always come first."
    )

    @model_validator(mode="after")
    def _k_of_n(self) -> CameraConfig:
        if self.confirm_frames > self.window_frames:
            raise ValueError(
                f"confirm_frames ({self.confirm_frames}) must not exceed window_frames "
                f"({self.window_frames})"
            )
        return self


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
    keep_sent_events: int = Field(
        100_000,
        ge=0,
        description="Sent events kept in the journal for `edgegate events`; older sent ones "
        "are pruned. Unsent events are never pruned.",
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
        description="Commands whose validity (expires - issued) is longer than this are "
        "refused as expired; bounds the replay window.",
    )

    @field_validator("central_public_keys")
    @classmethod
    def _keys_parse(cls, value: list[str]) -> list[str]:
        # Imported here: the config models stay importable without the crypto stack loaded.
        from edgegate.sync.signing import parse_public

        for line in value:
            parse_public(line)  # ValueError names the problem (not base64, wrong length)
        return value

    @model_validator(mode="after")
    def _backoff_ordered(self) -> MqttConfig:
        if self.backoff_max_seconds < self.backoff_min_seconds:
            raise ValueError("backoff_max_seconds must not be below backoff_min_seconds")
        return self


class StorageConfig(StrictModel):
    path: Path = Field(
        Path("/var/lib/edgegate/edgegate.db"),
        description="SQLite store: people, credentials and the event journal.",
    )
    key_file: Path | None = Field(
        None,
        description="32-byte key that seals fingerprint templates and face encodings at rest. "
        "Default: the systemd credential 'store-key', else store.key beside the database "
        "(created on first use).",
    )


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level written to the log."
    )
    format: Literal["auto", "json", "console"] = Field(
        "auto",
        description="json under systemd (one object per line), console on a terminal; auto "
        "picks by whether stderr is a terminal.",
    )


class DaemonConfig(StrictModel):
    watchdog: bool = Field(
        True, description="Ping the systemd watchdog while the loop is healthy (WatchdogSec=)."
    )
    max_loop_lag_seconds: float = Field(
        1.0,
        gt=0,
        description="The loop counts as unhealthy (no watchdog ping) when a timer is this late.",
    )


class RulesConfig(StrictModel):
    passback: Literal["off", "hard", "soft", "timed"] = Field(
        "off",
        description="Anti-passback in this door's area: hard denies a repeated entry or exit, "
        "soft grants and flags the event, timed denies until the presence expires.",
    )
    passback_minutes: float = Field(
        30.0, gt=0, description="With passback = 'timed': minutes after which presence expires."
    )
    lockout_attempts: int = Field(
        0, ge=0, description="Denials on one reader that lock it out (0: lockout off)."
    )
    lockout_window_seconds: float = Field(
        60.0, gt=0, description="The denials must fall within this many seconds."
    )
    lockout_seconds: float = Field(
        300.0, gt=0, description="How long a locked-out reader refuses every read."
    )
    lockdown_allowed_groups: list[str] = Field(
        default_factory=list, description="Groups still granted in lockdown mode (e.g. security)."
    )
    attended_on_fault: bool = Field(
        False,
        description="Switch to attended mode (staff release) while a reader is faulty; back to "
        "normal when it recovers. Off by default: then a faulty reader only reports.",
    )
    timezone: str | None = Field(
        None,
        description="IANA time zone of schedules and holidays (e.g. 'Europe/Paris'); default: "
        "the system's.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


class ScheduleConfig(StrictModel):
    group: str = Field(description="Group the window applies to (people.attrs groups).")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        description="Days of the week the window applies on."
    )
    start: str = Field(
        description="Start time, HH:MM local.", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
    )
    end: str = Field(
        description="End time (exclusive), HH:MM local, after start; 24:00 for midnight.",
        pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
    )
    holidays: bool = Field(
        False, description="Whether the window also applies on the listed holidays."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ScheduleConfig:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
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


class Config(StrictModel):
    door: DoorConfig = Field(description="This door's identity and timing.")
    gpio: GpioConfig = Field(
        default_factory=GpioConfig, description="Relay, LEDs, buzzer and inputs."
    )
    readers: list[ReaderConfig] = Field(
        default_factory=list, description="Card readers, one [[readers]] table each."
    )
    fingerprint: FingerprintConfig | None = Field(
        None, description="UART fingerprint module (optional)."
    )
    camera: CameraConfig | None = Field(None, description="Camera for face entry (optional).")
    mqtt: MqttConfig | None = Field(
        None, description="Broker of the central office (optional: without it, standalone)."
    )
    storage: StorageConfig = Field(
        default_factory=StorageConfig, description="Where the local store lives."
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log output.")
    daemon: DaemonConfig = Field(default_factory=DaemonConfig, description="Daemon behaviour.")
    rules: RulesConfig = Field(
        default_factory=RulesConfig,
        description="Door rules: anti-passback, lockout, lockdown, attended (docs/rules.md).",
    )
    schedules: list[ScheduleConfig] = Field(
        default_factory=list,
        description="Weekly windows per group, one [[schedules]] table each; a group with no "
        "window is not scheduled.",
    )
    holidays: list[date] = Field(
        default_factory=list,
        description="Dates (YYYY-MM-DD) on which only windows with holidays = true apply.",
    )
    homeassistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig,
        description="Home Assistant MQTT discovery (optional, off by default).",
    )
    pin: PinConfig = Field(
        default_factory=PinConfig,
        description="Keypad PIN: card+PIN mode and the duress PIN (docs/readers.md).",
    )

    @model_validator(mode="after")
    def _reader_names_unique(self) -> Config:
        names = self.reader_names()
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"reader names must be unique: {sorted(dupes)}")
        return self

    def reader_names(self) -> list[str]:
        return [r.name or f"{r.type}{i}" for i, r in enumerate(self.readers)]
