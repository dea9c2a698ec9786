"""Doctor checks of the devices: card readers, fingerprint module, camera.

Serial devices are opened with the daemon's own ``AsyncSerial`` (exclusive, like the daemon)
and read with its parsers, all readers at once on one event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import serial

from edgegate.config.models import Config, FingerprintConfig, Rdm6300Config
from edgegate.config.reader_types import reader_types
from edgegate.doctor import Check, fail, ok, warn
from edgegate.hardware.base import ReaderCounters
from edgegate.hardware.rdm6300 import Rdm6300Parser
from edgegate.hardware.serial_port import AsyncSerial


def port_problem(port: str, exc: Exception) -> str:
    text = str(exc)
    if "lock" in text.lower() or "busy" in text.lower():
        return f"{port} is in use (is edgegate running? systemctl stop edgegate first)"
    if "No such file" in text or ("could not open port" in text and "Errno 2" in text):
        return f"{port} does not exist (check the wiring, the USB adaptor and enable_uart=1)"
    if "Permission denied" in text:
        return f"{port}: permission denied (the user must be in the dialout group)"
    return f"{port} cannot be opened: {text}"


async def listen_rdm6300(name: str, cfg: Rdm6300Config, seconds: float) -> Check:
    part = f"reader {name}"
    counters = ReaderCounters()
    parser = Rdm6300Parser(counters)
    cards: list[str] = []
    port = AsyncSerial(
        cfg.port, cfg.baudrate, on_data=lambda data, _t: cards.extend(parser.feed(data))
    )
    try:
        port.open()
    except (serial.SerialException, OSError) as exc:
        return fail(part, port_problem(cfg.port, exc))
    try:
        await asyncio.sleep(seconds)
    finally:
        port.close()
    if port.error:
        return fail(part, f"{cfg.port} failed while listening: {port.error}")
    errors = counters.bad_checksum + counters.bad_frames
    summary = (
        f"{cfg.port} open at {cfg.baudrate} baud; in {seconds:g} s: {len(cards)} frame(s), "
        f"{counters.bad_checksum} checksum error(s), {counters.bad_frames} broken frame(s), "
        f"{counters.noise_bytes} noise byte(s)"
    )
    if errors or counters.noise_bytes:
        return warn(part, summary + " - check the wiring, the ground and the baud rate")
    if not cards:
        return ok(part, summary + " (the RDM6300 is silent without a card: hold one to test)")
    return ok(part, summary + f"; last card {cards[-1]}")


async def open_only(name: str, cfg: Any) -> Check:
    """Reader types doctor has no protocol check for: the port opens, nothing more."""
    part = f"reader {name}"
    port = getattr(cfg, "port", None)
    if not port:
        return warn(part, f"type {cfg.type}: not checked by doctor")
    ser = AsyncSerial(port, getattr(cfg, "baudrate", 9600))
    try:
        ser.open()
    except (serial.SerialException, OSError) as exc:
        return fail(part, port_problem(port, exc))
    ser.close()
    return ok(part, f"{port} opens (type {cfg.type}: no protocol check in doctor)")


async def check_fingerprint(name: str, fp: FingerprintConfig, seconds: float) -> Check:
    """The ``[fingerprint]`` module answers its handshake (``seconds`` unused: no waiting)."""
    from edgegate.hardware.fingerprint.sensor import FingerprintSensor

    part = f"fingerprint {name}"
    sensor = FingerprintSensor(
        fp.port, baudrate=fp.baudrate, address=fp.address, password=fp.password, retries=1
    )
    try:
        await sensor.open()
    except (serial.SerialException, OSError) as exc:
        return fail(part, port_problem(fp.port, exc))
    try:
        params = await sensor.handshake()
        count = await sensor.template_count()
    except Exception as exc:  # the driver's errors all say what went wrong in words
        return fail(part, f"{fp.port}: handshake failed: {exc}")
    finally:
        sensor.close()
    return ok(
        part,
        f"{fp.model} on {fp.port} answered: password accepted, {count} of {params.capacity} "
        f"templates used, packets of {params.packet_size} bytes, {params.baudrate} baud",
    )


async def check_serial_devices(config: Config, seconds: float) -> list[Check]:
    # Each reader type declares its doctor check (edgegate/config/reader_types.py); types
    # without one get the port opened, nothing more.
    types = reader_types()
    jobs: list[Awaitable[Check]] = []
    for cfg, name in zip(config.readers, config.reader_names(), strict=True):
        check = types[cfg.type].load_doctor()
        jobs.append(check(name, cfg, seconds) if check else open_only(name, cfg))
    fp = config.fingerprint
    fp_check = types["fingerprint"].load_doctor()
    if fp is not None and fp_check is not None:
        jobs.append(fp_check(fp.name, fp, seconds))
    if not jobs:
        return [warn("readers", "no reader configured: nothing can open the door but the exit")]
    return list(await asyncio.gather(*jobs))


def check_camera(config: Config) -> list[Check]:
    if config.camera is None:
        return []
    source = config.camera.source
    try:
        import cv2
    except ImportError:
        return [fail("camera", "face stack not installed (install.sh --face): cv2 is missing")]
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    try:
        if not capture.isOpened():
            return [fail("camera", f"camera {source!r} cannot be opened")]
        grabbed, frame = capture.read()
    finally:
        capture.release()
    if not grabbed or frame is None:
        return [fail("camera", f"camera {source!r} opened but gave no frame")]
    height, width = frame.shape[:2]
    return [ok("camera", f"camera {source!r} gave a {width}x{height} frame")]
