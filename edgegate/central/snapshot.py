"""Full snapshots of the master credential set, cut into chunks a door stages and swaps in.

A person's credentials always travel in the same chunk as the person. A chunk closes at
``chunk_people`` people or about ``chunk_bytes`` of JSON, whichever comes first, so a site
with face encodings still gets chunks far below the broker's and the door's limits.

A snapshot also names the people erased since the version the door asked with
(``erased_since``): a door that missed the erasure's delta (offline, too far behind, a new
store) rewrites them out of its journal when it swaps the set in, as the delta would have.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from edgegate.central.schema.master import credentials, people, versions
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

    def size(self) -> int:
        """Approximate bytes of the snapshot's JSON (for the catch-up choice)."""
        return sum(
            sum(120 + len(p.get("name", "")) for p in c.people)
            + sum(150 + len(cr.get("data") or "") for cr in c.credentials)
            for c in self.chunks
        )


def read_master(
    engine: Engine, *, chunk_people: int = 2000, chunk_bytes: int = 1_000_000
) -> MasterSet:
    """Read version, people and credentials in one read transaction (a consistent set even
    while a CLI command commits a new version) and cut them into chunks."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # One snapshot of the data for all three reads (READ COMMITTED would not).
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            version = current_version(conn)
            people_rows = conn.execute(select(*PEOPLE_COLS).order_by(people.c.id)).all()
            creds = [
                credential_dict(conn, tuple(row))
                for row in conn.execute(
                    select(*CRED_COLS).order_by(
                        credentials.c.person_id, credentials.c.kind, credentials.c.value
                    )
                )
            ]
    by_person: dict[str, list[dict[str, Any]]] = {}
    for cred in creds:
        by_person.setdefault(cred["person"], []).append(cred)
    chunks: list[Chunk] = []
    cur_people: list[dict[str, Any]] = []
    cur_creds: list[dict[str, Any]] = []
    size = 0
    for row in people_rows:
        person = person_dict(tuple(row))
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


# How an erasure's removal op stands in the version log's JSON (``commit_ops`` writes the
# ops compact, defaults left out: ``erase`` appears only when true). A prefilter only: the
# ops of a matching version are parsed.
_ERASE_NEEDLE = '"erase":true'


def erased_since(conn: Connection, have: int, upto: int) -> list[str]:
    """The people erased in versions ``have < v <= upto`` (their ``remove_person`` with
    ``erase``, which the erasure keeps in the version log for the doors that have not applied
    it yet), sorted. A door asking with 0 (a new door, a new store) gets every erasure of the
    log: the office does not know how long that door's journal keeps rows, and the list is
    one id per erasure."""
    rows = conn.execute(
        select(versions.c.ops).where(
            versions.c.version > have,
            versions.c.version <= upto,
            versions.c.ops.contains(_ERASE_NEEDLE, autoescape=True),
        )
    ).scalars()
    erased: set[str] = set()
    for text in rows:
        for op in json.loads(text):
            if op.get("op") == "remove_person" and op.get("erase") is True:
                erased.add(op["id"])
    return sorted(erased)


def snapshot_messages(
    master: MasterSet,
    site: str,
    door: str,
    *,
    replace_local: bool = False,
    erased: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The chunk messages (unsigned) of one snapshot for one door. ``replace_local``: the
    door may drop the people it enrolled on its own (central/local_people.py). ``erased``:
    the people erased since the door's version (``erased_since``), ``ERASED_PER_CHUNK`` per
    chunk (empty chunks are added when the set has fewer chunks than that needs); the key
    is left out of chunks without any (doors older than it refuse only those)."""
    snapshot_id = uuid.uuid4().hex
    issued = now_rfc3339()
    erased, per = erased or [], m.ERASED_PER_CHUNK
    parts = [erased[i : i + per] for i in range(0, len(erased), per)]
    bodies = master.chunks + [Chunk([], [])] * (len(parts) - len(master.chunks))
    messages: list[dict[str, Any]] = []
    for i, chunk in enumerate(bodies):
        msg: dict[str, Any] = {
            "type": "snapshot",
            "v": m.PROTOCOL,
            "site": site,
            "door": door,
            "snapshot": snapshot_id,
            "version": master.version,
            "chunk": i,
            "chunks": len(bodies),
            "issued": issued,
            "people": chunk.people,
            "credentials": chunk.credentials,
            "replace_local": replace_local,
        }
        if i < len(parts):
            msg["erased"] = parts[i]
        messages.append(msg)
    return messages
