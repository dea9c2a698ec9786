"""A serial QR/barcode scanner on a pty: types each decoded code as one line ended by CR."""

from __future__ import annotations

from edgegate.sim.pty_device import PtyDevice


class QrScannerSimulator(PtyDevice):
    def scan(self, text: str, suffix: bytes = b"\r") -> None:
        self.write(text.encode("ascii") + suffix)
