"""``edgegate enroll card --csv``: all-or-nothing bulk enrolment with a progress bar on a tty."""

from __future__ import annotations

import os
import select
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgegate.cli.bulk_cards import read_rows
from edgegate.cli.common import CliError
from edgegate.store import credentials as creds
from edgegate.store.db import open_db
from tests.conftest import EDGEGATE, REPO, enrol, write_config_file


def count_cards(db: Path) -> int:
    conn = open_db(db, synchronous="NORMAL")
    try:
        return creds.count_credentials(conn)
    finally:
        conn.close()


def enroll_csv(cfg: Path, csv_path: Path, env: dict[str, str], **kw: object) -> object:
    return subprocess.run(
        [*EDGEGATE, "enroll", "card", "--config", str(cfg), "--csv", str(csv_path)],
        cwd=REPO,
        env=env,
        timeout=120,
        **kw,  # type: ignore[arg-type]
    )


def test_bulk_csv_enrols_everyone_silently_off_a_terminal(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    cfg = write_config_file(tmp_path, "/dev/null")
    rows = ["person,name,card,card_number"]
    rows += [f"p{i},Person {i},{i:010X}," for i in range(3000)]
    rows += ["visitor,Visitor,,0012345678"]
    path = tmp_path / "cards.csv"
    path.write_text("\n".join(rows) + "\n")
    proc = enroll_csv(cfg, path, subprocess_env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "enrolled 3001 card(s) for 3001 people" in proc.stdout
    assert "enrolling" not in proc.stderr and "%" not in proc.stderr  # no bar in a pipe
    db = tmp_path / "door.db"
    assert count_cards(db) == 3001
    conn = open_db(db, synchronous="NORMAL")
    # Enrolled by printed number, matched by the 10-digit read of the same card.
    record = creds.lookup(conn, "card", "00" + f"{12345678:08X}")
    assert record is not None and record.person_id == "visitor"
    assert creds.lookup(conn, "card", f"{2999:010X}").person_name == "Person 2999"
    conn.close()


def test_bad_rows_import_nothing(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    cfg = write_config_file(tmp_path, "/dev/null")
    enrol(tmp_path / "door.db", "alice", "AABBCCDDEE")
    path = tmp_path / "cards.csv"
    path.write_text(
        "person,card\n"
        "bob,0102030405\n"
        "carol,XYZ\n"  # line 3: not hex
        ",0102030406\n"  # line 4: no person
        "dave,AABBCCDDEE\n"  # line 5: alice's card
        "erin,0102030405\n"  # line 6: bob's card in this file
    )
    proc = enroll_csv(cfg, path, subprocess_env, capture_output=True, text=True)
    assert proc.returncode == 2
    err = proc.stderr
    assert f"{path}:3:" in err and f"{path}:4: no person id" in err
    assert f"{path}:5: card AABBCCDDEE already belongs to alice" in err
    assert f"{path}:6: card 0102030405 is also listed for bob" in err
    assert "4 bad row(s); nothing imported" in err
    assert count_cards(tmp_path / "door.db") == 1


def test_progress_bar_on_a_terminal(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    cfg = write_config_file(tmp_path, "/dev/null")
    path = tmp_path / "cards.csv"
    path.write_text("person,card\n" + "".join(f"p{i},{i:010X}\n" for i in range(2000)))
    master, slave = os.openpty()
    try:
        proc = enroll_csv(cfg, path, subprocess_env, stdout=subprocess.PIPE, stderr=slave)
        out = b""
        while select.select([master], [], [], 0.2)[0]:
            out += os.read(master, 65536)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0  # type: ignore[attr-defined]
    text = out.decode(errors="replace")
    assert "enrolling" in text and "100%" in text and "2.00k/2.00k" in text


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.text(max_size=8), st.text(max_size=12), st.text(max_size=12)), max_size=20
    )
)
def test_reader_never_crashes_and_accounts_for_every_row(
    tmp_path: Path, cells: list[tuple[str, str, str]]
) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE credentials (kind TEXT, value TEXT, person_id TEXT)")
    path = tmp_path / "fuzz.csv"
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["person", "card", "card_number"])
    writer.writerows(cells)
    path.write_text(buf.getvalue(), encoding="utf-8")
    try:
        rows, problems = read_rows(path, conn)
    except CliError:
        return  # only for a header the csv module cannot read back as written
    for _person, _name, uid in rows:
        assert uid == creds.normalise_card(uid)
    assert len(rows) + len(problems) <= len(cells)


@pytest.mark.parametrize("header", ["name,card\n", "person,name\n", ""])
def test_header_must_name_the_columns(tmp_path: Path, header: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(header + "a,b\n")
    with pytest.raises(CliError, match="header"):
        read_rows(path, sqlite3.connect(":memory:"))
