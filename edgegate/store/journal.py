"""The event journal: every decision and alarm, in order, until the central office has it.

``seq`` is the table's AUTOINCREMENT key, so it only ever grows, even after pruning; ``id`` is
a random UUID fixed at write time, so a re-sent event is recognisably the same event.
``epoch`` is the store's journal epoch when the event was written (edgegate/store/epoch.py):
(epoch, seq) names one event across replaced and restored stores, which seq alone does not.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgegate.contract.erasure import ERASED, event_mapping, replace_strings


def rfc3339(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2026-11-23T10:00:00.123Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_rfc3339(text: str) -> float:
    """The inverse of ``rfc3339`` (any RFC 3339 form with a zone or Z)."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return dt.timestamp()


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    id: str
    ts: str
    type: str
    payload: dict[str, Any]
    sent: bool = False
    epoch: str = ""

    def as_message(self) -> dict[str, Any]:
        """The object published on ``events``: id, seq, epoch (a store from before epochs:
        none), ts, site, door, type, then fields."""
        head: dict[str, Any] = {"id": self.id, "seq": self.seq}
        if self.epoch:
            head["epoch"] = self.epoch
        return {**head, "ts": self.ts, "type": self.type, **self.payload}


# The door's one journal writer (``DoorJournal.write_tx``): ``(conn, [(type, fields)], now)``,
# called inside the caller's open transaction, returning the events written. Code that
# changes state together with an event (a credential update, a snapshot swap) is handed it,
# so every row gets the same fields, flags and traffic counts whoever wrote it.
JournalTx = Callable[
    [sqlite3.Connection, Sequence[tuple[str, dict[str, Any]]], float], list["Event"]
]


def append(
    conn: sqlite3.Connection,
    type_: str,
    fields: dict[str, Any],
    *,
    site: str,
    door: str,
    now: float,
) -> Event:
    """Insert one event. Call inside the transaction that changes the state it reports."""
    payload = {"site": site, "door": door, **fields}
    event_id = uuid.uuid4().hex
    ts = rfc3339(now)
    seq, epoch = conn.execute(
        "INSERT INTO events(id, ts, type, payload, epoch) VALUES (?,?,?,?,"
        f"{_EPOCH}) RETURNING seq, epoch",
        (event_id, ts, type_, json.dumps(payload, separators=(",", ":"))),
    ).fetchone()
    return Event(seq, event_id, ts, type_, payload, epoch=epoch)


# The store's epoch, read by the insert itself: no writer can stamp another one.
_EPOCH = "COALESCE((SELECT value FROM meta WHERE key = 'epoch'), '')"


def _row(row: tuple[Any, ...]) -> Event:
    return Event(row[0], row[1], row[2], row[3], json.loads(row[4]), bool(row[5]), row[6])


_COLS = "seq, id, ts, type, payload, sent, epoch"


