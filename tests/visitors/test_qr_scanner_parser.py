"""The serial QR scanner's line parser: any bytes, never an exception, lines only whole."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgegate.hardware.qr_scanner import MAX_LINE, LineParser


def test_lines_split_across_reads_and_line_endings():
    p = LineParser()
    assert p.feed(b"EG1.ab") == []
    assert p.feed(b"c\r\nEG1.x\rEG1.y\n") == ["EG1.abc", "EG1.x", "EG1.y"]
    assert p.feed(b"\x00\xffEG1.z\r") == ["EG1.z"]
    assert p.counters.noise_bytes == 2


def test_an_overlong_line_is_dropped_whole():
    p = LineParser()
    assert p.feed(b"A" * (MAX_LINE + 10) + b"\rEG1.ok\r") == ["EG1.ok"]
    assert p.counters.bad_frames == 1


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_any_bytes(chunks):
    p = LineParser()
    for chunk in chunks:
        for line in p.feed(chunk):
            assert line and len(line) <= MAX_LINE and line.isprintable() and line.isascii()
