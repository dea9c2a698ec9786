"""An RDM6300 on a pty: writes the real 14-byte frames, checksums and all."""

from __future__ import annotations

import asyncio
import os

from edgegate.hardware.rdm6300 import checksum, encode_frame
from edgegate.sim.pty_device import PtyDevice


class Rdm6300Simulator(PtyDevice):
    # The module repeats a held card's frame roughly every 50-100 ms.
    REPEAT_INTERVAL = 0.06

    def tap(self, uid: str, repeats: int = 1) -> None:
        """A card presented briefly: ``repeats`` frames back to back."""
        self.write(encode_frame(uid) * repeats)

    async def hold(self, uid: str, seconds: float) -> int:
        """A card held on the reader: the frame repeated for ``seconds``. Returns frames sent."""
        frame = encode_frame(uid)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        sent = 0
        while loop.time() < end:
            self.write(frame)
            sent += 1
            await asyncio.sleep(self.REPEAT_INTERVAL)
        return sent

    def tap_bad_checksum(self, uid: str) -> None:
        raw = bytes.fromhex(uid)
        wrong = (checksum(raw) ^ 0xFF) & 0xFF
        self.write(b"\x02" + uid.upper().encode() + f"{wrong:02X}".encode() + b"\x03")

    def noise(self, n: int = 32) -> bytes:
        data = os.urandom(n)
        self.write(data)
        return data