def unsent(conn: sqlite3.Connection, after_seq: int = 0, limit: int = 500) -> list[Event]:
    rows = conn.execute(
        f"SELECT {_COLS} FROM events WHERE sent = 0 AND seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def mark_sent(conn: sqlite3.Connection, seqs: list[int]) -> None:
    conn.executemany("UPDATE events SET sent = 1 WHERE seq = ?", ((s,) for s in seqs))


def unsent_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM events WHERE sent = 0").fetchone()[0]


def unarchived_count(conn: sqlite3.Connection) -> int:
    """Events no receipt of the office covers yet (sent or not)."""
    return conn.execute("SELECT COUNT(*) FROM events WHERE archived IS NULL").fetchone()[0]


def max_sent_unarchived(conn: sqlite3.Connection) -> int:
    """The highest seq acknowledged by the broker and not yet covered by a receipt (0: none)."""
    row = conn.execute("SELECT MAX(seq) FROM events WHERE archived IS NULL AND sent = 1").fetchone()
    return row[0] or 0


def mark_archived(
    conn: sqlite3.Connection, first: int, upto: int, now: float, epoch: str | None = None
) -> int:
    """A receipt: the office holds every event of ``epoch`` (None: the store's own) with
    ``first <= seq <= upto``. They count as sent too (a receipt may overtake the PUBACK of a
    re-send). Events of another epoch are other events, whatever their seq. Returns how many
    changed."""
    mine = _EPOCH if epoch is None else "?"
    return conn.execute(
        "UPDATE events SET archived = ?, sent = 1"
        f" WHERE archived IS NULL AND epoch = {mine} AND seq BETWEEN ? AND ?",
        (now, first, upto) if epoch is None else (now, epoch, first, upto),
    ).rowcount


def has_unarchived(conn: sqlite3.Connection, epoch: str) -> bool:
    """Whether any event of ``epoch`` waits for a receipt (reads only unarchived events)."""
    sql = "SELECT 1 FROM events WHERE archived IS NULL AND epoch = ? LIMIT 1"
    return conn.execute(sql, (epoch,)).fetchone() is not None


# What a receipt says the office lacks of one epoch: its ``first``, its holes, and the seq
# above which it holds nothing it named.
Lacking = tuple[int, list[tuple[int, int]], int]


def resend(
    conn: sqlite3.Connection,
    upto: int,
    lacking: Mapping[str, Lacking] | None = None,
    probe: int | None = None,
) -> int:
    """Mark events acknowledged by the broker but covered by no receipt, up to ``upto``,
    unsent again: the drain offers them once more (the office drops copies by ``id``).
    ``lacking`` (per epoch, from the office's last receipt of it) narrows that to what the
    office lacks. ``probe``: of the events the office said nothing about (above that seq, or
    of an epoch it named in no receipt; all without ``lacking``) only the lowest ``probe``:
    they may merely be on their way, and what it stores of them moves its receipts on. Below
    its ``first`` and in its holes, all go."""
    where = "archived IS NULL AND sent = 1 AND seq <= ?"
    args: list[Any] = [upto]
    n = 0
    unknown = ""
    if lacking:
        lacks: list[str] = []
        lack_args: list[Any] = []
        told: list[str] = []
        for epoch, (first, holes, above) in lacking.items():
            terms = ["seq < ?"] + ["seq BETWEEN ? AND ?"] * len(holes)
            lacks.append(f"(epoch = ? AND ({' OR '.join(terms)}))")
            lack_args += [epoch, first, *(x for hole in holes for x in hole)]
            told.append("(epoch = ? AND seq <= ?)")
            args += [epoch, above]
        n += conn.execute(
            f"UPDATE events SET sent = 0 WHERE {where} AND ({' OR '.join(lacks)})",
            [upto, *lack_args],
        ).rowcount
        unknown = f" AND NOT ({' OR '.join(told)})"
    if probe is None:
        return n + conn.execute(f"UPDATE events SET sent = 0 WHERE {where}{unknown}", args).rowcount
    pick = f"SELECT seq FROM events WHERE {where}{unknown} ORDER BY seq LIMIT ?"
    return (
        n
        + conn.execute(f"UPDATE events SET sent = 0 WHERE seq IN ({pick})", [*args, probe]).rowcount
    )


def forget_person(conn: sqlite3.Connection, person: str, values: set[str]) -> int:
    """Rewrite an erased person out of the journal (docs/central.md, "Erasing a person"):
    in every row naming their id or one of their credential ``values``, those strings become
    ``erased`` (``edgegate.contract.erasure``: their values only in events naming them or
    nobody). Sent or not: an unsent row reaches the office already rewritten. The rows keep
    their seq, id, time, type and every other field: the journal is not hash-chained (its
    guarantees are order, ``id`` and the sent/archived flags, none of which change), so an
    in-place rewrite loses nothing the office relies on. Call inside the transaction that
    removes the person. Returns how many rows changed."""
    return forget_people(conn, {person: values})


# Up to this many needles the rows are found by SQLite (one instr per needle and row: the
# cheapest for one person's id and cards); beyond, one pass in Python with one pattern of
# every needle costs far less than a scan per person (a snapshot naming many erased people:
# docs/benchmarks.md).
_SQL_NEEDLES = 4


def forget_people(conn: sqlite3.Connection, people: Mapping[str, set[str]]) -> int:
    """``forget_person`` for several people (person id -> their values) in one pass over
    the journal: the same rows come out as forgetting them one after the other would leave
    them. Returns how many rows changed."""
    needles = sorted({json.dumps(n) for p, vals in people.items() for n in (p, *vals)})
    if not needles:
        return 0
    if len(needles) <= _SQL_NEEDLES:
        where = " OR ".join(["instr(payload, ?) > 0"] * len(needles))
        rows = conn.execute(f"SELECT seq, payload FROM events WHERE {where}", needles).fetchall()
    else:
        pattern = re.compile("|".join(re.escape(n) for n in needles))
        rows = [r for r in conn.execute("SELECT seq, payload FROM events") if pattern.search(r[1])]
    mappings: dict[str | None, dict[str, str]] = {}

    def mapping_for(who: str | None) -> dict[str, str]:
        # The contract's rule per person, merged; the same for every row naming ``who``.
        if who not in mappings:
            merged: dict[str, str] = {}
            for person, vals in people.items():
                merged |= event_mapping(person, ERASED, vals, who)
            # Ids last: an id that is also someone's value is that person.
            mappings[who] = merged | dict.fromkeys(people, ERASED)
        return mappings[who]

    changed = []
    for seq, text in rows:
        payload = json.loads(text)
        who = payload.get("person")
        new = replace_strings(payload, mapping_for(who if isinstance(who, str) else None))
        if new != payload:
            changed.append((json.dumps(new, separators=(",", ":")), seq))
    conn.executemany("UPDATE events SET payload = ? WHERE seq = ?", changed)
    return len(changed)


def recent(
    conn: sqlite3.Connection,
    limit: int = 50,
    type_: str | None = None,
    since_seq: int = 0,
) -> list[Event]:
    """The newest ``limit`` events (oldest first), optionally of one type."""
    sql = f"SELECT {_COLS} FROM events WHERE seq > ?"
    args: list[Any] = [since_seq]
    if type_:
        sql += " AND type = ?"
        args.append(type_)
    sql += " ORDER BY seq DESC LIMIT ?"
    args.append(limit)
    return [_row(r) for r in reversed(conn.execute(sql, args).fetchall())]


def prune(
    conn: sqlite3.Connection,
    *,
    keep_sent: int,
    older_than_ts: str | None = None,
    limit: int | None = None,
    archived_only: bool = False,
) -> int:
    """Delete sent events beyond the newest ``keep_sent`` (and older than a timestamp, if
    given), at most ``limit`` of them, oldest first (the MQTT sync prunes in small batches so
    decisions never wait long behind it). Unsent events are never deleted: they are the ones
    the office has not seen; with ``archived_only`` (receipts on) only events a receipt of the
    office covered are."""
    done = "archived IS NOT NULL" if archived_only else "sent = 1"
    where = f"{done} AND seq <= (SELECT COALESCE(MAX(seq), 0) FROM events) - ?"
    args: list[Any] = [keep_sent]
    if older_than_ts is not None:
        where += " AND ts < ?"
        args.append(older_than_ts)
    if limit is None:
        return conn.execute(f"DELETE FROM events WHERE {where}", args).rowcount
    batch = f"SELECT seq FROM events WHERE {where} ORDER BY seq LIMIT ?"
    return conn.execute(f"DELETE FROM events WHERE seq IN ({batch})", [*args, limit]).rowcount


def unsent_wire(
    conn: sqlite3.Connection, after_seq: int = 0, limit: int = 1000, ahead: int | None = None
) -> list[tuple[int, bytes]]:
    """(seq, message bytes) of unsent events after ``after_seq``, oldest first: what the MQTT
    drain publishes, built without parsing the stored payload (the same object as
    ``Event.as_message``: id, seq, ts, type, then the payload's fields). ``ahead``: only
    events less than that above the lowest one no receipt covers (that one always qualifies
    when unsent; when sent, a receipt or a re-send of it moves the window on)."""
    sql = "SELECT seq, id, ts, type, payload, epoch FROM events WHERE sent = 0 AND seq > ?"
    args: list[Any] = [after_seq]
    if ahead is not None:
        sql += " AND seq < (SELECT MIN(seq) FROM events WHERE archived IS NULL) + ?"
        args.append(ahead)
    rows = conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
    out = []
    for seq, id_, ts, type_, payload, epoch in rows:
        fields = {"id": id_, "seq": seq, "epoch": epoch, "ts": ts, "type": type_}
        if not epoch:
            del fields["epoch"]  # a store from before epochs: as it always published
        head = json.dumps(fields, separators=(",", ":"))
        body = payload[1:]
        out.append((seq, (head[:-1] + ("," + body if body != "}" else "}")).encode()))
    return out


def known_time(conn: sqlite3.Connection, store: Path) -> float:
    """A lower bound of the real time from what is on disk: the newest journaled event's
    time and the store files' modification times (0.0 for a new store)."""
    row = conn.execute("SELECT ts FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    best = 0.0
    if row is not None:
        with contextlib.suppress(ValueError):
            best = parse_rfc3339(row[0])
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            best = max(best, Path(f"{store}{suffix}").stat().st_mtime)
    return best
