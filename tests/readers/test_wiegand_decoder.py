"""The Wiegand decoder and formats on recorded-style edge timelines (50 us pulses, ~2 ms
apart), with jitter, glitches, too-fast pulses, overlaps and bad frames."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.hardware.keypad import PinAssembler
from edgegate.hardware.wiegand.decoder import D0, D1, Edge, WiegandDecoder
from edgegate.hardware.wiegand.formats import (
    KEYS,
    Card,
    FrameError,
    Key,
    card_value,
    decode,
    encode_card,
    encode_key,
)
from edgegate.sim.wiegand import card_edges, end_ns, frame_edges, key_edges

# FC 1, CN 1 by hand: even parity over 00000001 0000 (one 1) is 1, odd parity over
# 000000000001 (one 1) is 0.
FC1_CN1 = [1] + [0] * 7 + [1] + [0] * 15 + [1] + [0]


def run_decoder(edges: list[Edge], dec: WiegandDecoder | None = None) -> list[list[int]]:
    dec = dec or WiegandDecoder()
    frames: list[list[int]] = []
    for e in sorted(edges):
        frames += dec.feed(e)
    last = dec.flush()
    if last is not None:
        frames.append(last)
    return frames


def test_known_26_bit_frame():
    assert encode_card(26, 1, 1) == FC1_CN1
    assert decode(FC1_CN1) == Card(26, 1, 1)
    assert Card(26, 1, 1).value == "010001"  # FC 01, CN 0001
    assert card_value(26, 123, 45678) == "7BB26E"
    assert card_value(34, 4660, 22136) == "12345678"


def test_timeline_of_a_26_bit_card_decodes():
    frames = run_decoder(card_edges(26, 123, 45678))
    assert frames == [encode_card(26, 123, 45678)]
    assert decode(frames[0]) == Card(26, 123, 45678)


def test_two_frames_split_by_the_gap():
    first = card_edges(26, 10, 20)
    second = card_edges(34, 30, 40, t0_ns=end_ns(first) + 30_000_000)
    frames = run_decoder(first + second)
    assert [decode(f) for f in frames] == [Card(26, 10, 20), Card(34, 30, 40)]


def test_parity_errors_and_wrong_length():
    frame = encode_card(26, 200, 1234)
    for i in range(26):
        bad = list(frame)
        bad[i] ^= 1
        assert decode(bad) == FrameError.BAD_PARITY
    assert decode(frame[:-1]) == FrameError.BAD_LENGTH
    assert decode([*frame, 0]) == FrameError.BAD_LENGTH
    assert decode(encode_card(34, 1, 2), formats=(26,)) == FrameError.BAD_LENGTH


def test_keys_4_and_8_bit():
    for key in KEYS:
        assert decode(encode_key(key, 4)) == Key(key)
        assert decode(encode_key(key, 8)) == Key(key)
    assert decode([1, 1, 1, 1]) == FrameError.BAD_KEY
    bad = encode_key("5", 8)
    bad[0] ^= 1  # the complement nibble no longer matches
    assert decode(bad) == FrameError.BAD_KEY
    frames = run_decoder(key_edges("12#", bits=8))
    assert [decode(f) for f in frames] == [Key("1"), Key("2"), Key("#")]


def test_too_fast_reader_is_dropped_and_counted():
    dec = WiegandDecoder()
    frames = run_decoder(frame_edges(encode_card(26, 1, 1), interval_ns=100_000), dec)
    assert [decode(f) for f in frames] == [FrameError.BAD_LENGTH]
    # Every pulse within 200 us of the last accepted bit is dropped: every other one here.
    assert dec.counters.too_fast == 13 and dec.counters.bits == 13


def test_overlap_drops_both_pulses():
    dec = WiegandDecoder()
    edges = frame_edges([1, 0, 1])
    # D0 pulses while D1's first pulse is still low.
    edges += [Edge(20_000, D0, False), Edge(60_000, D0, True)]
    frames = run_decoder(edges, dec)
    assert frames == [[0, 1]]
    assert dec.counters.overlaps == 1


def test_rising_edge_alone_is_unmatched():
    dec = WiegandDecoder()
    assert run_decoder([Edge(5, D1, True), *frame_edges([0, 1], 1000000)], dec) == [[0, 1]]
    assert dec.counters.unmatched == 1


def test_flush_waits_for_the_gap():
    dec = WiegandDecoder()
    for e in frame_edges([1, 1, 0, 1]):
        dec.feed(e)
    assert dec.flush(now_ns=6_050_000 + 1_000_000) is None
    assert dec.flush(now_ns=6_050_000 + 26_000_000) == [1, 1, 0, 1]


cards = st.one_of(
    st.tuples(st.just(26), st.integers(0, 255), st.integers(0, 65535)),
    st.tuples(st.just(34), st.integers(0, 65535), st.integers(0, 65535)),
)


@st.composite
def jittered(draw: st.DrawFn, bits: list[int]) -> list[Edge]:
    """A real reader's timeline: pulse widths 20-100 us, intervals 0.8-3 ms, per bit."""
    edges, t = [], draw(st.integers(0, 10**9))
    for bit in bits:
        width = draw(st.integers(20_000, 100_000))
        edges += [Edge(t, bit, False), Edge(t + width, bit, True)]
        t += draw(st.integers(800_000, 3_000_000))
    return edges


