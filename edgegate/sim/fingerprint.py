"""A ZhianTec/Grow fingerprint module (R307/AS608 class) simulated on a pseudo-terminal.

It speaks the real packet protocol: the driver opens the pty's slave end with pyserial exactly
as it would open /dev/ttyUSB0, and every packet either way is framed and checksummed for real.
Fingers are virtual: a finger is a 512-byte template (``finger_template("alice")`` derives one
deterministically); placing it with ``quality < 1`` alters a share of its bytes so the match
score drops. The score is ``200 * equal_bytes / 512``: the same finger scores 200 at full
quality, two different fingers score about 0.

The simulator runs in its own thread, not on the asyncio loop under test: a real module is a
separate processor, so its answers (and their pacing at the real baud rate) must arrive even
while the loop is busy, and a stalled loop must show up as latency in the daemon, not slow the
"device" down with it. The thread also makes it usable from synchronous code (the demo).
"""

from __future__ import annotations

import enum
import hashlib
import random
import struct
import time
from collections import Counter, deque

from edgegate.hardware.fingerprint.protocol import (
    DEFAULT_ADDRESS,
    DEFAULT_BAUDRATE,
    PACKET_SIZES,
    Instruction,
    Packet,
    PacketDecoder,
    Pid,
    encode_packet,
    wire_seconds,
)
from edgegate.sim.pty_device import ThreadedPtyDevice

TEMPLATE_SIZE = 512
MAX_SCORE = 200


class CaptureOutcome(enum.Enum):
    IMAGE_FAIL = "image_fail"  # GenImg answers 0x03
    MESSY = "messy"  # GenImg succeeds, Img2Tz answers 0x06
    FEW_FEATURES = "few_features"  # GenImg succeeds, Img2Tz answers 0x07


def finger_template(finger_id: str) -> bytes:
    """The template of virtual finger ``finger_id`` (deterministic)."""
    return hashlib.shake_256(b"edgegate-sim-finger:" + finger_id.encode()).digest(TEMPLATE_SIZE)


def degrade(template: bytes, quality: float) -> bytes:
    """``template`` with ``round((1 - quality) * len)`` bytes changed, deterministically."""
    n_bad = round((1.0 - max(0.0, min(1.0, quality))) * len(template))
    rng = random.Random(hashlib.sha256(template).digest())
    out = bytearray(template)
    for pos in rng.sample(range(len(template)), n_bad):
        out[pos] = (out[pos] + 1 + rng.randrange(255)) % 256
    return bytes(out)


def score(a: bytes, b: bytes) -> int:
    if not a or not b:
        return 0
    equal = sum(x == y for x, y in zip(a, b, strict=False))
    return MAX_SCORE * equal // max(len(a), len(b))


