"""``edgegate enroll card --csv FILE``: many cards at once, all or nothing, with a progress bar.

The file has a header row naming its columns: ``person`` (required), ``name`` (optional) and
either ``card`` (UID in hex, as the reader reports it) or ``card_number`` (the decimal number
printed on an EM4100 card). Every row is checked before anything is written: a bad UID, a card
listed twice, or a card that already belongs to someone else is reported with its line number
and nothing is imported. Existing people keep their names.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import sys
from pathlib import Path

from edgegate.cli.common import EXIT_USAGE, CliError
from edgegate.cli.progress import progress
from edgegate.store import credentials as creds

MAX_SHOWN = 20


def read_rows(path: Path, conn: sqlite3.Connection) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(person, name, uid) rows and one problem line per bad row."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often write a BOM
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from None
    # newline="": the csv module does its own line splitting (quoted fields may hold newlines;
    # str.splitlines would also split on \x85 and \u2028 inside a cell).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = set(reader.fieldnames or ())
    if "person" not in columns or not columns & {"card", "card_number"}:
        raise CliError(
            f"{path}: the header must name 'person' and 'card' or 'card_number' columns",
            EXIT_USAGE,
        )
    rows: list[tuple[str, str, str]] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    total = max(0, text.count("\n") - 1)
    for record in progress(reader, total=total, desc="checking", unit="card"):
        line = reader.line_num
        person = (record.get("person") or "").strip()
        card, number = (record.get("card") or "").strip(), (record.get("card_number") or "").strip()
        if not person:
            problems.append(f"{path}:{line}: no person id")
            continue
        try:
            uid = creds.normalise_card(card) if card else creds.card_number_to_uid(number)
        except creds.CredentialError as exc:
            problems.append(f"{path}:{line}: {exc}")
            continue
        if uid in seen and seen[uid] != person:
            problems.append(f"{path}:{line}: card {uid} is also listed for {seen[uid]}")
            continue
        owner = conn.execute(
            "SELECT person_id FROM credentials WHERE kind = 'card' AND value = ?", (uid,)
        ).fetchone()
        if owner and owner[0] != person:
            problems.append(f"{path}:{line}: card {uid} already belongs to {owner[0]}")
            continue
        seen[uid] = person
        rows.append((person, (record.get("name") or "").strip(), uid))
    return rows, problems


def enroll_csv(path: Path, conn: sqlite3.Connection) -> int:
    rows, problems = read_rows(path, conn)
    if problems:
        for line in problems[:MAX_SHOWN]:
            print(line, file=sys.stderr)
        if len(problems) > MAX_SHOWN:
            print(f"... and {len(problems) - MAX_SHOWN} more", file=sys.stderr)
        raise CliError(f"{path}: {len(problems)} bad row(s); nothing imported", EXIT_USAGE)
    with progress(total=len(rows), desc="enrolling", unit="card") as bar:
        creds.bulk_add_cards(conn, rows, on_chunk=bar.update, chunk_size=1000)
    people = len({person for person, _, _ in rows})
    print(f"enrolled {len(rows)} card(s) for {people} people from {path}")
    return 0
