"""One OSDP Control Panel talking to one Peripheral Device over a serial (RS-485) line, driven
by libosdp (``pip install libosdp``, the C implementation of IEC 60839-11-5 with Python
bindings).

Threading model, and why:

* libosdp is not thread-safe and must be "refreshed" at least every 50 ms: each refresh reads
  the line, runs the protocol state machine (polls, Secure Channel, retries) and calls our
  event callback. The refresh runs in ONE thread of our own (``osdp-<reader>``), which is the
  only thread that ever touches the libosdp context: refresh, submit_command, status and
  capability queries all happen there. The asyncio loop hands commands over through a
  ``queue.SimpleQueue`` and never takes a lock, so a slow refresh can never stall the loop,
  and a busy loop can never starve the reader of its 50 ms polls.
* We use ``osdp_sys.ControlPanel`` (the bindings' C type) rather than ``osdp.ControlPanel``:
  the Python wrapper starts its own thread guarded by a lock that callers would have to take
  from the loop, and it queues every event forever unless someone calls ``get_event``.
* Everything libosdp reports (events from the callback, online / Secure Channel status changes
  seen after each refresh, a failed serial port) goes back to the loop with
  ``call_soon_threadsafe``; ``OsdpLink``'s public attributes are only read and written on the
  loop.
* The serial port is pyserial in non-blocking mode (``timeout=0``): libosdp's channel read must
  return at once with whatever is there. A read error is recorded on the channel (raising into
  the C callback would leave a Python error set inside libosdp) and ends the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import osdp
import osdp_sys
import serial
import structlog

log = structlog.get_logger(__name__)

EventHandler = Callable[[dict[str, Any]], None]

# libosdp wants a refresh at least every 50 ms. Each refresh reads what arrived, so the period
# adds directly to every reply's latency (a card waits for a poll, then for the refresh that
# reads the reply): measured on the dev VM, 20 ms gives card-to-callback p50 50 ms at 0.8 % of
# a core for this thread, 10 ms gives p50 21 ms at 1.2 %, 5 ms p50 14 ms at 2 %.
REFRESH_SECONDS = 0.01
RECEIVED = "_received"  # key added to each event: perf_counter() when libosdp delivered it
NOTIFY_SC = osdp.EventNotification.SecureChannelStatus
CAPABILITIES = {
    "led": osdp.Capability.LEDControl,
    "buzzer": osdp.Capability.AudibleControl,
    "text": osdp.Capability.TextOutput,
}


class SerialChannel(osdp.Channel):
    """libosdp's channel on a pyserial port. Called only from the link's thread.

    libosdp calls these methods from C and does not expect them to raise: an exception left
    behind would surface later as a SystemError in unrelated code. So every error is caught,
    recorded in ``error`` (the link thread checks it after each refresh) and reported to
    libosdp as "no data" / "nothing written".
    """

    def __init__(self, ser: serial.Serial) -> None:
        super().__init__()
        self.ser = ser
        self.error: str | None = None

    def read(self, max_bytes: int) -> bytes:
        if self.error is not None:
            return b""
        try:
            return bytes(self.ser.read(max_bytes))
        except Exception as exc:  # nothing may propagate into libosdp (see the class doc)
            self.error = str(exc) or "serial read failed"
            return b""

    def write(self, buf: bytes) -> int:
        if self.error is not None:
            return 0
        try:
            return int(self.ser.write(buf) or 0)
        except Exception as exc:
            self.error = str(exc) or "serial write failed"
            return 0

    def flush(self) -> None:
        # A flush discards input libosdp gave up on (after a timeout): stale bytes must not be
        # parsed as the start of the next reply. On a vanished port this raises termios.error,
        # which is not an OSError.
        try:
            self.ser.reset_input_buffer()
        except Exception as exc:
            self.error = str(exc) or "serial flush failed"


def set_library_log_level(debug: bool) -> None:
    """libosdp writes its own log lines to stderr; process-wide (every reader shares it)."""
    osdp_sys.set_loglevel(osdp.LogLevel.Debug if debug else osdp.LogLevel.Error)


class OsdpLink:
    """A CP for the PD at ``address`` on ``port``. ``start`` opens the port and starts the
    refresh thread; ``wait_ready`` waits for the PD to come online (with the Secure Channel up
    when ``scbk`` is given); ``failed`` is set, with ``error``, when the link is lost."""

    def __init__(
        self,
        name: str,
        port: str,
        baudrate: int,
        address: int,
        *,
        scbk: bytes | None,
        install_mode: bool = False,
        on_event: EventHandler,
    ) -> None:
        self.name = name
        self.port = port
        self.baudrate = baudrate
        self.address = address
        self.scbk = scbk
        self.install_mode = install_mode
        self.on_event = on_event
        # Loop-side state (written only on the loop).
        self.online = False
        self.sc_active = False
        self.sc_refused = False
        self._sc_seen = False
        self.capabilities: dict[str, bool] = {}
        self.pd_id: dict[str, int] = {}
        self.error: str | None = None
        self.failed = asyncio.Event()
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Thread-side state.
        self._commands: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: serial.Serial | None = None

    # --- loop side -----------------------------------------------------------------------------
    def start(self) -> None:
        """Open the port and start the refresh thread. Raises OSError when the port cannot be
        opened. The port open is a quick syscall; the slow part (the handshake) is awaited in
        ``wait_ready``."""
        self._loop = asyncio.get_running_loop()
        self._serial = serial.Serial(
            self.port, self.baudrate, timeout=0, write_timeout=1, exclusive=True
        )
        channel = SerialChannel(self._serial)
        flags = [osdp.LibFlag.EnableNotification]
        if self.scbk is not None and not self.install_mode:
            # Never fall back to the well-known default key (SCBK-D) outside install mode.
            flags.append(osdp.LibFlag.EnforceSecure)
        if self.install_mode:
            flags.append(osdp.LibFlag.InstallMode)
        info = osdp.PDInfo(self.address, channel, scbk=self.scbk, name=self.name, flags=flags)
        try:
            ctx = osdp_sys.ControlPanel([info.get()])
        except Exception as exc:  # libosdp raises a bare Exception on a bad setup
            self._serial.close()
            raise OSError(f"libosdp CP setup failed: {exc}") from exc
        ctx.set_event_callback(self._callback)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(ctx, channel), name=f"osdp-{self.name}", daemon=True
        )
        self._thread.start()

    async def wait_ready(self, timeout: float) -> None:
        """Until the PD is online (and secure when keyed); OSError on refusal or timeout."""
        assert self._loop is not None
        deadline = self._loop.time() + timeout
        while not self.ready:
            if self.failed.is_set():
                raise OSError(self.error)
            if self.sc_refused and self.scbk is not None and not self.online:
                raise OSError(
                    "secure channel refused: the reader does not have this SCBK (wrong key, "
                    "or a new reader still on its default key: see install_mode)"
                )
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise OSError(
                    f"no answer from OSDP address {self.address} on {self.port} "
                    f"within {timeout:g} s"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.1))

    @property
    def ready(self) -> bool:
        return self.online and (self.scbk is None or self.sc_active)

    def submit(self, command: dict[str, Any]) -> None:
        """Queue a command for the PD (sent by the refresh thread at its next refresh)."""
        self._commands.put(command)

    def stop(self) -> None:
        """Stop the thread and close the port. Safe to call more than once.

        The join is short: the thread sleeps on ``_stop`` (so it wakes at once) and a refresh
        with a non-blocking port takes well under a millisecond.
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)
            if thread.is_alive():
                log.error("osdp_thread_stuck", reader=self.name)
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(OSError):
                ser.close()
        self.online = self.sc_active = False

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        """From the refresh thread to the loop. The loop may be gone during shutdown."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(fn, *args)

    def _fail(self, reason: str) -> None:
        if not self.failed.is_set():
            self.error = reason
            self.failed.set()
        self._changed.set()

    def _status(self, online: bool, sc_active: bool, info: dict[str, Any] | None) -> None:
        if info is not None:
            self.capabilities = info["capabilities"]
            self.pd_id = info["pd_id"]
        if self.online and not online:
            self._fail("reader offline: no answer to polls")
        self.online, self.sc_active = online, sc_active
        self._changed.set()

    def _dispatch(self, event: dict[str, Any]) -> None:
        if event.get("event") == osdp.Event.Notification:
            kind, arg0, arg1 = event.get("type"), event.get("arg0"), event.get("arg1")
            if kind == NOTIFY_SC and arg0 == 1:
                self._sc_seen = True
                if arg1 == 1:  # a session on SCBK-D: install mode, the key is sent next
                    log.warning("osdp_default_key_session", reader=self.name, address=self.address)
            elif kind == NOTIFY_SC and not self._sc_seen and not self.online:
                # The handshake failed before any session: a key mismatch. (In install mode
                # the session drops once, after the key set; that follows a session.)
                self.sc_refused = True
                self._changed.set()
        self.on_event(event)

    # --- thread side ---------------------------------------------------------------------------
    def _callback(self, _pd: int, event: dict[str, Any]) -> int:
        # Called by libosdp inside ctx.refresh(), i.e. on the link thread. The arrival time is
        # taken here, not on the loop, so the door's latency figures include the hand-over.
        event[RECEIVED] = time.perf_counter()
        self._post(self._dispatch, event)
        return 0

    def _run(self, ctx: Any, channel: SerialChannel) -> None:
        last: tuple[bool, bool] | None = None
        try:
            while not self._stop.is_set():
                while True:
                    try:
                        command = self._commands.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        accepted = ctx.submit_command(0, command)
                    except Exception:  # a dict libosdp cannot convert: drop it, keep the link
                        accepted = False
                    if not accepted:
                        self._post(self._rejected, command.get("command"))
                ctx.refresh()
                if channel.error is not None:
                    self._post(self._fail, f"serial port failed: {channel.error}")
                    return
                now = (bool(ctx.status() & 1), bool(ctx.sc_status() & 1))
                if now != last:
                    info = self._describe(ctx) if now[0] and not (last and last[0]) else None
                    self._post(self._status, now[0], now[1], info)
                    last = now
                self._stop.wait(REFRESH_SECONDS)
        except Exception as exc:  # a libosdp error must end the link, not vanish in a thread
            self._post(self._fail, f"libosdp failed: {exc!r}")
        finally:
            # Drop the context on this thread: its dealloc tears libosdp down.
            del ctx

    @staticmethod
    def _describe(ctx: Any) -> dict[str, Any]:
        caps: dict[str, bool] = {}
        for key, code in CAPABILITIES.items():
            try:
                level, _items = ctx.check_capability(0, code)
            except ValueError:
                level = 0
            caps[key] = level > 0
        try:
            pd_id = dict(ctx.get_pd_id(0))
        except ValueError:
            pd_id = {}
        return {"capabilities": caps, "pd_id": pd_id}

    def _rejected(self, command: object) -> None:
        log.warning("osdp_command_rejected", reader=self.name, command=command)
