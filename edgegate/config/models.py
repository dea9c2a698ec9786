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
from edgegate.config.biometric import CameraConfig, FingerprintConfig
from edgegate.config.mqtt import HomeAssistantConfig, MqttConfig
from edgegate.config.reader_types import READER_TYPES, ReaderConfig
from edgegate.config.readers import (
    OsdpConfig,
    PinConfig,
    Pn532Config,
    Rdm6300Config,
    WiegandConfig,
)
from edgegate.config.site_rules import (
    AreaConfig,
    FeedbackConfig,
    InterlockConfig,
    OfflineConfig,
    PostureConfig,
)

__all__ = [
    "ID_PATTERN",
    "READER_TYPES",
    "CameraConfig",
    "FingerprintConfig",
    "HomeAssistantConfig",
    "MqttConfig",
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
    location: str = Field(
        "",
        max_length=200,
        description="Where the door is (building, floor, room); sent with the door's state "
        "and telemetry for the office's equipment register.",
    )
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


# The door's inputs (edgegate/hardware/inputs.py opens them in this order).
InputName = Literal[
    "fire_alarm",
    "door_contact",
    "exit_button",
    "passage",
    "obstruction",
    "staff_release",
    "fire_reset",
]


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
    normally_closed: list[InputName] = Field(
        default_factory=list,
        description="Inputs wired to a normally-closed contact: closed (pin pulled low) is the "
        "quiet state and an open contact is the input being active, so a cut or unplugged wire "
        "reads as active. Set it for fire_alarm (a cut wire releases the door) and obstruction "
        "(a cut wire holds the gate open), as the example config does; docs/wiring.md. Inputs "
        "not listed are normally open: active pulls the pin low. A name whose input has no pin "
        "is ignored.",
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
    siren: Pin | None = Field(
        None,
        description="Alarm output (siren or strobe relay): sounds on door_forced, "
        "door_held_open and tailgating, until siren_seconds run out or the office silences it "
        "(signed 'silence' command). Never on duress. Optional.",
    )
    siren_active_high: bool = Field(
        True, description="True when the siren relay closes on a high output."
    )
    siren_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="How long the alarm output sounds at most for one alarm (a new alarm "
        "restarts it).",
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
            "siren",
        ):
            pin = getattr(self, key)
            if pin is None:
                continue
            if str(pin) in used:
                raise ValueError(f"pin {pin} is used by both {used[str(pin)]} and {key}")
            used[str(pin)] = key
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
    reserve_mb: float = Field(
        8.0,
        ge=0,
        le=1024,
        description="Space kept back for the journal: a file of this size beside the store "
        "(<store>.reserve), deleted when the disk is full so the door can still open its store "
        "and journal; made again at a start with room. 0: none.",
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
    repeat_burst: int = Field(
        10,
        ge=0,
        description="Warnings with the same event and reason written per repeat_window_seconds; "
        "the rest are counted, and the next one written says how many were suppressed "
        "(counters in telemetry stay exact). 0: no limit.",
    )
    repeat_window_seconds: float = Field(
        60.0, gt=0, le=86400, description="The window of repeat_burst, in seconds."
    )


class DaemonConfig(StrictModel):
    doctor_minutes: float = Field(
        0.0,
        ge=0,
        le=10080,
        description="Run the doctor checks that are safe while the daemon runs (store, "
        "clock, broker, readers) every this many minutes and journal a doctor_report event "
        "for the office (0: only on the office's signed 'doctor' command).",
    )
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
    staff_groups: list[str] = Field(
        default_factory=lambda: ["staff"],
        description="Groups whose card, tapped shortly before the [gpio] staff_release button, "
        "names the staff member in the staff_release event.",
    )
    staff_card_seconds: float = Field(
        10.0,
        ge=0,
        le=300,
        description="How long before the staff_release button a staff card counts (0: the "
        "button never names anyone).",
    )
    attended_on_fault: bool = Field(
        False,
        description="Switch to attended mode (staff release) while a reader is faulty; back to "
        "normal when it recovers. Off by default: then a faulty reader only reports.",
    )
    two_person_seconds: float = Field(
        0.0,
        ge=0,
        description="Two-person rule (0: off): two different authorised people within this "
        "many seconds open the door; one alone is denied with reason 'two_person'.",
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
    postures: list[PostureConfig] = Field(
        default_factory=list,
        description="Door postures by the clock, one [[postures]] table each (free access, "
        "card+PIN, lockdown windows); the first window that applies wins; outside them: card.",
    )
    area: AreaConfig = Field(
        default_factory=AreaConfig,
        description="Doors of this door's area sharing presence over the broker.",
    )
    interlock: InterlockConfig | None = Field(
        None, description="Interlock (mantrap) with another door (optional)."
    )
    offline: OfflineConfig = Field(
        default_factory=OfflineConfig,
        description="What the door does when it has not heard the office for too long.",
    )
    feedback: FeedbackConfig = Field(
        default_factory=FeedbackConfig,
        description="What readers show people (texts, language; docs/rules.md).",
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