class FingerprintSimulator(ThreadedPtyDevice):
    """A module with a finger library, a capture state, password, address and fault switches."""

    thread_name = "fingerprint-sim"

    def __init__(
        self,
        *,
        address: int = DEFAULT_ADDRESS,
        password: int = 0,
        capacity: int = 200,
        packet_size: int = 128,
        threshold: int = 50,
        baudrate: int = DEFAULT_BAUDRATE,
        paced: bool = False,
        op_delays: dict[int, float] | None = None,
    ) -> None:
        if packet_size not in PACKET_SIZES:
            raise ValueError(f"packet_size must be one of {PACKET_SIZES}")
        super().__init__()
        self.address = address
        self.password = password
        self.capacity = capacity
        self.packet_size = packet_size
        self.threshold = threshold
        self.baudrate = baudrate
        self.paced = paced
        self.op_delays = dict(op_delays or {})
        self.library: dict[int, bytes] = {}
        self.buffers: dict[int, bytes] = {}
        self.commands: Counter[int] = Counter()
        self.corrupt_always = False
        self.ignored_packets = 0
        # (perf_counter when executed, instruction, confirmation code) per command when set to
        # a list (benchmarks).
        self.trace: list[tuple[float, int, int]] | None = None
        self._finger: bytes | None = None
        self._image: bytes | None = None
        self._image_flaw: CaptureOutcome | None = None
        self._captures: deque[CaptureOutcome] = deque()
        self._verified = password == 0
        self._download: tuple[int, bytearray] | None = None
        self._decoder = PacketDecoder()
        self._line_free_at = 0.0

    # -- what a test or demo does to the device -----------------------------------------------
    def place_finger(self, finger: bytes | str, quality: float = 1.0) -> None:
        template = finger_template(finger) if isinstance(finger, str) else bytes(finger)
        with self._lock:
            self._finger = degrade(template, quality) if quality < 1.0 else template

    def lift_finger(self) -> None:
        with self._lock:
            self._finger = None

    def script_captures(self, *outcomes: CaptureOutcome) -> None:
        """The next captures with a finger present fail this way, one outcome per GenImg."""
        with self._lock:
            self._captures.extend(outcomes)

    def enroll(self, slot: int, finger: bytes | str) -> None:
        """Put a template straight into the library (as if enrolled earlier)."""
        with self._lock:
            self.library[slot] = finger_template(finger) if isinstance(finger, str) else finger

    def replug(self) -> None:
        """Answer again, after a power-on reset (password must be verified again)."""
        with self._lock:
            self._unplugged = False
            self._verified = self.password == 0
            self.buffers.clear()
            self._image = None
            self._download = None
            self._decoder.reset()

    # -- device thread ------------------------------------------------------------------------
    def _received(self, data: bytes, t_arrived: float) -> None:
        with self._lock:
            if self._unplugged:
                return
            packets = self._decoder.feed(data)
        for packet in packets:
            if self.paced:
                # The host's bytes reach a real module at the baud rate, not all at once.
                n = len(packet.payload) + 11
                self._sleep_until(t_arrived + wire_seconds(n, self.baudrate))
            self._handle(packet)

    def _handle(self, packet: Packet) -> None:
        with self._lock:
            if self._unplugged:
                return
            if packet.address != self.address:
                self.ignored_packets += 1  # a module only answers its own address
                return
            if packet.pid in (Pid.DATA, Pid.END_DATA):
                self._receive_data(packet)
                return
            if packet.pid != Pid.COMMAND or not packet.payload:
                self.ignored_packets += 1
                return
            instruction, params = packet.payload[0], packet.payload[1:]
            self.commands[instruction] += 1
            try:
                replies = self._execute(instruction, params)
            except (struct.error, IndexError):
                # Parameters too short for the instruction: a real module answers 0x01.
                replies = [(Pid.ACK, b"\x01")]
            if self.trace is not None:
                self.trace.append((time.perf_counter(), instruction, replies[0][1][0]))
            address = self.address  # after SetAdder the module answers from its new address
            delay = self.op_delays.get(instruction, 0.0)
        if delay:
            time.sleep(delay)
        for pid, payload in replies:
            self._send(pid, payload, address)

    def _receive_data(self, packet: Packet) -> None:
        if self._download is None:
            self.ignored_packets += 1
            return
        buffer, blob = self._download
        blob += packet.payload
        if packet.pid == Pid.END_DATA:
            self.buffers[buffer] = bytes(blob)
            self._download = None

    def _execute(self, ins: int, p: bytes) -> list[tuple[int, bytes]]:
        def ack(code: int, data: bytes = b"") -> list[tuple[int, bytes]]:
            return [(Pid.ACK, bytes([code]) + data)]

        if not self._verified and ins != Instruction.VFY_PWD:
            return ack(0x21)
        match ins:
            case Instruction.VFY_PWD:
                if len(p) < 4 or struct.unpack(">I", p[:4])[0] != self.password:
                    return ack(0x13)
                self._verified = True
                return ack(0)
            case Instruction.SET_PWD:
                self.password = struct.unpack(">I", p[:4])[0]
                return ack(0)
            case Instruction.SET_ADDER:
                self.address = struct.unpack(">I", p[:4])[0]
                return ack(0)
            case Instruction.HANDSHAKE:
                return ack(0)
            case Instruction.READ_SYS_PARA:
                size_code = PACKET_SIZES.index(self.packet_size)
                data = struct.pack(
                    ">HHHHIHH", 0, 0x0009, self.capacity, 3, self.address, size_code,
                    self.baudrate // 9600,
                )  # fmt: skip
                return ack(0, data)
            case Instruction.TEMPLATE_NUM:
                return ack(0, struct.pack(">H", len(self.library)))
            case Instruction.READ_INDEX_TABLE:
                page = p[0] if p else 0
                table = bytearray(32)
                for slot in self.library:
                    if page * 256 <= slot < (page + 1) * 256:
                        i = slot - page * 256
                        table[i // 8] |= 1 << (i % 8)
                return ack(0, bytes(table))
            case Instruction.GEN_IMG:
                return ack(self._gen_img())
            case Instruction.IMG2TZ:
                return ack(self._img2tz(p[0] if p else 1))
            case Instruction.MATCH:
                s = score(self.buffers.get(1, b""), self.buffers.get(2, b""))
                return ack(0 if s >= self.threshold else 0x08, struct.pack(">H", s))
            case Instruction.SEARCH:
                buffer, start, count = struct.unpack(">BHH", p[:5])
                return ack(*self._search(self.buffers.get(buffer, b""), start, count))
            case Instruction.REG_MODEL:
                a, b = self.buffers.get(1, b""), self.buffers.get(2, b"")
                if score(a, b) < self.threshold:
                    return ack(0x0A)
                self.buffers[1] = self.buffers[2] = a
                return ack(0)
            case Instruction.STORE:
                buffer, slot = struct.unpack(">BH", p[:3])
                if slot >= self.capacity:
                    return ack(0x0B)
                if not self.buffers.get(buffer):
                    return ack(0x0C)
                self.library[slot] = self.buffers[buffer]
                return ack(0)
            case Instruction.LOAD_CHAR:
                buffer, slot = struct.unpack(">BH", p[:3])
                if slot >= self.capacity:
                    return ack(0x0B)
                if slot not in self.library:
                    return ack(0x0C)
                self.buffers[buffer] = self.library[slot]
                return ack(0)
            case Instruction.UP_CHAR:
                blob = self.buffers.get(p[0] if p else 1, b"")
                if not blob:
                    return ack(0x0D)
                chunks = [
                    blob[i : i + self.packet_size] for i in range(0, len(blob), self.packet_size)
                ]
                packets: list[tuple[int, bytes]] = [(Pid.DATA, c) for c in chunks[:-1]]
                return ack(0) + packets + [(Pid.END_DATA, chunks[-1])]
            case Instruction.DOWN_CHAR:
                self._download = (p[0] if p else 1, bytearray())
                return ack(0)
            case Instruction.DELETE_CHAR:
                slot, n = struct.unpack(">HH", p[:4])
                if slot + n > self.capacity:
                    return ack(0x10)
                for s in range(slot, slot + n):
                    self.library.pop(s, None)
                return ack(0)
            case Instruction.EMPTY:
                self.library.clear()
                return ack(0)
            case _:
                return ack(0xFC)

    def _gen_img(self) -> int:
        self._image, self._image_flaw = None, None
        if self._finger is None:
            return 0x02
        outcome = self._captures.popleft() if self._captures else None
        if outcome is CaptureOutcome.IMAGE_FAIL:
            return 0x03
        self._image, self._image_flaw = self._finger, outcome
        return 0

    def _img2tz(self, buffer: int) -> int:
        if self._image is None:
            return 0x15
        if self._image_flaw is CaptureOutcome.MESSY:
            return 0x06
        if self._image_flaw is CaptureOutcome.FEW_FEATURES:
            return 0x07
        self.buffers[buffer] = self._image
        return 0

    def _search(self, probe: bytes, start: int, count: int) -> tuple[int, bytes]:
        if not probe:
            return 0x09, bytes(4)
        best_slot, best = 0, -1
        for slot in sorted(self.library):
            if start <= slot < start + count:
                s = score(probe, self.library[slot])
                if s > best:
                    best_slot, best = slot, s
        if best < self.threshold:
            return 0x09, bytes(4)
        return 0, struct.pack(">HH", best_slot, best)

    # -- wire ---------------------------------------------------------------------------------
    def _send(self, pid: int, payload: bytes, address: int) -> None:
        data = bytearray(encode_packet(pid, payload, address))
        with self._lock:
            if self.corrupt_always or self._corrupt_next:
                self._corrupt_next = max(0, self._corrupt_next - 1)
                data[-1] ^= 0x5A
            if self._unplugged:
                return
        if not self.paced:
            self._write(bytes(data))
            return
        # Pace at the baud rate: deliver each 16-byte chunk when its last bit would arrive.
        start = max(time.perf_counter(), self._line_free_at)
        for i in range(0, len(data), 16):
            chunk = bytes(data[i : i + 16])
            self._sleep_until(start + wire_seconds(i + len(chunk), self.baudrate))
            self._write(chunk)
        self._line_free_at = start + wire_seconds(len(data), self.baudrate)

    @staticmethod
    def _sleep_until(t: float) -> None:
        delay = t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
