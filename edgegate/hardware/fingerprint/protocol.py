"""The ZhianTec/Grow packet protocol (R307, R503, AS608, ZFM-20 and their clones).

A packet on the wire, big-endian throughout::

    EF 01 | addr(4) | pid(1) | length(2) | payload(length - 2) | checksum(2)

``length`` counts the payload plus the two checksum bytes. The checksum is the low 16 bits of
the sum of the pid byte, both length bytes and every payload byte; the header and the address
are NOT covered, so a corrupted address byte can only be caught by comparing the address with
the one configured (the decoder does this when given ``address``).

The host sends command packets (pid 0x01: instruction code + parameters); the module answers
with one acknowledge packet (pid 0x07: confirmation code + results) and, for uploads, a run of
data packets (0x02) closed by an end-of-data packet (0x08).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import structlog

from edgegate.hardware.base import ReaderCounters
from edgegate.hardware.fingerprint.errors import check, error_for

log = structlog.get_logger(__name__)

HEADER = b"\xef\x01"
HEADER_LEN = 9  # EF 01 + address(4) + pid(1) + length(2)
DEFAULT_ADDRESS = 0xFFFFFFFF
DEFAULT_PASSWORD = 0x00000000
DEFAULT_BAUDRATE = 57600
# Largest data packet a module can be configured for is 256 bytes of payload.
MAX_PAYLOAD = 256
PACKET_SIZES = (32, 64, 128, 256)  # ReadSysPara packet size code 0..3
BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop; wire time = bytes * 10 / baud


class Pid(IntEnum):
    COMMAND = 0x01
    DATA = 0x02
    ACK = 0x07
    END_DATA = 0x08


_PIDS = frozenset(int(p) for p in Pid)


class Instruction(IntEnum):
    GEN_IMG = 0x01
    IMG2TZ = 0x02
    MATCH = 0x03
    SEARCH = 0x04
    REG_MODEL = 0x05
    STORE = 0x06
    LOAD_CHAR = 0x07
    UP_CHAR = 0x08
    DOWN_CHAR = 0x09
    UP_IMAGE = 0x0A
    DOWN_IMAGE = 0x0B
    DELETE_CHAR = 0x0C
    EMPTY = 0x0D
    SET_SYS_PARA = 0x0E
    READ_SYS_PARA = 0x0F
    SET_PWD = 0x12
    VFY_PWD = 0x13
    GET_RANDOM_CODE = 0x14
    SET_ADDER = 0x15
    CONTROL = 0x17
    WRITE_NOTEPAD = 0x18
    READ_NOTEPAD = 0x19
    HI_SPEED_SEARCH = 0x1B
    TEMPLATE_NUM = 0x1D
    READ_INDEX_TABLE = 0x1F
    AURA_LED_CONFIG = 0x35
    CHECK_SENSOR = 0x36
    SOFT_RESET = 0x3D
    HANDSHAKE = 0x40


@dataclass(frozen=True, slots=True)
class Packet:
    pid: int
    payload: bytes
    address: int = DEFAULT_ADDRESS

    def encode(self) -> bytes:
        return encode_packet(self.pid, self.payload, self.address)

    @property
    def code(self) -> int:
        """First payload byte: instruction code of a command, confirmation code of an ack."""
        return self.payload[0] if self.payload else -1


def checksum(pid: int, length: int, payload: bytes) -> int:
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode_packet(pid: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    length = len(payload) + 2
    head = HEADER + struct.pack(">IBH", address & 0xFFFFFFFF, pid, length)
    return head + payload + struct.pack(">H", checksum(pid, length, payload))


def command(instruction: int, params: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    """A command packet: instruction code followed by its parameters."""
    return encode_packet(Pid.COMMAND, bytes([instruction]) + params, address)


def ack(code: int, data: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    """An acknowledge packet: confirmation code followed by the results."""
    return encode_packet(Pid.ACK, bytes([code]) + data, address)


def wire_seconds(n_bytes: int, baudrate: int = DEFAULT_BAUDRATE) -> float:
    return n_bytes * BITS_PER_BYTE / baudrate


class PacketDecoder:
    """Incremental decoder: feed it any bytes, get back the valid packets.

    It never raises on input. Bytes before a header are counted as ``noise_bytes``; a packet
    with an unknown pid, an impossible length, a bad checksum or (when ``address`` is given) a
    foreign address is counted and skipped by dropping only its first header byte, so a real
    packet that started inside the rejected one is still found on the next scan.
    """

    def __init__(
        self,
        counters: ReaderCounters | None = None,
        *,
        address: int | None = None,
        max_payload: int = MAX_PAYLOAD,
    ) -> None:
        self.counters = counters if counters is not None else ReaderCounters()
        self.address = address
        self.max_payload = max_payload
        self.wrong_address = 0
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a packet."""
        return len(self._buf)

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        while True:
            start = buf.find(HEADER)
            if start < 0:
                # Keep a trailing 0xEF: it may be the first half of the next header.
                keep = 1 if buf.endswith(HEADER[:1]) else 0
                self.counters.noise_bytes += len(buf) - keep
                del buf[: len(buf) - keep]
                return out
            if start:
                self.counters.noise_bytes += start
                del buf[:start]
            if len(buf) < HEADER_LEN:
                return out
            address, pid, length = struct.unpack_from(">IBH", buf, 2)
            if pid not in _PIDS or length < 2 or length > self.max_payload + 2:
                self.counters.bad_frames += 1
                log.debug("fingerprint_bad_frame", pid=pid, length=length)
                del buf[:1]
                continue
            total = HEADER_LEN + length
            if len(buf) < total:
                return out
            payload = bytes(buf[HEADER_LEN : total - 2])
            (received,) = struct.unpack_from(">H", buf, total - 2)
            if received != checksum(pid, length, payload):
                self.counters.bad_checksum += 1
                log.debug("fingerprint_bad_checksum", pid=pid, length=length)
                del buf[:1]
                continue
            if self.address is not None and address != self.address:
                self.wrong_address += 1
                self.counters.bad_frames += 1
                log.debug("fingerprint_wrong_address", address=address, expected=self.address)
                del buf[:1]
                continue
            del buf[:total]
            out.append(Packet(pid, payload, address))


__all__ = [
    "BITS_PER_BYTE",
    "DEFAULT_ADDRESS",
    "DEFAULT_BAUDRATE",
    "DEFAULT_PASSWORD",
    "HEADER",
    "MAX_PAYLOAD",
    "PACKET_SIZES",
    "Instruction",
    "Packet",
    "PacketDecoder",
    "Pid",
    "ack",
    "check",
    "checksum",
    "command",
    "encode_packet",
    "error_for",
    "wire_seconds",
]
