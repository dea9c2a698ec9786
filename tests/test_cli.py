"""The technician's commands, run as the console script would be."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edgegate.store.credentials import lookup
from edgegate.store.db import open_db, transaction
from tests.conftest import EDGEGATE, REPO, journal_writer, write_config_file


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config_file(tmp_path, "/dev/null")


def cli(*args: str, env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGEGATE, *args], capture_output=True, text=True, cwd=REPO, env=env)


def db_of(cfg: Path) -> Path:
    return cfg.parent / "door.db"


def test_enroll_list_disable_enable_remove(cfg: Path, subprocess_env):
    c = str(cfg)
    r = cli(
        "enroll",
        "card",
        "--config",
        c,
        "--person",
        "alice",
        "--name",
        "Alice",
        "--card",
        "0f:00:bc:61:4e",
        env=subprocess_env,
    )
    assert r.returncode == 0, r.stderr
    assert "0F00BC614E" in r.stdout
    conn = open_db(db_of(cfg), readonly=True)
    rec = lookup(conn, "card", "0F00BC614E")
    assert rec is not None and rec.person_id == "alice" and rec.enabled

    r = cli("cards", "list", "--config", c, "--json", env=subprocess_env)
    rows = json.loads(r.stdout)
    assert [x["value"] for x in rows] == ["0F00BC614E"]

    assert cli("cards", "disable", "0F00BC614E", "--config", c, env=subprocess_env).returncode == 0
    assert not lookup(conn, "card", "0F00BC614E").enabled
    assert cli("cards", "enable", "0F00BC614E", "--config", c, env=subprocess_env).returncode == 0
    assert lookup(conn, "card", "0F00BC614E").enabled

    r = cli("people", "list", "--config", c, env=subprocess_env)
    assert "alice" in r.stdout and "1 people" in r.stdout
    assert cli("people", "disable", "alice", "--config", c, env=subprocess_env).returncode == 0
    assert not lookup(conn, "card", "0F00BC614E").person_enabled

    assert cli("cards", "remove", "0F00BC614E", "--config", c, env=subprocess_env).returncode == 0
    assert lookup(conn, "card", "0F00BC614E") is None
    r = cli("cards", "remove", "0F00BC614E", "--config", c, env=subprocess_env)
    assert r.returncode == 1 and "no card" in r.stderr
    assert cli("people", "remove", "alice", "--config", c, env=subprocess_env).returncode == 0
    r = cli("people", "list", "--config", c, "--json", env=subprocess_env)
    assert json.loads(r.stdout) == []


def test_card_number_matches_em4100_read(cfg: Path, subprocess_env):
    # 0F00BC614E: version byte 0F, card number 0x00BC614E = 12345678 (printed on the card).
    r = cli(
        "enroll",
        "card",
        "--config",
        str(cfg),
        "--person",
        "bob",
        "--card-number",
        "0012345678",
        env=subprocess_env,
    )
    assert r.returncode == 0, r.stderr
    conn = open_db(db_of(cfg), readonly=True)
    rec = lookup(conn, "card", "0F00BC614E")
    assert rec is not None and rec.person_id == "bob"
    assert lookup(conn, "card", "0F00BC614F") is None


@pytest.mark.parametrize(
    "args",
    [
        ["--card", "XYZ"],
        ["--card", "ABC"],
        ["--card-number", "12a"],
        ["--card-number", "99999999999"],
        ["--card", "AA", "--valid-until", "tomorrow"],
    ],
)
def test_bad_input_is_rejected_clearly(cfg: Path, subprocess_env, args):
    r = cli("enroll", "card", "--config", str(cfg), "--person", "x", *args, env=subprocess_env)
    assert r.returncode == 2
    assert r.stderr.startswith("edgegate: ")


def test_card_of_another_person_is_refused(cfg: Path, subprocess_env):
    c = str(cfg)
    assert (
        cli(
            "enroll", "card", "--config", c, "--person", "a", "--card", "AABB", env=subprocess_env
        ).returncode
        == 0
    )
    r = cli("enroll", "card", "--config", c, "--person", "b", "--card", "AABB", env=subprocess_env)
    assert r.returncode == 1 and "already belongs to a" in r.stderr


def test_events_on_empty_store_and_missing_store(cfg: Path, subprocess_env):
    r = cli("events", "--config", str(cfg), env=subprocess_env)
    assert r.returncode == 1 and "no store here" in r.stderr
    cli("people", "list", "--config", str(cfg), env=subprocess_env)  # creates the store
    r = cli("events", "--config", str(cfg), "--json", env=subprocess_env)
    assert r.returncode == 0 and r.stdout == ""


def test_people_remove_erase_rewrites_the_journal(cfg: Path, subprocess_env):
    """A person only this door holds (enrolled here, never in the office's master) gets no
    signed erasure: ``people remove --erase`` removes them and rewrites their journal rows."""
    c = str(cfg)
    card = ["enroll", "card", "--config", c, "--person", "alice", "--name", "Alice Local",
            "--card", "0F00BC614E"]  # fmt: skip
    assert cli(*card, env=subprocess_env).returncode == 0
    conn = open_db(db_of(cfg), synchronous="NORMAL")
    try:
        with transaction(conn):
            journal_writer()(
                conn,
                [("access_granted", {"person": "alice", "credential": "0F00BC614E"}),
                 ("access_granted", {"person": "bob", "credential": "00AA11BB22"})],
                1_780_000_000.0,
            )  # fmt: skip
    finally:
        conn.close()
    r = cli("people", "disable", "alice", "--erase", "--config", c, env=subprocess_env)
    assert r.returncode == 2 and "--erase goes with remove" in r.stderr
    r = cli("people", "remove", "alice", "--erase", "--config", c, env=subprocess_env)
    assert r.returncode == 0 and "1 journal rows rewritten" in r.stdout, r.stderr
    conn = open_db(db_of(cfg), readonly=True)
    try:
        rows = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM events")]
        assert lookup(conn, "card", "0F00BC614E") is None
    finally:
        conn.close()
    mine = [p for p in rows if p.get("credential") == "erased"]
    assert [p["person"] for p in mine] == ["erased"]
    assert [p["person"] for p in rows if p.get("credential") == "00AA11BB22"] == ["bob"]
    assert not [p for p in rows if "alice" in json.dumps(p) or "0F00BC614E" in json.dumps(p)]
    assert b"alice" not in db_of(cfg).read_bytes()
    assert b"Alice Local" not in db_of(cfg).read_bytes()
