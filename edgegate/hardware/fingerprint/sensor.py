"""Async driver for a ZhianTec/Grow fingerprint module on a UART.

Request/response over ``AsyncSerial``: one command packet out, one acknowledge packet back (plus
data packets for template uploads). Every packet in is checksum-verified by ``PacketDecoder``
and must carry the configured address. A corrupt answer is retried at once (the commands used
here are idempotent); a missing answer waits ``timeout`` and is retried ``retries`` times. When
that fails the error is a ``CommunicationError`` (an ``OSError``), which the reader base class
turns into reader_fault + reopen with backoff.

The protocol has no sequence numbers: a late answer to a timed-out command could be taken for
the answer to the next one. The queue is drained before each command to keep that window small.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import structlog

from edgegate.errors import EdgegateError
from edgegate.hardware.base import ReaderCounters
from edgegate.hardware.fingerprint.errors import (
    CommunicationError,
    CorruptResponse,
    PacketReceiveError,
    SensorTimeout,
    check,
)
from edgegate.hardware.fingerprint.protocol import (
    DEFAULT_ADDRESS,
    DEFAULT_BAUDRATE,
    DEFAULT_PASSWORD,
    PACKET_SIZES,
    Instruction,
    Packet,
    PacketDecoder,
    Pid,
    command,
    encode_packet,
)
from edgegate.hardware.serial_port import CORRUPT, FrameLink

log = structlog.get_logger(__name__)

# Far above any template of the family (512 bytes on R307/AS608, a few KiB at most elsewhere).
MAX_UPLOAD = 16384


# Commands that search the whole library or write flash: a real module can take up to about a
# second on a full library, so they get ``slow_timeout`` instead of the short poll timeout.
_SLOW = frozenset(
    {
        Instruction.SEARCH,
        Instruction.HI_SPEED_SEARCH,
        Instruction.STORE,
        Instruction.DELETE_CHAR,
        Instruction.EMPTY,
        Instruction.REG_MODEL,
        Instruction.SET_PWD,
        Instruction.SET_ADDER,
    }
)


class _Retry(EdgegateError):
    """Internal: the answer was corrupt; send the command again."""


@dataclass(frozen=True, slots=True)
class SystemParameters:
    status: int
    system_id: int
    capacity: int
    security_level: int
    address: int
    packet_size: int
    baudrate: int

    @classmethod
    def parse(cls, data: bytes) -> SystemParameters:
        if len(data) < 16:
            raise CorruptResponse(f"ReadSysPara answer too short ({len(data)} bytes)")
        status, system_id, capacity, level, address, size_code, baud_n = struct.unpack_from(
            ">HHHHIHH", data
        )
        packet_size = PACKET_SIZES[size_code] if size_code < len(PACKET_SIZES) else 128
        return cls(status, system_id, capacity, level, address, packet_size, baud_n * 9600)


class FingerprintSensor:
    """One module on one serial port. Not safe for concurrent commands: callers serialise
    (``FingerprintReader.session`` does this for enrolment while the door is running)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = DEFAULT_BAUDRATE,
        address: int = DEFAULT_ADDRESS,
        password: int = DEFAULT_PASSWORD,
        timeout: float = 1.0,
        slow_timeout: float = 3.0,
        retries: int = 1,
        counters: ReaderCounters | None = None,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.address = address
        self.password = password
        self.timeout = timeout
        self.slow_timeout = slow_timeout
        self.retries = retries
        self.counters = counters if counters is not None else ReaderCounters()
        self.decoder = PacketDecoder(self.counters, address=address)
        self.params: SystemParameters | None = None
        self.packet_size = 128  # until ReadSysPara says otherwise
        self.capacity = 0
        self.link: FrameLink[Packet] = FrameLink(
            port,
            baudrate,
            self.decoder,
            self.counters,
            error=CommunicationError,
            timeout_error=SensorTimeout,
            timeout_message=f"no answer from fingerprint sensor on {port}"
            " (unplugged, wrong baud rate or wrong address?)",
        )

    @property
    def last_rx_t(self) -> float:
        return self.link.last_rx_t

    # -- port ---------------------------------------------------------------------------------
    async def open(self) -> None:
        self.link.open()

    def close(self) -> None:
        self.link.close()

    # -- transactions -------------------------------------------------------------------------
    async def _next(self, deadline: float) -> Packet:
        item = await self.link.next(deadline)
        if item is CORRUPT:
            raise _Retry
        assert isinstance(item, Packet)
        return item

    async def _transact(
        self, instruction: int, params: bytes = b"", *, upload: bool = False
    ) -> tuple[int, bytes, bytes]:
        """Send one command; return (confirmation code, ack data, uploaded data)."""
        packet = command(instruction, params, self.address)
        timeout = max(self.timeout, self.slow_timeout) if instruction in _SLOW else self.timeout
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            self.link.drop_stale()  # stale answers from an earlier, timed-out command
            self.link.write(packet)
            deadline = time.monotonic() + timeout
            try:
                ack = await self._next(deadline)
                while ack.pid != Pid.ACK:  # leftover data packets of an abandoned upload
                    ack = await self._next(deadline)
                if not ack.payload:
                    raise _Retry
                code = ack.payload[0]
                if code == PacketReceiveError.code:
                    raise _Retry  # the module saw our packet corrupted: send it again
                blob = bytearray()
                if upload and code == 0:
                    while True:
                        deadline = time.monotonic() + self.timeout
                        data = await self._next(deadline)
                        if data.pid not in (Pid.DATA, Pid.END_DATA):
                            raise _Retry
                        blob += data.payload
                        if len(blob) > MAX_UPLOAD:
                            raise _Retry  # a module that never ends its upload
                        if data.pid == Pid.END_DATA:
                            break
                return code, ack.payload[1:], bytes(blob)
            except _Retry:
                last = CorruptResponse(
                    f"corrupt answer to instruction 0x{instruction:02X} from {self.port}"
                )
            except SensorTimeout as exc:
                last = exc
            log.info(
                "fingerprint_retry", port=self.port, instruction=instruction, attempt=attempt + 1
            )
        assert last is not None
        raise last

    async def _call(self, instruction: int, params: bytes = b"") -> bytes:
        code, data, _ = await self._transact(instruction, params)
        check(code, instruction)
        return data

    # -- commands -----------------------------------------------------------------------------
    async def verify_password(self) -> None:
        await self._call(Instruction.VFY_PWD, struct.pack(">I", self.password))

    async def handshake(self) -> SystemParameters:
        """Verify the password and read the system parameters (packet size, capacity)."""
        await self.verify_password()
        return await self.read_system_parameters()

    async def read_system_parameters(self) -> SystemParameters:
        params = SystemParameters.parse(await self._call(Instruction.READ_SYS_PARA))
        self.params = params
        self.packet_size = params.packet_size
        self.capacity = params.capacity
        return params

    async def set_password(self, password: int) -> None:
        await self._call(Instruction.SET_PWD, struct.pack(">I", password))
        self.password = password

    async def set_address(self, address: int) -> None:
        """Give the module a new address; it listens on the new one from now on."""
        # The ack may come from the old or the new address depending on the firmware, so the
        # address filter is lifted for this one answer.
        self.decoder.address = None
        try:
            await self._call(Instruction.SET_ADDER, struct.pack(">I", address))
            self.address = address
        finally:
            self.decoder.address = self.address

    async def template_count(self) -> int:
        return struct.unpack(">H", (await self._call(Instruction.TEMPLATE_NUM))[:2])[0]

    async def capture(self) -> None:
        """GenImg: raises ``NoFinger`` when the sensor is empty, other ``PoorCapture`` errors."""
        await self._call(Instruction.GEN_IMG)

    async def image_to_template(self, buffer: int = 1) -> None:
        await self._call(Instruction.IMG2TZ, bytes([buffer]))

    async def create_model(self) -> None:
        """RegModel: merge char buffers 1 and 2 into a template (in both buffers)."""
        await self._call(Instruction.REG_MODEL)

    async def store(self, slot: int, buffer: int = 1) -> None:
        await self._call(Instruction.STORE, struct.pack(">BH", buffer, slot))

    async def load(self, slot: int, buffer: int = 1) -> None:
        await self._call(Instruction.LOAD_CHAR, struct.pack(">BH", buffer, slot))

    async def match(self) -> int:
        """Match char buffers 1 and 2; return the score (raises ``NoMatch``)."""
        return struct.unpack(">H", (await self._call(Instruction.MATCH))[:2])[0]

    async def search(
        self, start: int = 0, count: int | None = None, buffer: int = 1
    ) -> tuple[int, int]:
        """Search the library for char buffer ``buffer``; return (slot, score) or raise
        ``NotFound``. ``count`` defaults to the whole library from ReadSysPara."""
        if count is None:
            count = (self.capacity or 1000) - start
        data = await self._call(Instruction.SEARCH, struct.pack(">BHH", buffer, start, count))
        slot, score = struct.unpack(">HH", data[:4])
        return slot, score

    async def delete(self, slot: int, count: int = 1) -> None:
        await self._call(Instruction.DELETE_CHAR, struct.pack(">HH", slot, count))

    async def empty(self) -> None:
        await self._call(Instruction.EMPTY)

    async def upload_template(self, buffer: int = 1) -> bytes:
        """UpChar: the content of a char buffer, reassembled from the data packets."""
        code, _, blob = await self._transact(Instruction.UP_CHAR, bytes([buffer]), upload=True)
        check(code, Instruction.UP_CHAR)
        return blob

    async def download_template(self, buffer: int, template: bytes) -> None:
        """DownChar: write ``template`` into a char buffer, in packets of ``packet_size``."""
        if not template:
            raise ValueError("empty template")
        await self._call(Instruction.DOWN_CHAR, bytes([buffer]))
        size = self.packet_size
        chunks = [template[i : i + size] for i in range(0, len(template), size)]
        out = bytearray()
        for i, chunk in enumerate(chunks):
            pid = Pid.END_DATA if i == len(chunks) - 1 else Pid.DATA
            out += encode_packet(pid, chunk, self.address)
        self.link.write(bytes(out))

    async def read_index_table(self, page: int) -> set[int]:
        """Occupied slots in index page ``page`` (256 slots per page)."""
        data = await self._call(Instruction.READ_INDEX_TABLE, bytes([page]))
        return {
            page * 256 + byte * 8 + bit
            for byte, value in enumerate(data[:32])
            for bit in range(8)
            if value >> bit & 1
        }

    async def used_slots(self) -> set[int]:
        pages = max(1, -(-(self.capacity or 256) // 256))
        used: set[int] = set()
        for page in range(min(pages, 4)):
            used |= await self.read_index_table(page)
        return used

    async def free_slot(self) -> int | None:
        """The lowest empty slot, or None when the library is full."""
        used = await self.used_slots()
        capacity = self.capacity or 256
        return next((s for s in range(capacity) if s not in used), None)
