"""pyserial on the asyncio loop without threads.

pyserial has no asyncio API; on POSIX a ``serial.Serial`` exposes its file descriptor, so we
register it with ``loop.add_reader`` and read whatever is available when the kernel says so.
This keeps every serial reader event-driven: no thread per port, no polling, and the loop is
never blocked on a read (the port is opened with ``timeout=0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

import serial
import structlog

from edgegate.hardware.base import ReaderCounters

log = structlog.get_logger(__name__)

DataCallback = Callable[[bytes, float], None]
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class AsyncSerial:
    """A serial port whose incoming bytes are delivered on the event loop.

    Two ways to consume input: ``on_data(data, t)`` for streaming devices (called with every
    chunk and the ``perf_counter`` time it arrived) or ``read_exactly`` / ``read_some`` for
    request/response protocols. A read error or hang-up fails pending reads with ``OSError``
    and sets ``closed_error`` so a reader's ``serve`` loop can notice and raise.
    """

    def __init__(
        self,
        port: str,
        baudrate: int,
        *,
        on_data: DataCallback | None = None,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self._on_data = on_data
        self._serial: serial.Serial | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.failed: asyncio.Event = asyncio.Event()
        self.error: str | None = None

    def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        # timeout=0: non-blocking reads; exclusive: two daemons on one port is a wiring error.
        ser = serial.Serial(self.port, self.baudrate, timeout=0, write_timeout=1, exclusive=True)
        self._serial = ser
        self._buffer.clear()
        self.failed = asyncio.Event()
        self.error = None
        self._loop.add_reader(ser.fileno(), self._readable)

    def close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(ser.fileno())
        with contextlib.suppress(OSError):
            ser.close()
        self._wake()

    def _fail(self, reason: str) -> None:
        self.error = reason
        self.failed.set()
        self.close()

    def _readable(self) -> None:
        ser = self._serial
        if ser is None:
            return
        try:
            data = ser.read(4096)
        except (serial.SerialException, OSError) as exc:
            self._fail(str(exc) or "read failed")
            return
        if not data:
            self._fail("device hung up")
            return
        t = time.perf_counter()
        if self._on_data is not None:
            self._on_data(data, t)
        else:
            self._buffer += data
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def write(self, data: bytes) -> None:
        if self._serial is None:
            raise OSError(f"{self.port} is not open")
        try:
            self._serial.write(data)
        except (serial.SerialException, OSError) as exc:
            self._fail(str(exc) or "write failed")
            raise OSError(self.error) from exc

    async def _wait(self, deadline: float) -> None:
        assert self._loop is not None
        remaining = deadline - self._loop.time()
        if remaining <= 0:
            raise TimeoutError
        self._waiter = self._loop.create_future()
        try:
            await asyncio.wait_for(self._waiter, remaining)
        finally:
            self._waiter = None

    async def read_exactly(self, n: int, timeout: float) -> bytes:
        """Wait up to ``timeout`` seconds for ``n`` bytes. Raises TimeoutError or OSError."""
        assert self._loop is not None
        deadline = self._loop.time() + timeout
        while len(self._buffer) < n:
            if self._serial is None:
                raise OSError(self.error or f"{self.port} closed")
            await self._wait(deadline)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data


async def next_or_failed(queue: asyncio.Queue[T], serial: AsyncSerial, timeout: float) -> T | None:
    """The next item of ``queue`` within ``timeout`` seconds, or None when none came or the
    port failed first (callers tell the two apart with ``serial.failed``). For drivers that
    decode ``on_data`` chunks into a queue of answers (fingerprint, PN532)."""
    if timeout <= 0:
        return None
    getter = asyncio.ensure_future(queue.get())
    failed = asyncio.ensure_future(serial.failed.wait())
    try:
        await asyncio.wait({getter, failed}, timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        failed.cancel()
        if not getter.done():
            getter.cancel()
    if not getter.done() or getter.cancelled():
        return None
    return getter.result()


# Queued by ``FrameLink`` when its decoder rejected a frame while a command waited for its
# answer, so the command can retry at once instead of running into its timeout.
CORRUPT = object()


class FrameDecoder(Protocol[T_co]):
    def feed(self, data: bytes) -> Iterable[T_co]: ...

    def reset(self) -> None: ...


class FrameLink(Generic[T]):
    """A command/answer device on one serial port (fingerprint module, PN532): ``on_data``
    chunks are decoded into a queue of answers, and ``next`` awaits one until a deadline or
    until the port fails. Commands are serialised by the caller.

    ``error`` is raised for a closed or failed port, ``timeout_error(timeout_message)`` when
    no answer came in time; ``next`` returns ``CORRUPT`` when the decoder rejected bytes
    (``counters.bad_checksum``/``bad_frames`` went up) while waiting.
    """

    def __init__(
        self,
        port: str,
        baudrate: int,
        decoder: FrameDecoder[T],
        counters: ReaderCounters,
        *,
        error: type[Exception],
        timeout_error: type[Exception],
        timeout_message: str,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.decoder = decoder
        self.counters = counters
        self._error = error
        self._timeout_error = timeout_error
        self._timeout_message = timeout_message
        self.bytes_sent = 0
        self.bytes_received = 0
        self.last_rx_t = 0.0
        self._serial: AsyncSerial | None = None
        self._queue: asyncio.Queue[tuple[object, float]] = asyncio.Queue()

    def open(self) -> None:
        self._queue = asyncio.Queue()
        self.decoder.reset()
        self._serial = AsyncSerial(self.port, self.baudrate, on_data=self._on_data)
        self._serial.open()

    def close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    def _rejected(self) -> int:
        return self.counters.bad_checksum + self.counters.bad_frames

    def _on_data(self, data: bytes, t: float) -> None:
        self.bytes_received += len(data)
        before = self._rejected()
        for item in self.decoder.feed(data):
            self._queue.put_nowait((item, t))
        if self._rejected() != before:
            self._queue.put_nowait((CORRUPT, t))

    def drop_stale(self) -> None:
        """Forget answers still queued from an earlier, abandoned command."""
        while not self._queue.empty():
            self._queue.get_nowait()

    def _live(self) -> AsyncSerial:
        serial = self._serial
        if serial is None:
            raise self._error(f"{self.port} is not open")
        if serial.failed.is_set():
            # Report why the port died (hang-up, read error), not just that it is closed now.
            raise self._error(serial.error or f"{self.port} failed")
        return serial

    def write(self, data: bytes) -> None:
        self._live().write(data)
        self.bytes_sent += len(data)

    async def next(self, deadline: float) -> T | object:
        """The next answer (or ``CORRUPT``) before ``deadline`` (``time.monotonic()``)."""
        serial = self._live()
        got = await next_or_failed(self._queue, serial, deadline - time.monotonic())
        if got is None:
            self._live()  # the port failed while we waited: say why
            raise self._timeout_error(self._timeout_message)
        item, t = got
        if item is not CORRUPT:
            self.last_rx_t = t
        return item
