"""The ledger of erasures: what lets an erasure be repeated after an older backup is restored
(docs/central.md, "Backups and erasures").

A backup taken before an erasure still holds the person. The ledger is a file kept OUTSIDE
the office store (a restore must not roll it back), one JSON line per erasure:

    {"v": 1, "at": 1796000000.0, "pseudonym": "erased-0a1b2c3d4e5f", "digest": "<hex>"}

``digest`` is HMAC-SHA256 of the person id under the office's store key (domain-separated):
the ledger alone names nobody, and without the key nobody can test guesses against it. With
the key, the office finds the person again in a restored store by computing the digest of
each id it holds, and erases them under the same pseudonym (``central people erase
--reapply``), so their events are one pseudonym's before and after the restore.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from edgegate.central.engine import sqlite_path

log = structlog.get_logger(__name__)

FILE_NAME = "erasures.jsonl"
DEFAULT_DIR = Path("/var/lib/edgegate")
_DOMAIN = b"edgegate-erasure-ledger-v1\n"


@dataclass(frozen=True, slots=True)
class Entry:
    at: float
    pseudonym: str
    digest: str


def path_for(db: str, configured: Path | None) -> Path:
    """The ledger's file: as configured, else beside an SQLite store, else in
    ``/var/lib/edgegate`` (a PostgreSQL store has no directory of its own)."""
    if configured is not None:
        return configured
    store = sqlite_path(db)
    return (store.parent if store is not None else DEFAULT_DIR) / FILE_NAME


def digest(key: bytes, person: str) -> str:
    return hmac.new(key, _DOMAIN + person.encode(), hashlib.sha256).hexdigest()


def record(path: Path, entry: Entry) -> None:
    """Append one line and fsync it (an erasure the ledger lost could not be repeated).
    Created 0600: the digests are not names, but nobody else needs them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {"v": 1, "at": entry.at, "pseudonym": entry.pseudonym, "digest": entry.digest},
        separators=(",", ":"),
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> list[Entry]:
    """Every well-formed entry, oldest first; a bad line (a torn last write) is logged and
    skipped, never fatal: the other erasures must still be repeatable."""
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            out.append(Entry(float(raw["at"]), str(raw["pseudonym"]), str(raw["digest"])))
        except (ValueError, KeyError, TypeError):
            log.error("erasure_ledger_bad_line", path=str(path), line=n)
    return out


def match(key: bytes, entries: Iterable[Entry], ids: Iterable[str]) -> list[tuple[str, Entry]]:
    """(person id, entry) for every id whose digest an entry holds."""
    wanted = {e.digest: e for e in entries}
    return [(i, wanted[d]) for i in ids if (d := digest(key, i)) in wanted]
