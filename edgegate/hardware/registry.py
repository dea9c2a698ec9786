"""Building readers from their config tables: one entry per ``[[readers]] type``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgegate.hardware.base import Direction, Reader, ReaderSink
from edgegate.hardware.rdm6300 import Rdm6300Reader

Builder = Callable[[Any, str, ReaderSink], Reader]


def _rdm6300(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    return Rdm6300Reader(
        name,
        sink,
        cfg.port,
        baudrate=cfg.baudrate,
        direction=Direction(cfg.direction),
        hold_off=cfg.hold_off_seconds,
    )


def _pn532(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    from edgegate.hardware.pn532.reader import Pn532Reader

    return Pn532Reader(
        name,
        sink,
        cfg.port,
        baudrate=cfg.baudrate,
        direction=Direction(cfg.direction),
        poll_interval=cfg.poll_interval_seconds,
        timeout=cfg.timeout_seconds,
        hold_off=cfg.hold_off_seconds,
    )


def _wiegand(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    from edgegate.hardware.wiegand.reader import WiegandReader

    return WiegandReader.from_config(cfg, name, sink)


def _osdp(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    # Imported here: libosdp is the optional `osdp` extra, not needed by other doors.
    try:
        from edgegate.hardware.osdp_reader import OsdpReader
    except ImportError as exc:
        raise RuntimeError(
            f"reader {name}: OSDP readers need libosdp: pip install 'edgegate[osdp]' ({exc})"
        ) from exc

    return OsdpReader(
        name,
        sink,
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


def _qr_scanner(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    from edgegate.hardware.qr_scanner import QrScannerReader

    return QrScannerReader(
        name,
        sink,
        cfg.port,
        baudrate=cfg.baudrate,
        direction=Direction(cfg.direction),
        hold_off=cfg.hold_off_seconds,
    )


BUILDERS: dict[str, Builder] = {
    "rdm6300": _rdm6300,
    "pn532": _pn532,
    "wiegand": _wiegand,
    "osdp": _osdp,
    "qr_scanner": _qr_scanner,
}


def build_reader(cfg: Any, name: str, sink: ReaderSink) -> Reader:
    return BUILDERS[cfg.type](cfg, name, sink)