@given(cards, st.data())
@settings(max_examples=150)
def test_any_card_with_jitter_decodes(card: tuple[int, int, int], data: st.DataObject):
    bits, fc, cn = card
    edges = data.draw(jittered(encode_card(bits, fc, cn)))
    assert [decode(f) for f in run_decoder(edges)] == [Card(bits, fc, cn)]


@given(cards, st.data())
@settings(max_examples=60)
def test_glitches_and_too_fast_pulses_between_bits_are_dropped(
    card: tuple[int, int, int], data: st.DataObject
):
    bits, fc, cn = card
    frame = encode_card(bits, fc, cn)
    edges = frame_edges(frame)
    n_glitch = n_fast = 0
    for i in range(len(frame)):
        start = i * 2_000_000
        kind = data.draw(st.sampled_from(["none", "glitch", "fast"]))
        line = data.draw(st.sampled_from([D0, D1]))
        if kind == "glitch":  # a few-us spike somewhere in the quiet part of the interval
            at = start + data.draw(st.integers(100_000, 1_900_000))
            edges += [
                Edge(at, line, False),
                Edge(at + data.draw(st.integers(1, 9_000)), line, True),
            ]
            n_glitch += 1
        elif kind == "fast":  # a pulse of valid width too soon after a real bit (ringing)
            at = start + data.draw(st.integers(60_000, 150_000))
            edges += [Edge(at, line, False), Edge(at + 40_000, line, True)]
            n_fast += 1
    dec = WiegandDecoder()
    assert [decode(f) for f in run_decoder(edges, dec)] == [Card(bits, fc, cn)]
    assert dec.counters.short_pulses == n_glitch
    assert dec.counters.too_fast == n_fast


@given(cards, st.integers(0, 25), st.data())
def test_a_lost_bit_is_caught_by_length_and_a_flipped_one_by_parity(
    card: tuple[int, int, int], i: int, data: st.DataObject
):
    bits, fc, cn = card
    frame = encode_card(bits, fc, cn)
    lost = frame[:i] + frame[i + 1 :]
    assert [decode(f) for f in run_decoder(frame_edges(lost))] == [FrameError.BAD_LENGTH]
    flipped = list(frame)
    flipped[i] ^= 1
    assert [decode(f) for f in run_decoder(frame_edges(flipped))] == [FrameError.BAD_PARITY]


edges_strategy = st.lists(
    st.builds(Edge, st.integers(0, 10**8), st.integers(-1, 2), st.booleans()), max_size=200
)


@given(edges_strategy)
@settings(max_examples=200)
def test_arbitrary_edges_never_raise(edges: list[Edge]):
    for frame in run_decoder(edges):
        assert frame and set(frame) <= {0, 1}
        assert isinstance(decode(frame), Card | Key | FrameError)


def test_pin_assembler():
    pins = PinAssembler(key_timeout=5, max_digits=6)
    assert [pins.key(k, 0.0) for k in "1234"] == [None] * 4
    assert pins.key("#", 1.0) == "1234"
    assert pins.key("#", 2.0) is None  # nothing typed: no PIN
    for k in "99*":
        pins.key(k, 3.0)
    assert pins.cleared == 1 and pins.deadline is None
    for k in "4321":
        pins.key(k, 4.0)
    assert pins.expired(8.9) is None
    assert pins.expired(9.0) == "4321"
    for k in "1234567":
        pins.key(k, 10.0)
    assert pins.too_long == 1 and pins.key("#", 10.0) is None
