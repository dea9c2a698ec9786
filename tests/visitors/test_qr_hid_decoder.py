"""The USB HID scanner's decoder: ``struct input_event`` records in, typed lines out.

Key codes below are written out from linux/input-event-codes.h, not taken from the layout
tables under test, so a wrong table fails here."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgegate.hardware.hid_keymaps import KEYMAPS, keys_of
from edgegate.hardware.input_events import (
    EV_KEY,
    EV_MSC,
    EV_SYN,
    RECORD,
    SYN_DROPPED,
    SYN_REPORT,
    KeyLineDecoder,
    record,
)
from edgegate.hardware.qr_scanner import MAX_LINE
from edgegate.sim.hid_scanner import typed
from tests.conftest import all_logs

KEY_E, KEY_G, KEY_1, KEY_DOT, KEY_MINUS, KEY_SLASH, KEY_Y, KEY_Z = 18, 34, 2, 52, 12, 53, 21, 44
SHIFT, CTRL, ENTER, KPENTER, KP7 = 42, 29, 28, 96, 71
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


def keys(*events: tuple[int, int]) -> bytes:
    return b"".join(record(EV_KEY, c, v) + record(EV_SYN, SYN_REPORT, 0) for c, v in events)


def press(code: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return (code, 1), (code, 0)


def test_a_record_is_the_native_struct_input_event():
    assert RECORD.size == (24 if struct_long_size() == 8 else 16)


def struct_long_size() -> int:
    import struct

    return struct.calcsize("l")


def test_us_keys_shift_and_enter():
    d = KeyLineDecoder()
    stream = keys(
        (SHIFT, 1), *press(KEY_E), *press(KEY_G), (SHIFT, 0), *press(KEY_1), *press(KEY_DOT),
        (SHIFT, 1), *press(KEY_MINUS), (SHIFT, 0), *press(KEY_MINUS), *press(KP7), *press(ENTER),
    )  # fmt: skip
    assert d.feed(stream) == ["EG1._-7"]
    assert d.feed(keys(*press(KEY_Y), *press(KPENTER))) == ["y"]
    assert d.counters.bad_frames == 0


def test_german_layout_swaps_y_and_z_and_moves_the_dash():
    d = KeyLineDecoder(layout="de")
    stream = keys(*press(KEY_Y), *press(KEY_Z), *press(KEY_SLASH), (SHIFT, 1), *press(KEY_SLASH))
    assert d.feed(stream + keys((SHIFT, 0), *press(ENTER))) == ["zy-_"]
    # The US key of '-' is the German sharp s: not ASCII, so the line is unreadable.
    assert d.feed(keys(*press(KEY_MINUS), *press(ENTER))) == []
    assert d.counters.bad_frames == 1


def test_records_split_anywhere_and_scan_codes_between_them():
    stream = typed("EG1.Zz9_-", "us")
    assert EV_MSC in {t for *_, t, _c, _v in RECORD.iter_unpack(stream)}
    for cut in range(0, len(stream), 7):
        d = KeyLineDecoder()
        assert d.feed(stream[:cut]) + d.feed(stream[cut:]) == ["EG1.Zz9_-"]


def test_bad_records_are_counted_logged_and_the_rest_still_read():
    d = KeyLineDecoder(reader="desk")
    with all_logs() as logs:
        out = d.feed(
            record(0x7F, 1, 1)  # no such event type
            + record(EV_KEY, 0x3FF, 1)  # beyond KEY_MAX
            + record(EV_KEY, KEY_E, 9)  # no such key value
            + typed("ok")
        )
    assert out == ["ok"]
    assert d.counters.bad_frames == 3
    bad = [e for e in logs if e["event"] == "hid_record_bad"]
    assert [e["reason"] for e in bad] == ["type", "key", "key"] and bad[0]["reader"] == "desk"


def test_a_line_with_lost_events_a_modifier_or_too_many_keys_is_dropped_whole():
    d = KeyLineDecoder()
    with all_logs() as logs:
        dropped = typed("EG1.a", enter=False) + record(EV_SYN, SYN_DROPPED, 0) + typed("b")
        ctrl = keys((CTRL, 1), *press(KEY_E), (CTRL, 0), *press(ENTER))
        long = typed("A" * (MAX_LINE + 5))
        assert d.feed(dropped + ctrl + long + typed("EG1.ok")) == ["EG1.ok"]
    assert d.counters.bad_frames == 3
    reasons = [e["reason"] for e in logs if e["event"] == "hid_line_unreadable"]
    assert reasons == ["events_dropped", "modifier", "too_long"]


def test_shift_state_survives_a_chunk_boundary_and_enter_alone_is_nothing():
    d = KeyLineDecoder()
    assert d.feed(keys((SHIFT, 1))) == []
    assert d.feed(keys(*press(KEY_E), (SHIFT, 0), *press(KEY_E), *press(ENTER))) == ["Ee"]
    assert d.feed(keys(*press(ENTER), *press(ENTER))) == []
    assert d.counters.bad_frames == 0


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_any_bytes_never_crash_and_only_printable_lines_come_out(chunks):
    d = KeyLineDecoder()
    for chunk in chunks:
        for line in d.feed(chunk):
            assert 0 < len(line) <= MAX_LINE and line.isascii() and line.isprintable()


@given(
    st.sampled_from(sorted(KEYMAPS)),
    st.lists(st.text(TOKEN_ALPHABET, min_size=1, max_size=200), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0x18, 0xFFFF), st.integers(0, 0xFFFF)), max_size=5),
    st.data(),
)
def test_typed_lines_come_back_with_bad_records_between_them(layout, texts, junk, data):
    """Whatever the layout, lines typed with garbage records between them are read back and
    exactly the garbage is counted; any split of the byte stream gives the same lines."""
    stream = b""
    for i, text in enumerate(texts):
        stream += typed(text, layout)
        if i < len(junk):
            stream += record(junk[i][0], junk[i][1], 1)  # types 0x18.. are no event type
    cut = data.draw(st.integers(0, len(stream)))
    d = KeyLineDecoder(layout=layout)
    assert d.feed(stream[:cut]) + d.feed(stream[cut:]) == texts
    assert d.counters.bad_frames == min(len(junk), len(texts))


def test_every_token_character_is_typeable_in_every_layout():
    for keymap in KEYMAPS.values():
        assert len(keys_of(keymap, TOKEN_ALPHABET)) == len(TOKEN_ALPHABET)
