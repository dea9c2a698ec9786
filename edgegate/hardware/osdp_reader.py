"""An OSDP reader: the door is the Control Panel, the reader a Peripheral Device on RS-485.

In: card reads (``CredentialRead(CARD, <hex>)``), keypad PINs (``CredentialRead(PIN,
<digits>)`` on '#' or after the keypad falls silent), tamper and power status. Out: the door's
decision on this reader's LED (green / red), buzzer and text display, when the reader reports
the capability. Health: the PD going offline (no answer to polls), a refused Secure Channel or
a failed serial port raise ``OSError`` out of ``serve``/``open``, so the base class journals
``reader_fault`` and ``reader_recovered`` and reopens with backoff.

The Secure Channel is on by default; the key (SCBK) comes from a key file or a systemd
credential, never from the config file. See docs/osdp.md.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import osdp
import structlog

from edgegate.core.feedback import SIGNALS, Outcome, text_for
from edgegate.hardware.base import CredentialKind, CredentialRead, Direction, Reader, ReaderSink
from edgegate.hardware.osdp_codec import (
    LED_AMBER,
    LED_GREEN,
    LED_RED,
    KeypadBuffer,
    buzzer_command,
    card_value,
    led_command,
    parse_scbk,
    text_command,
)
from edgegate.hardware.osdp_link import RECEIVED, OsdpLink, set_library_log_level

log = structlog.get_logger(__name__)

TAMPER = 0  # byte 0 of a local status report (osdp_LSTATR): tamper; byte 1: power


def load_scbk(key_file: Path | None, credential: str) -> bytes:
    """The reader's SCBK: ``key_file`` when set, else the systemd credential ``credential``
    (``$CREDENTIALS_DIRECTORY/<credential>``, from ``LoadCredential=``). Raises OSError when
    there is none and ValueError when it is malformed."""
    if key_file is not None:
        path = key_file
    else:
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if not cred_dir:
            raise OSError(
                f"no SCBK: set scbk_file, or pass the systemd credential {credential!r} "
                "(LoadCredential=) so that $CREDENTIALS_DIRECTORY is set"
            )
        path = Path(cred_dir) / credential
    try:
        return parse_scbk(path.read_bytes())
    except FileNotFoundError:
        raise OSError(f"no SCBK: {path} does not exist") from None
    except ValueError as exc:
        raise ValueError(f"SCBK in {path}: {exc}") from None


class OsdpReader(Reader):
    family = "osdp"

    def __init__(
        self,
        name: str,
        sink: ReaderSink,
        port: str,
        *,
        baudrate: int = 9600,
        address: int = 0,
        direction: Direction = Direction.IN,
        secure_channel: bool = True,
        scbk_file: Path | None = None,
        scbk_credential: str | None = None,
        install_mode: bool = False,
        connect_timeout: float = 5.0,
        pin_timeout: float = 5.0,
        pin_min_digits: int = 4,
        pin_max_digits: int = 12,
        grant_seconds: float = 3.0,
        deny_seconds: float = 2.0,
        show_text: bool = True,
        debug: bool = False,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        super().__init__(
            name, sink, direction, backoff_initial=backoff_initial, backoff_max=backoff_max
        )
        self.port = port
        self.baudrate = baudrate
        self.address = address
        self.secure_channel = secure_channel
        self.scbk_file = scbk_file
        self.scbk_credential = scbk_credential or f"osdp-scbk-{name}"
        self.install_mode = install_mode
        self.connect_timeout = connect_timeout
        self.grant_seconds = grant_seconds
        self.deny_seconds = deny_seconds
        self.show_text = show_text
        self.debug = debug
        self.keypad = KeypadBuffer(pin_min_digits, pin_max_digits, pin_timeout)
        self.tamper = False
        self.link: OsdpLink | None = None
        self._pin_timer: asyncio.TimerHandle | None = None

    # --- Reader ----------------------------------------------------------------------------
    async def open(self) -> None:
        scbk = None
        if self.secure_channel:
            scbk = load_scbk(self.scbk_file, self.scbk_credential)
        else:
            log.warning("osdp_plaintext", reader=self.name, address=self.address)
        set_library_log_level(self.debug)
        link = OsdpLink(
            self.name,
            self.port,
            self.baudrate,
            self.address,
            scbk=scbk,
            install_mode=self.install_mode,
            on_event=self._on_event,
        )
        self.link = link
        link.start()
        await link.wait_ready(self.connect_timeout)
        log.info(
            "reader_opened",
            reader=self.name,
            port=self.port,
            address=self.address,
            secure=link.sc_active,
            capabilities=link.capabilities,
            vendor=link.pd_id.get("vendor_code"),
            serial=link.pd_id.get("serial_number"),
        )

    async def serve(self) -> None:
        link = self.link
        assert link is not None
        await link.failed.wait()
        raise OSError(link.error or "OSDP link failed")

    def close(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            link.stop()
        if self._pin_timer is not None:
            self._pin_timer.cancel()
            self._pin_timer = None
        self.keypad.reset()

    def status(self) -> dict[str, object]:
        link = self.link
        return {
            **super().status(),
            "secure": bool(link and link.sc_active),
            "tamper": self.tamper,
            "pins_dropped": self.keypad.dropped,
        }

    # --- in: events from the PD (on the loop) ----------------------------------------------
    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        try:
            if kind == osdp.Event.CardRead:
                self._card(event)
            elif kind == osdp.Event.KeyPress:
                self._keys(bytes(event.get("data", b"")))
            elif kind == osdp.Event.Status:
                self._local_status(event)
            elif kind == osdp.Event.Notification:
                self._notification(event)
            else:
                log.debug("osdp_event_ignored", reader=self.name, osdp_event=kind)
        except (ValueError, TypeError, KeyError) as exc:
            # Bad input from a reader never stops the door: logged and counted.
            self.counters.bad_frames += 1
            log.warning("osdp_bad_event", reader=self.name, osdp_event=kind, error=str(exc))

    def _card(self, event: dict[str, Any]) -> None:
        t = event.get(RECEIVED) or time.perf_counter()
        value = card_value(int(event["format"]), bytes(event["data"]), event.get("length"))
        self.counters.reads += 1
        self.sink.credential(
            CredentialRead(CredentialKind.CARD, value, self.name, self.direction, t=t)
        )

    def _keys(self, keys: bytes) -> None:
        before = self.keypad.dropped
        for pin in self.keypad.feed(keys, time.monotonic()):
            self._submit_pin(pin)
        if self.keypad.dropped != before:
            log.info("osdp_pin_dropped", reader=self.name, dropped=self.keypad.dropped)
        self._arm_pin_timer()

    def _submit_pin(self, pin: str) -> None:
        self.counters.reads += 1
        self.sink.credential(CredentialRead(CredentialKind.PIN, pin, self.name, self.direction))

    def _arm_pin_timer(self) -> None:
        if self._pin_timer is not None:
            self._pin_timer.cancel()
            self._pin_timer = None
        deadline = self.keypad.deadline()
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic())
            self._pin_timer = asyncio.get_running_loop().call_later(delay, self._pin_timeout)

    def _pin_timeout(self) -> None:
        self._pin_timer = None
        pin = self.keypad.expire(time.monotonic())
        if pin is not None:
            self._submit_pin(pin)
        self._arm_pin_timer()

    def _local_status(self, event: dict[str, Any]) -> None:
        if event.get("type") != osdp.StatusReportType.Local:
            return
        report = bytes(event["report"])
        tamper = bool(report[TAMPER])
        if tamper == self.tamper:
            return
        self.tamper = tamper
        type_ = "reader_tamper" if tamper else "reader_tamper_cleared"
        log.warning(type_, reader=self.name, address=self.address)
        self.sink.reader_event(self.name, type_, address=self.address)

    def _notification(self, event: dict[str, Any]) -> None:
        link = self.link
        if (
            link is not None
            and event.get("type") == osdp.EventNotification.Command
            and event.get("arg0") == osdp.Command.Keyset
            and event.get("arg1") == 1
        ):
            log.warning("reader_key_set", reader=self.name, address=self.address)
            self.sink.reader_event(self.name, "reader_key_set", address=self.address)

    # --- out: the door's decision on the reader --------------------------------------------
    def feedback(
        self, granted: bool, outcome: Outcome | None = None, text: str | None = None
    ) -> None:
        link = self.link
        if link is None or not link.ready:
            return
        caps = link.capabilities
        outcome = outcome or (Outcome.WELCOME if granted else Outcome.DENIED)
        signal = SIGNALS[outcome]
        seconds = self.grant_seconds if granted else self.deny_seconds
        color = {"green": LED_GREEN, "red": LED_RED, "amber": LED_AMBER}[signal.led]
        commands = [
            (caps.get("led"), led_command(color, seconds, flash=signal.flash)),
            (caps.get("buzzer"), buzzer_command(signal.beep_seconds, repeats=signal.beeps)),
            (
                caps.get("text") and self.show_text,
                text_command(text or text_for(outcome), seconds),
            ),
        ]
        for supported, command in commands:
            if supported:
                link.submit(command)
