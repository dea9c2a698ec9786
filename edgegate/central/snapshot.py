"""Full snapshots of the master credential set, cut into chunks a door stages and swaps in.

A person's credentials always travel in the same chunk as the person. A chunk closes at
``chunk_people`` people or about ``chunk_bytes`` of JSON, whichever comes first, so a site
with face encodings still gets chunks far below the broker's and the door's limits.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from edgegate.central.store import (
    CRED_COLS,
    PEOPLE_COLS,
    credential_dict,
    current_version,
    now_rfc3339,
    person_dict,
)
from edgegate.contract import messages as m


@dataclass(frozen=True, slots=True)
class Chunk:
    people: list[dict[str, Any]]
    credentials: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class MasterSet:
    """The whole credential set at one version, already cut into chunks."""

    version: int
    chunks: list[Chunk]

    @property
    def people(self) -> int:
        return sum(len(c.people) for c in self.chunks)


def read_master(
    conn: sqlite3.Connection, *, chunk_people: int = 2000, chunk_bytes: int = 1_000_000
) -> MasterSet:
    """Read version, people and credentials in one read transaction (a consistent set even
    while a CLI command commits a new version) and cut them into chunks."""
    conn.execute("BEGIN")
    try:
        version = current_version(conn)
        people = conn.execute(f"SELECT {PEOPLE_COLS} FROM people ORDER BY id").fetchall()
        creds = conn.execute(
            f"SELECT {CRED_COLS} FROM credentials ORDER BY person_id, kind, value"
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    by_person: dict[str, list[dict[str, Any]]] = {}
    for row in creds:
        by_person.setdefault(row[2], []).append(credential_dict(row))
    chunks: list[Chunk] = []
    cur_people: list[dict[str, Any]] = []
    cur_creds: list[dict[str, Any]] = []
    size = 0
    for row in people:
        person = person_dict(row)
        owned = by_person.get(row[0], [])
        # A cheap size estimate: ids and names dominate, biometric data is counted exactly.
        weight = 120 + len(row[1]) + len(row[5])
        weight += sum(150 + len(c.get("data") or "") for c in owned)
        if cur_people and (len(cur_people) >= chunk_people or size + weight > chunk_bytes):
            chunks.append(Chunk(cur_people, cur_creds))
            cur_people, cur_creds, size = [], [], 0
        cur_people.append(person)
        cur_creds.extend(owned)
        size += weight
    # An empty master is still a snapshot: one empty chunk tells the door "nobody".
    chunks.append(Chunk(cur_people, cur_creds))
    return MasterSet(version, chunks)


def snapshot_messages(
    master: MasterSet, site: str, door: str, *, replace_local: bool = False
) -> list[dict[str, Any]]:
    """The chunk messages (unsigned) of one snapshot for one door. ``replace_local``: the
    door may drop the people it enrolled on its own (central/local_people.py)."""
    snapshot_id = uuid.uuid4().hex
    issued = now_rfc3339()
    total = len(master.chunks)
    return [
        {
            "type": "snapshot",
            "v": m.PROTOCOL,
            "site": site,
            "door": door,
            "snapshot": snapshot_id,
            "version": master.version,
            "chunk": i,
            "chunks": total,
            "issued": issued,
            "people": chunk.people,
            "credentials": chunk.credentials,
            "replace_local": replace_local,
        }
        for i, chunk in enumerate(master.chunks)
    ]
