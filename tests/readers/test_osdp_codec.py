"""Properties of what the door parses from OSDP readers: card data, keypad keys, SCBK files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegate.core.wiegand_card import data_hex, wiegand_data
from edgegate.hardware.osdp_codec import (
    FMT_ASCII,
    FMT_RAW_UNSPECIFIED,
    FMT_RAW_WIEGAND,
    KeypadBuffer,
    buzzer_command,
    card_value,
    encode_card,
    led_command,
    parse_scbk,
    text_command,
    ticks,
)

raw_formats = st.sampled_from([FMT_RAW_UNSPECIFIED, FMT_RAW_WIEGAND])


def pack_bits(bits: str) -> bytes:
    """Bits MSB first, zero-padded to whole bytes: how osdp_RAW carries them."""
    padded = bits + "0" * (-len(bits) % 8)
    return int(padded, 2).to_bytes(len(padded) // 8, "big")


def test_known_values():
    assert card_value(FMT_RAW_UNSPECIFIED, bytes.fromhex("DEADBEEF"), 32) == "DEADBEEF"
    # 26-bit Wiegand 1 0000_0001 0000_0000_0000_0001 0 (facility 1, card 1) packed in 4 bytes.
    bits = "1" + "00000001" + "0000000000000001" + "0"
    # A Wiegand frame with good parity is named by its data bits, as a GPIO reader names it.
    assert card_value(FMT_RAW_WIEGAND, pack_bits(bits), 26) == "010001"
    bad_parity = "0" + bits[1:]
    assert card_value(FMT_RAW_WIEGAND, pack_bits(bad_parity), 26) == "0020002"
    assert card_value(FMT_ASCII, b" 12ab34 ", None) == "12AB34"


@given(st.binary(min_size=1, max_size=16), raw_formats)
def test_whole_bytes_read_as_their_hex(data: bytes, fmt: int):
    """A UID of whole bytes reads exactly as a PN532 reports it: uppercase hex of the bytes."""
    assert card_value(fmt, data, len(data) * 8) == data.hex().upper()
    assert encode_card(data.hex()) == (data, len(data) * 8)


@given(st.text(alphabet="01", min_size=1, max_size=128), raw_formats, st.binary(max_size=3))
def test_any_bit_count_round_trips(bits: str, fmt: int, trailing: bytes):
    value = card_value(fmt, pack_bits(bits) + trailing, len(bits))
    data = wiegand_data(len(bits), int(bits, 2))
    if data is not None:  # a 26/34-bit Wiegand frame: its data bits (core/wiegand_card.py)
        assert value == data_hex(len(bits), data)
        return
    assert value == value.upper() and len(value) == (len(bits) + 3) // 4
    assert int(value, 16) == int(bits, 2)


@given(st.binary(max_size=20), st.integers(min_value=-8, max_value=200), st.integers(0, 5))
def test_never_raises_anything_but_value_error(data: bytes, bits: int, fmt: int):
    try:
        value = card_value(fmt, data, bits)
    except ValueError:
        return
    assert value and value == value.upper()


@given(st.binary(max_size=3), st.integers(min_value=1, max_value=64))
def test_too_few_bytes_for_the_bit_count_is_refused(data: bytes, bits: int):
    if len(data) >= (bits + 7) // 8:
        return
    with pytest.raises(ValueError):
        card_value(FMT_RAW_UNSPECIFIED, data, bits)


# --- keypad ---------------------------------------------------------------------------------
pins = st.text(alphabet="0123456789", min_size=4, max_size=12)
enter = st.sampled_from([b"\r", b"#"])
clear = st.sampled_from([b"\x7f", b"*"])


@given(st.lists(pins, min_size=1, max_size=5), enter, st.integers(1, 4))
def test_pins_submitted_on_enter_however_the_keys_are_split(
    entered: list[str], ent: bytes, chunk: int
):
    keys = b"".join(p.encode() + ent for p in entered)
    buf = KeypadBuffer(timeout=0)
    out: list[str] = []
    for i in range(0, len(keys), chunk):
        out += buf.feed(keys[i : i + chunk], now=float(i))
    assert out == entered
    assert buf.deadline() is None


@given(st.text(alphabet="0123456789", max_size=12), clear, pins, enter)
def test_clear_forgets_what_was_typed_before(junk: str, clr: bytes, pin: str, ent: bytes):
    buf = KeypadBuffer(timeout=0)
    assert buf.feed(junk.encode() + clr + pin.encode() + ent, 0.0) == [pin]


@given(pins, st.floats(min_value=0.5, max_value=30))
def test_silence_submits_after_the_timeout_and_not_before(pin: str, timeout: float):
    buf = KeypadBuffer(timeout=timeout)
    assert buf.feed(pin.encode(), now=100.0) == []
    assert buf.deadline() == 100.0 + timeout
    assert buf.expire(100.0 + timeout * 0.99) is None
    assert buf.expire(100.0 + timeout) == pin
    assert buf.deadline() is None and buf.expire(1e9) is None


@given(pins, pins)
def test_keys_after_a_long_pause_start_a_new_entry(first: str, second: str):
    buf = KeypadBuffer(timeout=5)
    buf.feed(first.encode(), now=0.0)
    assert buf.feed(second.encode() + b"#", now=60.0) == [first, second]


@given(pins, pins, enter)
def test_reset_forgets_a_half_typed_entry(half: str, pin: str, ent: bytes):
    buf = KeypadBuffer(timeout=5)
    buf.feed(half.encode(), 0.0)
    buf.reset()
    assert buf.deadline() is None and buf.expire(100.0) is None
    assert buf.feed(pin.encode() + ent, 1.0) == [pin]


@given(st.text(alphabet="0123456789", min_size=1, max_size=3), enter)
def test_short_entries_are_dropped(short: str, ent: bytes):
    buf = KeypadBuffer(min_digits=4)
    assert buf.feed(short.encode() + ent, 0.0) == []
    assert buf.dropped == 1


@given(st.integers(min_value=13, max_value=40), enter, pins)
def test_overlong_entries_are_dropped_whole(n: int, ent: bytes, pin: str):
    buf = KeypadBuffer(max_digits=12, timeout=0)
    assert buf.feed(b"7" * n + ent, 0.0) == []
    assert buf.dropped == 1
    # The next entry is a fresh one.
    assert buf.feed(pin.encode() + ent, 1.0) == [pin]


@given(st.binary(max_size=64), st.floats(min_value=0, max_value=1e6))
def test_any_keys_only_ever_yield_digit_strings(keys: bytes, now: float):
    buf = KeypadBuffer()
    for pin in [*buf.feed(keys, now), buf.expire(now + 10) or "0000"]:
        assert pin.isdigit() and 4 <= len(pin) <= 12


# --- keys -----------------------------------------------------------------------------------
@given(st.binary(min_size=16, max_size=16), st.sampled_from(["", "\n", " \n", "\r\n"]))
def test_scbk_from_hex_or_raw(key: bytes, tail: str):
    assert parse_scbk((key.hex() + tail).encode()) == key
    assert parse_scbk((key.hex().upper() + tail).encode()) == key
    assert parse_scbk(key) == key


@given(st.binary(max_size=40))
def test_scbk_is_16_bytes_or_refused(text: bytes):
    try:
        key = parse_scbk(text)
    except ValueError:
        return
    assert len(key) == 16


# --- commands -------------------------------------------------------------------------------
@given(st.floats(min_value=0, max_value=1000, allow_nan=False))
def test_ticks_fit_in_one_byte(seconds: float):
    assert 1 <= ticks(seconds) <= 255


@given(st.text(max_size=80), st.floats(min_value=0, max_value=1000, allow_nan=False))
def test_commands_stay_within_the_wire_limits(text: str, seconds: float):
    shown = text_command(text, seconds)
    assert len(shown["data"]) <= 32 and shown["data"].isascii()
    assert 1 <= shown["temp_time"] <= 255
    for cmd in (
        led_command(1, seconds),
        led_command(2, seconds, flash=True),
        buzzer_command(seconds, 9),
    ):
        assert all(0 <= v <= 255 for k, v in cmd.items() if isinstance(v, int) and k != "command")
