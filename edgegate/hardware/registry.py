"""Building readers from their config tables, through the reader types' declarations.

Which builder serves which ``[[readers]] type`` is declared once, in
``edgegate/config/reader_types.py``; the builders of the built-in card readers are here.
Each takes the reader's table, its name and a :class:`ReaderDevices`: what the composition
root hands over besides the table (the sink decisions go to, and devices injected in place of
the configured ones, as gpiozero is handed a pin factory).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgegate.config.reader_types import reader_types
from edgegate.hardware.base import Direction, Reader, ReaderSink
from edgegate.hardware.frame_reader import FrameReader
from edgegate.hardware.qr_scanner import QrScannerReader
from edgegate.hardware.rdm6300 import Rdm6300Reader
from edgegate.hardware.wiegand.gpio import EdgeSource


@dataclass(slots=True)
class ReaderDevices:
    """What a reader builder gets besides its table.

    ``edge_sources``: Wiegand wires by reader name, used instead of the configured GPIO chip
    (tests and the demo inject simulated wires; production code never imports a simulator).
    """

    sink: ReaderSink
    edge_sources: Mapping[str, EdgeSource] = field(default_factory=dict)


def build_reader(
    cfg: Any, name: str, sink: ReaderSink, devices: ReaderDevices | None = None
) -> Reader:
    """The reader for one ``[[readers]]`` table, by its declared type's builder."""
    builder = reader_types()[cfg.type].load_builder()
    reader = builder(cfg, name, devices or ReaderDevices(sink))
    assert isinstance(reader, Reader), f"{cfg.type} builder returned {reader!r}"
    return reader


def _line_reader(cls: type[FrameReader], cfg: Any, name: str, devices: ReaderDevices) -> Reader:
    """The readers that only read lines or frames from a UART: port, speed, hold-off."""
    return cls(
        name,
        devices.sink,
        cfg.port,
        baudrate=cfg.baudrate,
        direction=Direction(cfg.direction),
        hold_off=cfg.hold_off_seconds,
    )


def rdm6300(cfg: Any, name: str, devices: ReaderDevices) -> Reader:
    return _line_reader(Rdm6300Reader, cfg, name, devices)


def pn532(cfg: Any, name: str, devices: ReaderDevices) -> Reader:
    from edgegate.hardware.pn532.reader import Pn532Reader

    return Pn532Reader(
        name,
        devices.sink,
        cfg.port,
        baudrate=cfg.baudrate,
        direction=Direction(cfg.direction),
        poll_interval=cfg.poll_interval_seconds,
        timeout=cfg.timeout_seconds,
        hold_off=cfg.hold_off_seconds,
    )


def wiegand(cfg: Any, name: str, devices: ReaderDevices) -> Reader:
    from edgegate.hardware.wiegand.reader import WiegandReader

    return WiegandReader.from_config(cfg, name, devices.sink, devices.edge_sources.get(name))


def osdp(cfg: Any, name: str, devices: ReaderDevices) -> Reader:
    # Imported here: libosdp is the optional `osdp` extra, not needed by other doors.
    try:
        from edgegate.hardware.osdp_reader import OsdpReader
    except ImportError as exc:
        raise RuntimeError(
            f"reader {name}: OSDP readers need libosdp: pip install 'edgegate[osdp]' ({exc})"
        ) from exc

    return OsdpReader(
        name,
        devices.sink,
        cfg.port,
        baudrate=cfg.baudrate,
        address=cfg.address,
        direction=Direction(cfg.direction),
        secure_channel=cfg.secure_channel,
        scbk_file=cfg.scbk_file,
        scbk_credential=cfg.scbk_credential,
        install_mode=cfg.install_mode,
        connect_timeout=cfg.connect_timeout_seconds,
        pin_timeout=cfg.pin_timeout_seconds,
        pin_min_digits=cfg.pin_min_digits,
        pin_max_digits=cfg.pin_max_digits,
        grant_seconds=cfg.grant_seconds,
        deny_seconds=cfg.deny_seconds,
        show_text=cfg.show_text,
        debug=cfg.debug,
    )


def qr_scanner(cfg: Any, name: str, devices: ReaderDevices) -> Reader:
    return _line_reader(QrScannerReader, cfg, name, devices)


def qr_hid(cfg: Any, name: str, devices: ReaderDevices) -> Reader:
    from edgegate.hardware.qr_hid import QrHidReader

    return QrHidReader(
        name,
        devices.sink,
        cfg.device,
        layout=cfg.layout,
        grab=cfg.grab,
        direction=Direction(cfg.direction),
        hold_off=cfg.hold_off_seconds,
    )
