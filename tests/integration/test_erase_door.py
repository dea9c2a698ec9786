"""A person erased at the office is forgotten by a real door: `central serve` and a real
door daemon (RDM6300 and fingerprint sensor simulators on ptys, mock pins) on one real broker.

The door learns alice (card, fingerprint template, face encodings) by snapshot and lets her
in; `central people erase alice --yes` sends the signed removal; the door applies it with its
own applier: her rows and template are gone from its store, the template is deleted from the
sensor, her id and card are rewritten out of its journal (the rows stay, naming "erased"),
neither her name nor her id is left in the store's file, her card is unknown; bob still
opens. The office's archive names her pseudonym only.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest

from edgegate.central import store
from edgegate.central.archive import query_events
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.fingerprint import FingerprintSimulator, finger_template
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store.db import open_db
from tests.central.conftest import ServerThread, make_central
from tests.conftest import running_door
from tests.integration.test_central_to_doors import decision, door_config, until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CARD, BOB_CARD, FINGER = "0F00BC614E", "00AA11BB22", "alice-index"
NAME = "Alice Forgettable"


def _rows(db: Path, sql: str, *args: object) -> list[tuple]:
    conn = open_db(db, readonly=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def test_an_erased_person_is_forgotten_by_the_door(tmp_path: Path, broker: Broker) -> None:
    (tmp_path / "office").mkdir()
    central = make_central(tmp_path / "office", broker.port)
    key = signing.public_text(central.signer._key.public_key())
    template, face = tmp_path / "alice.tpl", tmp_path / "alice.face"
    template.write_bytes(finger_template(FINGER))
    face.write_bytes(np.random.default_rng(1).random((2, 128), dtype=np.float32).tobytes())
    assert central.run("people", "add", "alice", "--name", NAME, "--card", CARD) == 0
    assert central.run("people", "add", "bob", "--name", "Bob", "--card", BOB_CARD) == 0
    for kind, path, label in (("finger", template, "model=r307"), ("face", face, "")):
        args = ["--label", label] if label else []
        assert central.run("people", "add-credential", "alice", "--kind", kind,
                           "--data-file", str(path), *args) == 0  # fmt: skip
    server = ServerThread(central)

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            cards = stack.enter_context(Rdm6300Simulator())
            sensor = stack.enter_context(FingerprintSimulator())
            cfg = door_config(tmp_path, "front", cards.port, sensor.port, broker, key)
            door = await stack.enter_async_context(running_door(tmp_path, sim=cards, config=cfg))
            db = cfg.storage.path
            master = central.q(store.current_version)
            await until(lambda: door.daemon.sync.version >= master, what="snapshot")
            await until(lambda: sensor.library, what="template in the sensor")
            kinds = _rows(db, "SELECT kind FROM credentials WHERE person_id = 'alice'")
            assert sorted(k for (k,) in kinds) == ["card", "face", "finger"]
            cards.tap(CARD)
            ev = await decision(door)
            assert ev.type == "access_granted" and ev.payload["person"] == "alice"
            sensor.place_finger(FINGER)
            ev = await decision(door)
            sensor.lift_finger()
            assert ev.type == "access_granted" and ev.payload["person"] == "alice"
            await until(lambda: len(central.q(query_events, person="alice")) >= 2, what="archived")

            # In a thread: the CLI waits for the broker's PUBACK; the door's loop must not.
            rc = await asyncio.to_thread(
                central.run, "people", "erase", "alice", "--yes", "--reason", "asked in writing"
            )
            assert rc == 0
            erased = central.q(store.current_version)
            await until(lambda: door.daemon.sync.version >= erased, what="the removal")
            await until(lambda: not sensor.library, what="template deleted from the sensor")
            await door.daemon.finger_library.wait_idle(10)

            assert _rows(db, "SELECT * FROM people WHERE id = 'alice'") == []
            assert _rows(db, "SELECT * FROM credentials WHERE person_id = 'alice'") == []
            assert _rows(db, "SELECT * FROM finger_slots WHERE value LIKE 'alice.%'") == []
            assert _rows(db, "SELECT * FROM presence WHERE person_id = 'alice'") == []
            # Her journal rows stay (the door's record of what happened) without her id or
            # card: the same rows, in order, naming "erased".
            journal = _rows(db, "SELECT seq, type, payload FROM events ORDER BY seq")
            assert journal and not [r for r in journal if '"alice"' in r[2] or CARD in r[2]]
            mine = [json.loads(p) for _s, t, p in journal if t == "access_granted"]
            assert [e["person"] for e in mine] == ["erased", "erased"]
            assert mine[0]["credential"] == "erased"
            cards.tap(CARD)
            ev = await decision(door)
            assert ev.type == "access_denied" and ev.payload["reason"] == "unknown"
            cards.tap(BOB_CARD)
            ev = await decision(door)
            assert ev.type == "access_granted" and ev.payload["person"] == "bob"

            # Her name is not left in the store's file (secure_delete): checkpointed, the WAL
            # folded in and truncated, the bytes of the file hold no trace of it.
            conn = sqlite3.connect(db)
            try:
                deadline = time.monotonic() + 10
                while conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
                    assert time.monotonic() < deadline, "checkpoint kept being blocked"
                    await asyncio.sleep(0.1)
            finally:
                conn.close()
            assert NAME.encode() not in Path(db).read_bytes()
            assert b'"alice"' not in Path(db).read_bytes()

            # The office: the archive keeps her events under a pseudonym.
            await until(lambda: central.q(query_events, person="bob"), what="bob archived")
            assert central.q(query_events, person="alice") == []
            kept = [e for e in central.q(query_events) if e["type"] == "access_granted"]
            people = {e["person"] for e in kept}
            assert "bob" in people and any(p.startswith("erased-") for p in people)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        server.stop()
        central.close()
