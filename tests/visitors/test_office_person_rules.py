"""The office owns a person's zones, host and exit hold (issue 17's defect): set with
`edgegate central people set`, carried in the signed updates and snapshots, applied by the
door, and kept through later updates and snapshots. Real broker, office and door daemon."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from edgegate.central.person_rules import KEEP, RuleChange, person_ops
from edgegate.central.store import CentralError
from edgegate.cli.main import main
from edgegate.contract import signing
from edgegate.sim.broker import Broker
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store.credentials import get_person_attrs
from edgegate.store.db import open_db
from tests.central.conftest import ServerThread, make_central
from tests.conftest import entry_exit_config, running_door, until, write_config_file

VISITOR_CARD, BOB_CARD = "0F00BC614E", "0A0B0C0D0E"


async def decide(door, sim: Rdm6300Simulator, card: str):
    sim.tap(card)
    while True:
        ev = await door.next_event(5)
        if ev.type in ("access_granted", "access_denied"):
            return ev


@pytest.mark.broker
@pytest.mark.slow
def test_office_sets_rule_attributes_and_doors_keep_them(tmp_path: Path, broker: Broker):
    (tmp_path / "office").mkdir()
    office = make_central(tmp_path / "office", broker.port)
    key = signing.public_text(office.signer._key.public_key())
    assert office.run("people", "add", "alice", "--name", "Alice") == 0
    assert office.run("people", "add", "v1", "--card", VISITOR_CARD) == 0
    assert office.run("people", "set", "v1", "--zone", "lab", "--host", "alice",
                      "--settled", "no") == 0  # fmt: skip
    server = ServerThread(office)

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            entry = stack.enter_context(Rdm6300Simulator())
            exit_ = stack.enter_context(Rdm6300Simulator())
            cfg = entry_exit_config(tmp_path, "rdm6300", entry.port, exit_.port, broker, key, "lab")
            door = await stack.enter_async_context(running_door(tmp_path, sim=entry, config=cfg))
            sync = door.daemon.sync
            await until(lambda: sync.version >= 3, what="snapshot")
            db = open_db(cfg.storage.path, readonly=True)
            stack.callback(db.close)
            expected = {"zones": ["lab"], "host": "alice", "settled": False}
            assert get_person_attrs(db, "v1") == expected

            ev = await decide(door, entry, VISITOR_CARD)
            assert ev.type == "access_granted", ev.payload
            ev = await decide(door, exit_, VISITOR_CARD)
            assert ev.payload["reason"] == "settlement_required"

            # An unrelated update (another person) keeps the visitor's attributes.
            have = sync.version
            assert await asyncio.to_thread(office.run, "people", "add", "bob",
                                           "--card", BOB_CARD) == 0  # fmt: skip
            await until(lambda: sync.version > have, what="update")
            assert get_person_attrs(db, "v1") == expected
            ev = await decide(door, exit_, VISITOR_CARD)
            assert ev.payload["reason"] == "settlement_required"

            # So does a full snapshot (the door asks on a `sync` command).
            assert await asyncio.to_thread(office.run, "cmd", "d1", "sync") == 0
            while True:
                ev = await door.next_event(10)
                if ev.type == "credentials_snapshot":
                    break
            assert get_person_attrs(db, "v1") == expected

            # The host signs off at the office: the exit hold is released at the door.
            have = sync.version
            assert await asyncio.to_thread(office.run, "people", "set", "v1",
                                           "--settled", "yes") == 0  # fmt: skip
            await until(lambda: sync.version > have, what="sign-off update")
            ev = await decide(door, exit_, VISITOR_CARD)
            assert ev.type == "access_granted", ev.payload
            # A zone change at the office moves the visitor out of this door's zone.
            assert await asyncio.to_thread(office.run, "people", "set", "v1",
                                           "--zone", "lobby") == 0  # fmt: skip
            await until(lambda: get_person_attrs(db, "v1").get("zones") == ["lobby"])
            ev = await decide(door, entry, VISITOR_CARD)
            assert ev.payload["reason"] == "zone"

    try:
        asyncio.run(asyncio.wait_for(scenario(), 90))
    finally:
        server.stop()


def test_person_ops_keep_what_they_do_not_change(tmp_path: Path):
    office = make_central(tmp_path, 1)  # no broker needed: ops are built, not published
    from edgegate.central import store
    from edgegate.contract import messages as m

    with office.db().begin() as conn:
        store.commit_ops(conn, [
            m.PutPerson(op="put_person", person=m.PersonMsg(id="alice")),
            m.PutPerson(op="put_person", person=m.PersonMsg(
                id="v1", name="V", attrs={"groups": ["visitors"], "zones": ["lab"]})),
        ])  # fmt: skip
    conn = office.db().connect()
    ops = person_ops(conn, "v1", RuleChange(host="alice", settled=False))
    person = ops[0].person  # type: ignore[union-attr]
    assert person.attrs == {"groups": ["visitors"], "zones": ["lab"], "host": "alice",
                            "settled": False}  # fmt: skip
    assert person.name == "V"
    ops = person_ops(conn, "v1", RuleChange(zones=None, valid_until=5.0))
    person = ops[0].person  # type: ignore[union-attr]
    assert "zones" not in person.attrs and person.valid_until == 5.0
    with pytest.raises(CentralError, match="host"):
        person_ops(conn, "v1", RuleChange(host="nobody"))
    with pytest.raises(CentralError, match="no person"):
        person_ops(conn, "ghost", RuleChange(settled=KEEP))
    conn.close()
    office.close()


def test_door_people_set_refused_on_an_office_managed_door(tmp_path: Path, capsys):
    sim = Rdm6300Simulator()
    try:
        path = write_config_file(tmp_path, sim.port)
        assert main(["people", "set", "v1", "--zone", "lab", "--config", str(path)]) != 0
        assert "no person" in capsys.readouterr().err  # standalone: the local set is allowed
        with path.open("a") as f:
            f.write('\n[mqtt]\nhost = "127.0.0.1"\n')
        assert main(["people", "set", "v1", "--zone", "lab", "--config", str(path)]) != 0
        assert "edgegate central people set" in capsys.readouterr().err
    finally:
        sim.close()
