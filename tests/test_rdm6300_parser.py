from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.hardware.rdm6300 import Rdm6300Parser, checksum, encode_frame

uids = st.binary(min_size=5, max_size=5).map(lambda b: b.hex().upper())


def test_known_frame():
    assert encode_frame("0F00BC614E") == b"\x020F00BC614E9C\x03"
    assert Rdm6300Parser().feed(b"\x020F00BC614E9C\x03") == ["0F00BC614E"]


def test_split_across_chunks():
    p = Rdm6300Parser()
    frame = encode_frame("1A2B3C4D5E")
    out = []
    for b in frame:
        out += p.feed(bytes([b]))
    assert out == ["1A2B3C4D5E"]


def test_bad_checksum_counted_and_dropped():
    p = Rdm6300Parser()
    frame = bytearray(encode_frame("1A2B3C4D5E"))
    frame[11:13] = b"00"
    assert p.feed(bytes(frame)) == []
    assert p.counters.bad_checksum == 1


def test_partial_frame_then_good_frame():
    p = Rdm6300Parser()
    good = encode_frame("0F00BC614E")
    assert p.feed(good[:7] + good) == ["0F00BC614E"]
    assert p.counters.bad_frames == 1


def _frames_in(data: bytes) -> set[str]:
    """Every well-formed, correctly checksummed frame anywhere in ``data``."""
    found = set()
    for i in range(len(data) - 13):
        if data[i] != 2 or data[i + 13] != 3:
            continue
        body = data[i + 1 : i + 13]
        try:
            raw = bytes.fromhex(body[:10].decode())
            if checksum(raw) == int(body[10:12].decode(), 16):
                found.add(body[:10].decode().upper())
        except ValueError:
            continue
    return found


@given(st.binary(max_size=400))
@settings(max_examples=300)
def test_random_bytes_never_raise_and_only_valid_frames_come_out(data: bytes):
    p = Rdm6300Parser()
    out = p.feed(data)
    assert set(out) <= _frames_in(data)


@given(st.lists(st.tuples(st.binary(max_size=20).filter(lambda b: 2 not in b), uids), max_size=8))
def test_frames_in_noise_are_recovered(chunks):
    p = Rdm6300Parser()
    stream = b"".join(noise + encode_frame(uid) for noise, uid in chunks)
    assert p.feed(stream) == [uid for _, uid in chunks]


@given(uids, st.integers(1, 12), st.integers(1, 255))
def test_corrupted_byte_never_yields_a_wrong_card(uid, pos, flip):
    frame = bytearray(encode_frame(uid))
    frame[pos] ^= flip
    out = Rdm6300Parser().feed(bytes(frame))
    # Either rejected, or the flip turned a hex digit into the same digit's other case.
    assert out == [] or out == [uid]
