"""Packet encoder/decoder and the confirmation-code table, with property-based tests."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edgegate.hardware.base import ReaderCounters
from edgegate.hardware.fingerprint import errors
from edgegate.hardware.fingerprint.protocol import (
    HEADER,
    HEADER_LEN,
    MAX_PAYLOAD,
    Instruction,
    Packet,
    PacketDecoder,
    Pid,
    ack,
    command,
    encode_packet,
)

ADDRESS = 0xFFFFFFFF
pids = st.sampled_from([int(p) for p in Pid])
payloads = st.binary(min_size=0, max_size=64)
addresses = st.integers(min_value=0, max_value=0xFFFFFFFF)
packets = st.builds(Packet, pids, payloads, addresses)
# Noise that starts like a packet: a real header with a plausible pid and any length.
fake_headers = st.builds(
    lambda a, pid, length, tail: HEADER + a.to_bytes(4, "big") + bytes([pid])
    + length.to_bytes(2, "big") + tail,
    addresses, pids, st.integers(0, 300), st.binary(max_size=20),
)  # fmt: skip
noise = st.one_of(st.binary(max_size=40), fake_headers)


def test_known_wire_bytes() -> None:
    # GenImg and VfyPwd as printed in the R307/AS608 datasheets' examples.
    assert command(Instruction.GEN_IMG) == bytes.fromhex("EF01FFFFFFFF010003010005")
    assert command(Instruction.VFY_PWD, bytes(4)) == bytes.fromhex(
        "EF01FFFFFFFF0100071300000000001B"
    )
    assert ack(0x02) == bytes.fromhex("EF01FFFFFFFF07000302000C")


def test_decode_known_ack() -> None:
    decoder = PacketDecoder()
    [packet] = decoder.feed(bytes.fromhex("EF01FFFFFFFF07000300000A"))
    assert packet == Packet(Pid.ACK, b"\x00", 0xFFFFFFFF)


def test_oversize_payload_refused_by_encoder() -> None:
    with pytest.raises(ValueError):
        encode_packet(Pid.DATA, bytes(MAX_PAYLOAD + 1))


def test_bad_pid_and_length_are_counted_and_skipped() -> None:
    counters = ReaderCounters()
    decoder = PacketDecoder(counters)
    good = encode_packet(Pid.ACK, b"\x00")
    bad_pid = bytearray(good)
    bad_pid[6] = 0x05
    oversize = bytearray(good)
    oversize[7:9] = (MAX_PAYLOAD + 3).to_bytes(2, "big")
    out = decoder.feed(bytes(bad_pid) + bytes(oversize) + good)
    assert out == [Packet(Pid.ACK, b"\x00")]
    assert counters.bad_frames == 2


def test_bad_checksum_counted() -> None:
    counters = ReaderCounters()
    data = bytearray(encode_packet(Pid.ACK, b"\x09\x00\x00\x00\x00"))
    data[-1] ^= 1
    assert PacketDecoder(counters).feed(bytes(data)) == []
    assert counters.bad_checksum == 1


@given(st.binary(max_size=2000), st.lists(st.integers(1, 50), max_size=40))
def test_random_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    decoder = PacketDecoder()
    pos = 0
    for n in [*cuts, len(data)]:
        for packet in decoder.feed(data[pos : pos + n]):
            assert packet.pid in {int(p) for p in Pid}
        pos += n
    assert decoder.pending <= HEADER_LEN + MAX_PAYLOAD + 2


@given(st.lists(st.tuples(st.binary(max_size=40), packets), max_size=8), st.data())
def test_packets_in_noise_without_headers_recovered_exactly(
    items: list[tuple[bytes, Packet]], data: st.DataObject
) -> None:
    # Noise without 0xEF can never start a header: the output must be exactly the packets.
    stream = b"".join(noise.replace(b"\xef", b"\xee") + p.encode() for noise, p in items)
    cuts = data.draw(st.lists(st.integers(1, 64), max_size=30))
    decoder, out, pos = PacketDecoder(), [], 0
    for n in [*cuts, len(stream)]:
        out += decoder.feed(stream[pos : pos + n])
        pos += n
    assert out == [p for _, p in items]


@given(st.lists(st.tuples(noise, packets), min_size=1, max_size=8))
def test_packets_in_arbitrary_noise_recovered(items: list[tuple[bytes, Packet]]) -> None:
    # Noise may hold fake headers whose length swallows a real packet; the decoder must resync
    # onto the real one. Trailing idle bytes let a fake long packet run out.
    stream = b"".join(noise + p.encode() for noise, p in items) + bytes(300)
    out = iter(PacketDecoder().feed(stream))
    # Every real packet appears, in order (extra ones could only come from the noise itself).
    assert all(any(got == p for got in out) for _, p in items)


@given(st.binary(max_size=300), st.binary(max_size=300), st.integers(1, 100))
def test_chunking_does_not_matter(a: bytes, b: bytes, cut: int) -> None:
    stream = a + encode_packet(Pid.ACK, b"\x00\x01") + b
    whole = PacketDecoder().feed(stream)
    chunked = PacketDecoder()
    parts = [chunked.feed(stream[i : i + cut]) for i in range(0, len(stream), cut)]
    assert [p for part in parts for p in part] == whole


@given(packets, payloads, st.data())
def test_single_corrupted_byte_rejected_then_resynced(
    p: Packet, q_payload: bytes, data: st.DataObject
) -> None:
    wire = bytearray(p.encode())
    pos = data.draw(st.integers(0, len(wire) - 1))
    wire[pos] ^= data.draw(st.integers(1, 255))
    q = Packet(Pid.ACK, q_payload, p.address)
    stream = bytes(wire) + q.encode() + bytes(300) + q.encode()
    counters = ReaderCounters()
    out = PacketDecoder(counters, address=p.address).feed(stream)
    if pos in (7, 8):
        # A corrupted length reframes the packet: the data after it must still come through,
        # and nothing may be reported that is not verbatim on the wire with a valid checksum.
        assert out[-1] == q
        assert all(got.encode() in stream for got in out)
        return
    # Header, address, pid, payload or checksum: the corrupted packet is never reported.
    assume(b"\xef\x01" not in bytes(wire[1:]))
    assert out == [q, q]
    assert counters.bad_checksum + counters.bad_frames + counters.noise_bytes > 0


def test_corrupted_address_passes_without_filter() -> None:
    # The checksum does not cover the address; only the address filter catches this.
    wire = bytearray(encode_packet(Pid.ACK, b"\x00", 0xFFFFFFFF))
    wire[3] ^= 0x01
    assert PacketDecoder().feed(bytes(wire))[0].address == 0xFFFEFFFF
    assert PacketDecoder(address=0xFFFFFFFF).feed(bytes(wire)) == []


@pytest.mark.parametrize("code", sorted(errors.ERRORS))
def test_every_confirmation_code_has_its_error(code: int) -> None:
    exc = errors.error_for(code, Instruction.SEARCH)
    assert type(exc) is errors.ERRORS[code]
    assert exc.code == code
    assert f"0x{code:02X}" in str(exc) and exc.meaning in str(exc)
    assert "instruction 0x04" in str(exc)
    assert isinstance(exc, errors.PoorCapture) == (code in {0x02, 0x03, 0x06, 0x07, 0x15})
    with pytest.raises(errors.ERRORS[code]):
        errors.check(code)


def test_unknown_code_and_success() -> None:
    errors.check(0)
    exc = errors.error_for(0x77)
    assert type(exc) is errors.ConfirmationError and "0x77" in str(exc)
    assert exc.reason == "code_77"


def test_communication_errors_are_os_errors() -> None:
    # The reader base class only turns OSError into reader_fault + reopen.
    assert issubclass(errors.SensorTimeout, OSError)
    assert issubclass(errors.SensorTimeout, TimeoutError)
    assert issubclass(errors.CorruptResponse, OSError)
    assert not issubclass(errors.WrongPassword, OSError)
    assert errors.WrongPassword().reason == "wrong_password"
