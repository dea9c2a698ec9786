"""Visitor QR passes at a real door daemon, shown on a serial QR scanner (pty), with passes
signed by a real office and revocations pushed through a real broker (docs/visitors.md)."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from edgegate.cli.central_common import change
from edgegate.contract import messages as m
from edgegate.contract import signing
from edgegate.contract.visitor_pass import PassToken, encode_pass
from edgegate.sim.broker import Broker
from edgegate.sim.qr_scanner import QrScannerSimulator
from edgegate.store import pass_uses
from edgegate.store.db import open_db
from tests.central.conftest import ServerThread, make_central
from tests.conftest import entry_exit_config, running_door, until

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def decision(door, scanner: QrScannerSimulator, text: str):
    scanner.scan(text)
    while True:
        ev = await door.next_event(5)
        if ev.type in ("access_granted", "access_denied"):
            return ev


def altered(text: str, i: int) -> str:
    """One character of the token changed (the zone or the window, say)."""
    return text[:i] + ("B" if text[i] != "B" else "C") + text[i + 1 :]


def test_qr_passes_at_a_door(tmp_path: Path, broker: Broker):
    (tmp_path / "office").mkdir()
    office = make_central(tmp_path / "office", broker.port)
    key = signing.public_text(office.signer._key.public_key())
    now = int(time.time())

    def token(pid: str, zones=("lobby",), nb=now - 60, na=now + 3600, single=False) -> str:
        return encode_pass(office.signer, PassToken(pid, "V1", tuple(zones), nb, na, single))

    # The visit is a person at the doors (no name: personal data stays at the office), with
    # its pass pushed as a qr credential so that the office can revoke it.
    assert office.run("people", "add", "V1") == 0
    qr = m.CredentialMsg(kind="qr", value="Pmulti", person="V1")
    assert change(office.config, [m.PutCredential(op="put_credential", credential=qr)], "x") == 0
    server = ServerThread(office)

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            entry = stack.enter_context(QrScannerSimulator())
            exit_ = stack.enter_context(QrScannerSimulator())
            cfg = entry_exit_config(
                tmp_path, "qr_scanner", entry.port, exit_.port, broker, key, "lobby"
            )
            door = await stack.enter_async_context(running_door(tmp_path, config=cfg))
            sync = door.daemon.sync
            await until(lambda: sync.version >= 2)

            ev = await decision(door, entry, token("Pmulti"))
            assert ev.type == "access_granted", ev.payload
            p = ev.payload
            assert (p["kind"], p["credential"], p["person"], p["visit"]) == (
                "qr", "Pmulti", "V1", "V1")  # fmt: skip
            assert door.lock_high
            ev = await decision(door, entry, token("Pmulti"))
            assert ev.type == "access_granted"  # multiple entry

            reasons = {}
            for name, text in {
                "zone": token("Pzone", zones=("workshop",)),
                "expired": token("Pold", nb=now - 7200, na=now - 3600),
                "not_yet_valid": token("Psoon", nb=now + 3600, na=now + 7200),
                "forged": encode_pass(signing.Signer(signing.generate()), PassToken(
                    "Pmulti", "V1", ("lobby",), now - 60, now + 3600, False)),
                "altered": altered(token("Pmulti"), 20),
                "garbage": "https://example.com/not-a-pass",
            }.items():  # fmt: skip
                reasons[name] = (await decision(door, entry, text)).payload["reason"]
            assert reasons == {
                "zone": "zone", "expired": "expired", "not_yet_valid": "not_yet_valid",
                "forged": "forged", "altered": "forged", "garbage": "forged",
            }  # fmt: skip

            # Single entry: once in; out is fine; in again is a replay, also after a restart
            # of the decision (the use is in the store, written with the grant).
            single = token("Pone", single=True)
            assert (await decision(door, entry, single)).type == "access_granted"
            assert (await decision(door, exit_, single)).type == "access_granted"
            ev = await decision(door, entry, single)
            assert ev.payload["reason"] == "replayed"
            db = open_db(cfg.storage.path, readonly=True)
            stack.callback(db.close)
            assert pass_uses.is_used(db, "Pone")

            # The office revokes the pass: pushed as a disabled qr credential.
            off = m.SetCredentialEnabled(
                op="set_credential_enabled", kind="qr", value="Pmulti", enabled=False
            )
            have = sync.version
            assert await asyncio.to_thread(change, office.config, [off], "revoked") == 0
            await until(lambda: sync.version > have)
            ev = await decision(door, entry, token("Pmulti"))
            assert ev.payload["reason"] == "revoked"

    try:
        asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        server.stop()
