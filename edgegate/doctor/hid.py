"""Doctor's check of a USB HID (keyboard-mode) QR scanner: the device opens, is grabbed, and
what was scanned while doctor listened is decoded with the daemon's own decoder."""

from __future__ import annotations

import asyncio
import errno

from edgegate.config.readers import QrHidConfig
from edgegate.doctor import Check, fail, ok, warn
from edgegate.hardware.base import ReaderCounters
from edgegate.hardware.evdev_port import AsyncEvdev
from edgegate.hardware.input_events import KeyLineDecoder


def _problem(device: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return f"{device} does not exist (is the scanner plugged in? ls /dev/input/by-id/)"
    if exc.errno == errno.EACCES:
        return f"{device}: permission denied (the user must be in the input group)"
    return f"{device} cannot be opened: {exc.strerror or exc}"


async def check_qr_hid(name: str, cfg: QrHidConfig, seconds: float) -> Check:
    part = f"reader {name}"
    counters = ReaderCounters()
    decoder = KeyLineDecoder(counters, cfg.layout, name)
    lines: list[str] = []
    dev = AsyncEvdev(
        cfg.device, on_data=lambda data, _t: lines.extend(decoder.feed(data)), grab=cfg.grab
    )
    try:
        dev.open()
    except OSError as exc:
        return fail(part, _problem(cfg.device, exc))
    try:
        await asyncio.sleep(seconds)
    finally:
        dev.close()
    if dev.failed.is_set():
        return fail(part, f"{cfg.device} failed while listening: {dev.error}")
    summary = (
        f"{cfg.device} open ({'grabbed' if dev.grabbed else 'not grabbed'}, layout "
        f"{cfg.layout}); in {seconds:g} s: {len(lines)} code(s), {counters.bad_frames} "
        "unreadable"
    )
    if cfg.grab and not dev.grabbed:
        return warn(part, summary + " - not an input device? scans may also reach a console")
    if counters.bad_frames:
        return warn(part, summary + " - check the scanner's keyboard layout setting")
    if not lines:
        return ok(part, summary + " (scan a code while doctor runs to test)")
    return ok(part, summary + f"; last code {lines[-1][:24]}...")
