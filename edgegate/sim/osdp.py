"""An OSDP reader (Peripheral Device) on a pseudo-terminal: libosdp's own PD implementation.

The daemon opens the pty's slave end as its RS-485 port; the simulator runs
``osdp.PeripheralDevice`` on the master end, so every byte either way is real OSDP: the
Secure Channel handshake, MACs, sequence numbers, polls and replies. Cards, keys and tamper go
in as PD events; the commands the door sends (LED, buzzer, text, key set) are recorded.

The PD is refreshed by a thread of its own (``osdp-sim-pd``, every 2 ms, as fast as a real
reader answers) which calls our command handler, so ``commands`` is guarded by a lock.
``power_off``/``power_on`` model a reader losing power: the PD context is torn down (its
thread stops, the line goes silent) and a fresh one, with no session state, starts on the same line.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import osdp

from edgegate.hardware.osdp_codec import FMT_RAW_UNSPECIFIED, encode_card
from edgegate.sim.pty_device import PtyDevice

KEYPAD_ENTER = b"\r"  # the '#' key as OSDP encodes it
KEYPAD_CLEAR = b"\x7f"  # the '*' key
PD_REFRESH_SECONDS = 0.002


class FdChannel(osdp.Channel):
    """libosdp channel on the pty master (non-blocking)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        os.set_blocking(fd, False)

    def read(self, max_bytes: int) -> bytes:
        try:
            return os.read(self.fd, max_bytes)
        except (BlockingIOError, OSError):
            return b""

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, buf)
        except (BlockingIOError, OSError):
            return 0

    def flush(self) -> None:
        return None


def _refresh(stop: threading.Event, lock: threading.Lock, ctx: Any) -> None:
    while not stop.is_set():
        with lock:
            ctx.refresh()
        stop.wait(PD_REFRESH_SECONDS)


class OsdpReaderSimulator(PtyDevice):
    def __init__(
        self,
        *,
        address: int = 0,
        scbk: bytes | None = None,
        install_mode: bool = False,
        led: bool = True,
        buzzer: bool = True,
        text: bool = True,
    ) -> None:
        super().__init__()
        self.address = address
        self.scbk = scbk
        self.install_mode = install_mode
        caps = [(osdp.Capability.CommunicationSecurity, 1, 1)]
        if led:
            caps.append((osdp.Capability.LEDControl, 1, 1))
        if buzzer:
            caps.append((osdp.Capability.AudibleControl, 1, 1))
        if text:
            caps.append((osdp.Capability.TextOutput, 1, 1))
        self._caps = caps
        self._lock = threading.Lock()
        self.commands: list[dict[str, Any]] = []
        self.pd: osdp.PeripheralDevice | None = None
        self.power_on()

    # --- power -------------------------------------------------------------------------------
    def power_on(self) -> None:
        if self.pd is not None:
            return
        flags = []
        if self.scbk is not None:
            flags.append(osdp.LibFlag.EnforceSecure)
        elif self.install_mode:
            flags.append(osdp.LibFlag.InstallMode)
        info = osdp.PDInfo(self.address, FdChannel(self.master), scbk=self.scbk, flags=flags)
        pd = osdp.PeripheralDevice(
            info,
            osdp.PDCapabilities(self._caps),
            log_level=osdp.LogLevel.Error,
            command_handler=self._on_command,
        )
        # libosdp's wrapper (pd.start) refreshes every 20 ms; a real reader answers a poll
        # within a few milliseconds, so the simulator runs the same loop every 2 ms. It sets
        # the wrapper's own event/lock/thread, so submit_event and stop work unchanged.
        pd.event, pd.lock = threading.Event(), threading.Lock()
        pd.thread = threading.Thread(
            target=_refresh, args=(pd.event, pd.lock, pd.ctx), name="osdp-sim-pd", daemon=True
        )
        pd.thread.start()
        self.pd = pd

    def power_off(self) -> None:
        pd, self.pd = self.pd, None
        if pd is not None:
            pd.teardown()

    def close(self) -> None:
        self.power_off()
        super().close()

    # --- state -------------------------------------------------------------------------------
    @property
    def online(self) -> bool:
        return self.pd is not None and bool(self.pd.is_online())

    @property
    def secure(self) -> bool:
        return self.pd is not None and bool(self.pd.is_sc_active())

    def _on_command(self, command: dict[str, Any]) -> tuple[int, None]:
        # On libosdp's PD thread.
        with self._lock:
            self.commands.append(dict(command))
        if command.get("command") == osdp.Command.Keyset:
            # The key the reader keeps across power cycles from now on.
            self.scbk = bytes(command["data"])
            self.install_mode = False
        return 0, None

    def received(self, command: int | None = None) -> list[dict[str, Any]]:
        """Commands received so far (of one kind when ``command`` is given)."""
        with self._lock:
            return [c for c in self.commands if command is None or c.get("command") == command]

    def wait_for(self, command: int, count: int = 1, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Block until ``count`` commands of a kind arrived (for use from a test thread)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received(command)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.01)

    # --- a person at the reader --------------------------------------------------------------
    def _submit(self, event: dict[str, Any]) -> None:
        if self.pd is None:
            raise RuntimeError("the simulated reader is powered off")
        if not self.pd.submit_event(event):
            raise RuntimeError(f"libosdp refused the event {event}")

    def present_card(self, value: str) -> None:
        """A card whose data is the hex ``value`` (whole bytes, e.g. a 4- or 7-byte UID)."""
        data, bits = encode_card(value)
        self.present_raw(data, bits)

    def present_raw(self, data: bytes, bits: int, fmt: int = FMT_RAW_UNSPECIFIED) -> None:
        event = {"event": osdp.Event.CardRead, "reader_no": 0, "direction": 0, "format": fmt}
        event["data"] = data
        if fmt != osdp.CardFormat.ASCII:
            event["length"] = bits
        self._submit(event)

    def press(self, keys: str | bytes) -> None:
        """Keys as typed: digits, '#' (enter) and '*' (clear), sent the way OSDP encodes them."""
        if isinstance(keys, str):
            keys = keys.replace("#", "\r").replace("*", "\x7f").encode("ascii")
        self._submit({"event": osdp.Event.KeyPress, "reader_no": 0, "data": keys})

    def set_tamper(self, tampered: bool) -> None:
        """The reader's case opened (or closed): a local status report, tamper and power."""
        report = bytes([1 if tampered else 0, 0])
        self._submit(
            {"event": osdp.Event.Status, "type": osdp.StatusReportType.Local, "report": report}
        )
