"""The PN532 frame codec: known frames from the user manual and hypothesis properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.hardware.pn532.frame import (
    ACK,
    ERROR,
    NACK,
    START,
    TFI_CHIP,
    TFI_HOST,
    Frame,
    FrameParser,
    Kind,
    command,
    encode,
    to_bytes,
)

tfis = st.sampled_from([TFI_HOST, TFI_CHIP])
payloads = st.binary(min_size=0, max_size=300)
frames = st.one_of(
    st.builds(Frame, st.just(Kind.DATA), tfis, payloads),
    st.sampled_from([Frame(Kind.ACK), Frame(Kind.NACK), Frame(Kind.ERROR, 0x7F)]),
)
# Noise that cannot form a start code, by itself or with the postamble 00 before it or the
# preamble 00 after it, so it can never hide a frame.
clean_noise = st.binary(max_size=60).filter(
    lambda b: START not in b and not b.endswith(b"\x00") and not b.startswith(b"\xff")
)


def test_getfirmwareversion_frame_from_the_manual():
    # UM0701-02 7.2.2: 00 00 FF 02 FE D4 02 2A 00
    assert command(0x02) == bytes.fromhex("0000FF02FED4022A00")
    answer = bytes.fromhex("0000FF06FAD50332010607E800")
    assert FrameParser().feed(ACK + answer) == [
        Frame(Kind.ACK),
        Frame(Kind.DATA, TFI_CHIP, bytes.fromhex("0332010607")),
    ]


def test_ack_nack_error_frames():
    out = FrameParser().feed(ACK + NACK + ERROR)
    assert [f.kind for f in out] == [Kind.ACK, Kind.NACK, Kind.ERROR]


def test_extended_frame_round_trip():
    data = bytes(range(256)) + b"xyz"
    wire = encode(TFI_CHIP, data)
    assert wire[3:5] == b"\xff\xff"  # the extended length marker
    assert FrameParser().feed(wire) == [Frame(Kind.DATA, TFI_CHIP, data)]


def test_wrong_direction_tfi_is_rejected():
    p = FrameParser(tfi=TFI_CHIP)
    assert p.feed(command(0x02)) == []
    assert p.counters.bad_frames == 1


def test_impossible_length_is_rejected_and_parser_moves_on():
    p = FrameParser()
    bogus = b"\x00\xff\xff\xff\x01\x20\xdf"  # extended, 288 bytes announced
    good = encode(TFI_CHIP, b"\x4b\x00")
    assert p.feed(bogus + good) == [Frame(Kind.DATA, TFI_CHIP, b"\x4b\x00")]
    assert p.counters.bad_frames == 1


@given(frames)
def test_round_trip(frame: Frame):
    assert FrameParser().feed(to_bytes(frame)) == [frame]


@given(st.lists(frames, max_size=5), st.data())
def test_round_trip_byte_by_byte_with_noise(seq: list[Frame], data: st.DataObject):
    wire = b""
    noise_total = 0
    for frame in seq:
        noise = data.draw(clean_noise)
        noise_total += sum(1 for b in noise if b != 0)
        wire += noise + to_bytes(frame)
    p = FrameParser()
    out: list[Frame] = []
    for b in wire:
        out += p.feed(bytes([b]))
    assert out == seq
    assert p.counters.noise_bytes == noise_total
    assert p.counters.bad_checksum == p.counters.bad_frames == 0


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_arbitrary_bytes_never_raise_and_frames_are_really_there(data: bytes):
    p = FrameParser()
    for frame in p.feed(data):
        wire = to_bytes(frame)
        # Preamble and postamble are optional on the wire: the core must be in the input.
        assert wire[2:-1] in data


@given(st.builds(Frame, st.just(Kind.DATA), tfis, st.binary(min_size=1, max_size=200)),
       st.sampled_from(["lcs", "dcs"]), st.integers(1, 255))  # fmt: skip
def test_bad_lcs_or_dcs_rejected_counted_and_next_frame_survives(
    frame: Frame, where: str, delta: int
):
    wire = bytearray(to_bytes(frame))
    extended = wire[3:5] == b"\xff\xff"
    at = (7 if extended else 4) if where == "lcs" else len(wire) - 2
    wire[at] = (wire[at] + delta) & 0xFF
    p = FrameParser()
    out = p.feed(bytes(wire) + ACK)
    assert out[-1] == Frame(Kind.ACK)
    assert frame not in out
    assert p.counters.bad_checksum >= 1
