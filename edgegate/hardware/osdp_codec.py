"""OSDP data the door interprets itself: card data, keypad keys, the Secure Channel key, and
the feedback commands it sends. Pure functions and one small state machine, no IO, no libosdp,
so every parser here is tested with hypothesis.

Card data (osdp_RAW / osdp_FMT, IEC 60839-11-5 §7.10-11): a raw read carries a bit count and the
bits packed MSB first, the last byte padded with zero bits. The credential value is those bits
as an unsigned number in uppercase hex, zero-padded to ``ceil(bits / 4)`` digits: a 32-bit UID
reads ``DEADBEEF``, exactly what a PN532 reports for the same card, and a 26-bit Wiegand frame
reads seven digits. An ASCII (FMT) read is its text, uppercased.

Keypad (osdp_KEYPAD, §7.12): digits are ASCII '0'-'9'; the '*' (clear) key is 0x7F and the '#'
(enter) key 0x0D. Readers that send the literal '*' (0x2A) and '#' (0x23) are accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgegate.core.wiegand_card import data_hex, wiegand_data

SCBK_BYTES = 16

# libosdp's card formats (osdp.CardFormat): raw unspecified, raw Wiegand, ASCII.
FMT_RAW_UNSPECIFIED = 0
FMT_RAW_WIEGAND = 1
FMT_ASCII = 2

KEY_CLEAR = frozenset({0x7F, ord("*")})
KEY_ENTER = frozenset({0x0D, ord("#")})
DIGITS = frozenset(b"0123456789")


def card_value(fmt: int, data: bytes, bits: int | None) -> str:
    """The credential value of one card read. Raises ``ValueError`` on data that cannot be a
    card (no bits, fewer bytes than the bit count needs, non-printable ASCII, unknown format)."""
    if fmt == FMT_ASCII:
        try:
            text = data.decode("ascii").strip()
        except UnicodeDecodeError:
            raise ValueError("ASCII card data is not ASCII") from None
        if not text or not text.isprintable():
            raise ValueError("ASCII card data is empty or not printable")
        return text.upper()
    if fmt not in (FMT_RAW_UNSPECIFIED, FMT_RAW_WIEGAND):
        raise ValueError(f"unknown card format {fmt}")
    if bits is None or bits <= 0:
        raise ValueError("raw card data without a bit count")
    need = (bits + 7) // 8
    if len(data) < need:
        raise ValueError(f"{bits} bits need {need} bytes, got {len(data)}")
    number = int.from_bytes(data[:need], "big") >> (need * 8 - bits)
    # A 26- or 34-bit Wiegand frame (parity checks) is named by its data bits, as a GPIO
    # Wiegand reader names it (edgegate/core/wiegand_card.py).
    wiegand = wiegand_data(bits, number)
    if wiegand is not None:
        return data_hex(bits, wiegand)
    return f"{number:0{(bits + 3) // 4}X}"


def encode_card(value: str) -> tuple[bytes, int]:
    """The raw card data (packed bits, bit count) a reader sends for a card whose value is
    ``value`` in whole bytes (even-length hex): what the simulator presents."""
    raw = bytes.fromhex(value)
    if not raw:
        raise ValueError("empty card value")
    return raw, len(raw) * 8


@dataclass
class KeypadBuffer:
    """Assembles key presses into PINs.

    '#' submits the digits typed so far, '*' clears them; with ``timeout`` > 0, digits left
    without a '#' are submitted once the keypad has been silent that long. A submission with
    fewer than ``min_digits`` digits is dropped (a stray key is not a PIN), and so is an entry
    that grows past ``max_digits`` (someone leaning on the keypad). ``now`` is passed in.
    """

    min_digits: int = 4
    max_digits: int = 12
    timeout: float = 5.0
    digits: list[str] = field(default_factory=list)
    last_key: float = 0.0
    dropped: int = 0
    ignored_keys: int = 0
    overflowed: bool = False

    def feed(self, keys: bytes, now: float) -> list[str]:
        """Keys from one osdp_KEYPAD reply; returns the PINs they complete, in order."""
        out: list[str] = []
        expired = self.expire(now)
        if expired is not None:
            out.append(expired)
        for key in keys:
            if key in DIGITS:
                if self.overflowed:
                    continue
                self.digits.append(chr(key))
                if len(self.digits) > self.max_digits:
                    # Dropped as a whole: the rest of this entry, up to '#' or '*', too.
                    self.digits.clear()
                    self.overflowed = True
                    self.dropped += 1
            elif key in KEY_ENTER:
                pin = self._take()
                if pin is not None:
                    out.append(pin)
            elif key in KEY_CLEAR:
                self.digits.clear()
                self.overflowed = False
            else:
                self.ignored_keys += 1  # function keys (A-D, F1-F4): no meaning at this door
        self.last_key = now
        return out

    def deadline(self) -> float | None:
        """When the pending digits time out (None: nothing pending, or no timeout)."""
        if not self.digits or self.timeout <= 0:
            return None
        return self.last_key + self.timeout

    def expire(self, now: float) -> str | None:
        """Submit the pending digits if the keypad has been silent past the timeout."""
        if self.overflowed and now >= self.last_key + self.timeout > self.last_key:
            self.overflowed = False  # a new entry may start after a pause
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        return self._take()

    def reset(self) -> None:
        """Forget a half-typed entry (the reader went away mid-entry)."""
        self.digits.clear()
        self.overflowed = False

    def _take(self) -> str | None:
        pin = "".join(self.digits)
        self.digits.clear()
        self.overflowed = False
        if len(pin) < max(1, self.min_digits):
            if pin:
                self.dropped += 1
            return None
        return pin


def parse_scbk(text: bytes) -> bytes:
    """A Secure Channel Base Key from a key file or credential: 16 raw bytes, or 32 hex digits
    (whitespace and a trailing newline allowed, as written by ``openssl rand -hex 16``)."""
    if len(text) == SCBK_BYTES and not _is_hex_text(text):
        return bytes(text)
    cleaned = b"".join(text.split())
    if len(cleaned) != SCBK_BYTES * 2 or not _is_hex_text(cleaned):
        raise ValueError(f"an SCBK is {SCBK_BYTES} raw bytes or {SCBK_BYTES * 2} hex digits")
    return bytes.fromhex(cleaned.decode())


def _is_hex_text(data: bytes) -> bool:
    return all(c in b"0123456789abcdefABCDEF" for c in data)


# --- feedback commands (libosdp command dicts) ---------------------------------------------
# Times on the wire are in units of 100 ms in one byte: 0.1 s to 25.5 s.
CMD_LED = 2
CMD_BUZZER = 3
CMD_TEXT = 4
LED_OFF, LED_RED, LED_GREEN, LED_AMBER = 0, 1, 2, 3  # OSDP colour codes
TEXT_MAX = 32


def ticks(seconds: float) -> int:
    """Seconds as OSDP 100 ms ticks, clamped to one byte and at least one tick."""
    return max(1, min(255, round(seconds * 10)))


def led_command(color: int, seconds: float, *, flash: bool = False) -> dict[str, Any]:
    """A temporary LED state for ``seconds`` (steady, or flashing 200/200 ms), after which the
    reader returns to its permanent state."""
    on, off = (2, 2) if flash else (ticks(seconds), 0)
    return {
        "command": CMD_LED,
        "reader": 0,
        "led_number": 0,
        "temporary": True,
        "control_code": 2,  # set the temporary state and start its timer now
        "on_count": on,
        "off_count": off,
        "on_color": color,
        "off_color": LED_OFF,
        "timer_count": ticks(seconds),
    }


def buzzer_command(on_seconds: float, repeats: int = 1, off_seconds: float = 0.1) -> dict[str, Any]:
    return {
        "command": CMD_BUZZER,
        "reader": 0,
        "control_code": 2,  # the default tone
        "on_count": ticks(on_seconds),
        "off_count": ticks(off_seconds),
        "rep_count": max(1, min(255, repeats)),
    }


def text_command(text: str, seconds: float) -> dict[str, Any]:
    """Temporary text on the first row for ``seconds`` (printable ASCII, at most 32 chars)."""
    clean = "".join(c for c in text if c.isascii() and c.isprintable())[:TEXT_MAX]
    return {
        "command": CMD_TEXT,
        "reader": 0,
        "control_code": 3,  # temporary text, no wrap
        "temp_time": max(1, min(255, round(seconds))),
        "offset_row": 1,
        "offset_col": 1,
        "data": clean,
    }
