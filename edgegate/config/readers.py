"""The ``[[readers]]`` tables (one model per ``type``) and the ``[pin]`` section.

Each model is declared as a reader type once, in ``reader_types.py``, which builds the
``[[readers]]`` union from the declarations.

Every reader table shares ``direction`` and ``name`` (``ReaderBase``); docs/readers.md and
docs/osdp.md describe the wiring behind each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from edgegate.config.base import ID_PATTERN, StrictModel


class ReaderBase(StrictModel):
    direction: Literal["in", "out"] = Field(
        "in", description="Whether this reader lets people in or out of the area."
    )
    name: str | None = Field(
        None, description="Reader name in events and logs; defaults to '<type><index>'."
    )


class Rdm6300Config(ReaderBase):
    type: Literal["rdm6300"] = Field(description="125 kHz EM4100 reader on a UART at 9600 baud.")
    port: str = Field("/dev/serial0", description="Serial device the reader's TX is wired to.")
    baudrate: int = Field(9600, gt=0, description="RDM6300 speaks 9600 baud, 8N1.")
    hold_off_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="A card held on the reader repeats its frame; the same card within this "
        "many seconds of its last frame counts once.",
    )


class Pn532Config(ReaderBase):
    type: Literal["pn532"] = Field(
        description="NXP PN532 13.56 MHz reader (MIFARE, NTAG) on a UART (HSU mode)."
    )
    port: str = Field("/dev/serial0", description="Serial device the PN532's HSU is wired to.")
    baudrate: int = Field(115200, gt=0, description="HSU baud rate; 115200 out of the box.")
    poll_interval_seconds: float = Field(
        0.1,
        gt=0,
        le=5,
        description="Pause between two InListPassiveTarget polls; dominates card-to-relay "
        "latency (docs/benchmarks.md).",
    )
    timeout_seconds: float = Field(
        0.5,
        gt=0,
        le=10,
        description="How long to wait for the chip's ACK and answer before retrying once and "
        "then reporting reader_fault.",
    )
    hold_off_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="A card resting on the reader answers every poll; the same UID within "
        "this many seconds of its last sighting counts once.",
    )


class WiegandConfig(ReaderBase):
    type: Literal["wiegand"] = Field(
        description="Wiegand reader (26/34-bit cards, 4/8-bit keypad) on two GPIO inputs."
    )
    chip: str = Field(
        "/dev/gpiochip0",
        description="GPIO character device holding D0 and D1 (gpiochip0 on a Pi 5 with a "
        "current kernel, gpiochip4 on early Pi 5 kernels).",
    )
    d0: int = Field(description="Line offset (BCM number) of the DATA0 wire.", ge=0)
    d1: int = Field(description="Line offset (BCM number) of the DATA1 wire.", ge=0)
    formats: list[Literal[26, 34]] = Field(
        default_factory=lambda: list[Literal[26, 34]]([26, 34]),
        description="Card frame lengths accepted; any other length is counted and dropped.",
    )
    min_pulse_us: float = Field(
        10.0, ge=0, description="Low pulses shorter than this are glitches (counted, dropped)."
    )
    max_pulse_us: float = Field(
        500.0, gt=0, description="Low pulses longer than this are not data (counted, dropped)."
    )
    min_interval_us: float = Field(
        200.0,
        ge=0,
        description="Bits closer together than this (start to start) are too fast (counted, "
        "dropped); readers send one bit every 1-2 ms.",
    )
    frame_gap_ms: float = Field(
        25.0, gt=0, le=1000, description="Silence that ends a frame (well above the bit interval)."
    )
    hold_off_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Some readers repeat a held card; the same card within this many seconds "
        "of its last frame counts once.",
    )
    pin_key_timeout_seconds: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Keypad: a PIN ends with '#' or when no key follows within this many "
        "seconds; '*' clears it.",
    )

    @model_validator(mode="after")
    def _lines_differ(self) -> WiegandConfig:
        if self.d0 == self.d1:
            raise ValueError("d0 and d1 must be different lines")
        if self.min_pulse_us >= self.max_pulse_us:
            raise ValueError("min_pulse_us must be below max_pulse_us")
        return self


class OsdpConfig(ReaderBase):
    """An OSDP reader on RS-485; the door is the Control Panel (docs/osdp.md)."""

    type: Literal["osdp"] = Field(
        description="OSDP (IEC 60839-11-5) reader on RS-485, driven by libosdp."
    )
    port: str = Field("/dev/ttyUSB0", description="Serial device of the RS-485 adaptor.")
    baudrate: Literal[9600, 19200, 38400, 57600, 115200, 230400] = Field(
        9600, description="Line speed; must match the reader (9600 on most new readers)."
    )
    address: int = Field(
        0, ge=0, le=126, description="The reader's OSDP address on the bus (0-126)."
    )
    secure_channel: bool = Field(
        True,
        description="Encrypt and authenticate the line with the OSDP Secure Channel. Turn off "
        "only for a reader that cannot do it; the link is then readable and forgeable.",
    )
    scbk_file: Path | None = Field(
        None,
        description="File holding this reader's Secure Channel Base Key (16 bytes, or 32 hex "
        "digits). Default: the systemd credential named by scbk_credential.",
    )
    scbk_credential: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="systemd credential holding the SCBK ($CREDENTIALS_DIRECTORY/<name>, from "
        "LoadCredential=); default 'osdp-scbk-<reader name>'.",
    )
    install_mode: bool = Field(
        False,
        description="First-time key provisioning: a reader still on the default key (SCBK-D) "
        "is given this reader's SCBK (reader_key_set event). Turn off again afterwards.",
    )
    connect_timeout_seconds: float = Field(
        5.0, gt=0, le=120, description="How long to wait for the reader to come online."
    )
    pin_timeout_seconds: float = Field(
        5.0,
        ge=0,
        le=60,
        description="Digits typed without '#' are submitted as a PIN after this many seconds "
        "of keypad silence (0: '#' is required).",
    )
    pin_min_digits: int = Field(
        4, ge=1, le=16, description="Shorter keypad entries are dropped, not submitted."
    )
    pin_max_digits: int = Field(
        12, ge=1, le=32, description="An entry growing past this many digits is dropped."
    )
    grant_seconds: float = Field(
        3.0, gt=0, le=25, description="How long the reader's LED shows green after a grant."
    )
    deny_seconds: float = Field(
        2.0, gt=0, le=25, description="How long the reader's LED flashes red after a denial."
    )
    show_text: bool = Field(
        True, description="Show the decision as text on readers that have a display."
    )
    debug: bool = Field(
        False, description="Let libosdp log its protocol exchanges to stderr (commissioning)."
    )


def qr_hold_off() -> Any:
    """The hold-off of the QR scanners, serial or USB HID: one declaration (a new field per
    model, as pydantic wants)."""
    return Field(
        2.0,
        ge=0,
        le=60,
        description="A pass held under the scanner is decoded again and again; the same code "
        "within this many seconds counts once.",
    )


class QrScannerConfig(ReaderBase):
    type: Literal["qr_scanner"] = Field(
        description="QR/barcode scanner typing each code as a line on a UART (visitor passes; "
        "docs/visitors.md names a model)."
    )
    port: str = Field("/dev/ttyUSB0", description="Serial device of the scanner.")
    baudrate: int = Field(9600, gt=0, description="The scanner's UART speed (9600 8N1 usual).")
    hold_off_seconds: float = qr_hold_off()


class QrHidConfig(ReaderBase):
    type: Literal["qr_hid"] = Field(
        description="QR/barcode scanner that types as a USB keyboard (HID), read from its Linux "
        "input device (visitor passes; docs/visitors.md)."
    )
    device: str = Field(
        description="The scanner's input device: its /dev/input/by-id/...-event-kbd link (stable "
        "across replugs and reboots), or /dev/input/eventN."
    )
    layout: Literal["us", "de"] = Field(
        "us",
        description="Keyboard layout the scanner types for: 'us' (QWERTY, the scanners' factory "
        "default) or 'de' (QWERTZ); set the scanner to the same.",
    )
    grab: bool = Field(
        True,
        description="Take the device for the door alone (EVIOCGRAB), so scans are not typed into "
        "a console on the door's screen.",
    )
    hold_off_seconds: float = qr_hold_off()


class PinConfig(StrictModel):
    require: bool = Field(
        False,
        description="Card+PIN at this door: a valid card opens only after its holder's PIN is "
        "entered on the same reader's keypad (docs/readers.md).",
    )
    readers: list[str] = Field(
        default_factory=list,
        description="Names of the readers that ask for the PIN (readers with a keypad); "
        "empty: every reader of the door.",
    )
    timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="How long after the card the PIN may come; then the card is denied "
        "(reason pin_timeout).",
    )
    duress: Literal["off", "enrolled", "last_digit_plus_one"] = Field(
        "enrolled",
        description="Duress PIN: 'enrolled' (a second PIN per person, enroll pin --duress), "
        "'last_digit_plus_one' (own PIN, last digit + 1) or 'off'. A duress PIN opens as "
        "usual and journals a silent 'duress' event.",
    )
