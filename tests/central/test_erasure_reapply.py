"""Erasures survive a restore (docs/central.md, "Backups and erasures"): each erasure is
recorded in the ledger outside the store (a keyed digest of the id and the pseudonym, never
the id), and `central people erase --reapply` repeats it on a store that names the person
again, under the same pseudonym: after restoring a real `central backup` taken before the
erasure (SQLite), and on both engines for events a door published before it applied the
removal."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from edgegate.central import archive, erasure_ledger, store
from edgegate.central.schema.archive import events
from edgegate.central.schema.console import audit_log
from edgegate.central.schema.master import versions
from edgegate.central.services import audit, open_office
from edgegate.central.snapshot import erased_since
from tests.central.conftest import Central

pytestmark = pytest.mark.broker

CARD = "0F00BC614E"


def _event(seq: int, person: str) -> dict:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_780_000_000 + seq)) + "Z"
    return {"id": f"front-{seq}", "seq": seq, "ts": ts, "site": "hq", "door": "front",
            "type": "access_granted", "kind": "card", "credential": CARD,
            "person": person}  # fmt: skip


def _archive(central: Central, *evs: dict) -> None:
    with central.db().begin() as conn:
        archive.archive_events(conn, "hq", "front", list(evs), time.time())


def _persons(central: Central) -> dict[str, str]:
    with central.db().connect() as conn:
        return dict(conn.execute(select(events.c.id, events.c.person)).all())


def _erase(central: Central, capsys) -> str:
    capsys.readouterr()
    assert central.run("people", "erase", "alice", "--yes", "--reason", "request 7") == 0
    return capsys.readouterr().out.split("now ")[1].split(" ")[0]


def _restore(central: Central, copy: Path) -> None:
    """SQLite's backup API the other way round (what the sqlite3 shell's .restore does): a
    proper write transaction, so connections still open in this process see the old store."""
    src, dst = sqlite3.connect(copy), sqlite3.connect(central.config.central.db)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _ledger(central: Central):
    c = central.config.central
    return erasure_ledger.path_for(c.db, c.erasure_ledger)


def test_late_events_are_mapped_to_the_same_pseudonym(central: Central, capsys) -> None:
    assert central.run("people", "add", "alice", "--name", "Alice Late", "--card", CARD) == 0
    _archive(central, _event(1, "alice"))
    pseudonym = _erase(central, capsys)
    text = _ledger(central).read_text()
    assert len(text.splitlines()) == 1 and pseudonym in text
    assert "alice" not in text.lower() and CARD not in text
    # Nothing to repeat while the store names her nowhere.
    assert central.run("people", "erase", "--reapply") == 0
    assert "0 erasures to re-apply" in capsys.readouterr().out

    # A door offline during the erasure publishes its older events before it applies the
    # removal: they arrive naming her id. A torn last line of the ledger is skipped.
    _archive(central, _event(2, "alice"))
    with _ledger(central).open("a") as f:
        f.write('{"v":1,"at":')
    assert central.run("people", "erase", "--reapply") == 1  # the preview
    out = capsys.readouterr().out
    assert f"to re-apply: {pseudonym}" in out and "alice" not in out
    assert _persons(central)["front-2"] == "alice"
    assert central.run("people", "erase", "--reapply", "--yes") == 0
    assert _persons(central) == {"front-1": pseudonym, "front-2": pseudonym}
    assert len(_ledger(central).read_text().splitlines()) == 2  # a re-application adds none
    office = open_office(central.config)
    try:
        assert audit.verify(office.engine).ok
    finally:
        office.close()


# SQLite only: `central backup` copies SQLite stores; a PostgreSQL office is backed up with
# pg_dump (docs/central.md), and the re-application after late events runs on both engines.
@pytest.mark.parametrize("office_db", ["sqlite"], indirect=True)
def test_reapply_after_restoring_a_backup_from_before_the_erasure(
    tmp_path, central: Central, capsys
) -> None:
    assert central.run("people", "add", "alice", "--name", "Alice Restored", "--card", CARD) == 0
    assert central.run("people", "add", "bob", "--name", "Bob", "--card", "00AA11BB22") == 0
    _archive(central, _event(1, "alice"), _event(2, "bob"))
    copy = tmp_path / "before.db"
    assert central.run("backup", "--to", str(copy)) == 0
    pseudonym = _erase(central, capsys)

    # The office machine is restored from the older backup: she is back in the master and
    # in the archive; the ledger (outside the store) is not rolled back.
    _restore(central, copy)
    assert central.q(store.get_person, "alice") is not None

    assert central.run("people", "erase", "--reapply", "--yes") == 0
    assert f"re-applied {pseudonym}" in capsys.readouterr().out
    assert central.q(store.get_person, "alice") is None
    assert _persons(central) == {"front-1": pseudonym, "front-2": "bob"}
    with central.db().connect() as conn:
        entry = conn.execute(select(audit_log).order_by(audit_log.c.seq.desc())).first()
    assert entry.action == "person_erased" and entry.target == pseudonym
    assert "re-applied" in json.loads(entry.detail)["reason"]
    assert central.run("people", "erase", "--reapply") == 0  # nothing left to repeat


@pytest.mark.parametrize("office_db", ["sqlite"], indirect=True)
def test_reapply_sends_the_doors_the_erasure_of_a_person_removed_before_the_backup(
    tmp_path, central: Central, capsys
) -> None:
    """Removed (not erased) before the backup, erased after it, no event of theirs anywhere:
    the restored version log still holds their put (name, card) and the doors' journals may
    still name them. The re-application finds them by the log, scrubs it again and sends the
    signed removal with ``erase`` (the master has nobody to remove)."""
    assert central.run("people", "add", "alice", "--name", "Alice Restored", "--card", CARD) == 0
    assert central.run("people", "remove", "alice") == 0
    copy = tmp_path / "before.db"
    assert central.run("backup", "--to", str(copy)) == 0
    pseudonym = _erase(central, capsys)
    _restore(central, copy)
    restored = central.q(store.current_version)
    assert central.q(erased_since, 0, restored) == []

    assert central.run("people", "erase", "--reapply") == 1
    assert f"to re-apply: {pseudonym}" in capsys.readouterr().out
    assert central.run("people", "erase", "--reapply", "--yes") == 0
    assert f"re-applied {pseudonym}" in capsys.readouterr().out
    latest = central.q(store.current_version)
    assert latest == restored + 1 and central.q(store.unpublished_count) == 0
    assert central.q(erased_since, restored, latest) == ["alice"]
    with central.db().connect() as conn:
        log_text = "".join(conn.execute(select(versions.c.ops)).scalars())
    assert "Alice Restored" not in log_text and CARD not in log_text
    assert central.run("people", "erase", "--reapply") == 0  # nothing left to repeat
