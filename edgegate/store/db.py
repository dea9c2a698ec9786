"""Opening the SQLite store: WAL, migrations by ``user_version``, an integrity check.

Modelled on zigpy's appdb. WAL lets `edgegate events` read while the daemon writes, and with
``synchronous=NORMAL`` a commit is an append to the WAL without an fsync; the fsync happens at
checkpoints. A power cut can lose the last few commits in that mode, never corrupt the file;
the daemon therefore uses ``synchronous=FULL`` for the journal (see ``open_db``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from edgegate.errors import EdgegateError

log = structlog.get_logger(__name__)


class StoreError(EdgegateError, OSError):
    """The store cannot be opened or is damaged."""


def people_credentials_ddl(data_type: str) -> str:
    """The people and credentials tables, shared by the door's store (``data BLOB``: sealed
    biometrics) and the central office's master (``data TEXT``: base64 as sent to doors), so
    the two can never drift apart column by column."""
    return PEOPLE_CREDENTIALS.replace("data BLOB", f"data {data_type}")


PEOPLE_CREDENTIALS = """
CREATE TABLE people (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    enabled INTEGER NOT NULL DEFAULT 1,
    valid_from REAL,
    valid_until REAL,
    attrs TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL
);
CREATE TABLE credentials (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    person_id TEXT NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL DEFAULT 1,
    valid_from REAL,
    valid_until REAL,
    label TEXT NOT NULL DEFAULT '',
    data BLOB,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX credentials_person ON credentials(person_id);
"""

_V1 = (
    PEOPLE_CREDENTIALS
    + """CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_unsent ON events(seq) WHERE sent = 0;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
)

# Door rules (docs/rules.md): a person's in/out state per anti-passback area, written in the
# same transaction as the decision that changed it; traffic counted per door per hour.
_V2_RULES = """
CREATE TABLE presence (
    person_id TEXT NOT NULL,
    area TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in', 'out')),
    ts REAL NOT NULL,
    PRIMARY KEY (person_id, area)
) WITHOUT ROWID;
CREATE TABLE traffic (
    door TEXT NOT NULL,
    hour INTEGER NOT NULL,
    granted INTEGER NOT NULL DEFAULT 0,
    denied INTEGER NOT NULL DEFAULT 0,
    passages INTEGER NOT NULL DEFAULT 0,
    exits INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (door, hour)
) WITHOUT ROWID;
"""

# Fingerprints (docs/fingerprint.md): a finger credential's value is site-wide; each door maps
# it to the slot its own sensor stores the template in. No foreign key to credentials: a
# snapshot that replaces the credential set must not drop the mapping of slots still on the
# sensor (library sync reconciles both). ``digest`` is a keyed hash of the template written,
# so a new template under the same value is rewritten. Existing slot-valued credentials keep
# their value and are mapped to that slot.
_V3_FINGER_SLOTS = """
CREATE TABLE finger_slots (
    value TEXT PRIMARY KEY,
    slot INTEGER NOT NULL UNIQUE,
    digest TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);
INSERT OR IGNORE INTO finger_slots(value, slot, updated_at)
    SELECT value, CAST(value AS INTEGER), updated_at FROM credentials
    WHERE kind = 'finger' AND value NOT GLOB '*[^0-9]*' AND length(value) BETWEEN 1 AND 5;
"""

# MQTT sync (docs/mqtt.md): the chunks of the credential snapshot being staged (the staging
# tables themselves are made from the live tables' own DDL at the first chunk, see
# edgegate/store/credential_sync.py), and the credential version in meta (no DDL needed).
_V4_SYNC = """
CREATE TABLE snapshot_chunks (
    snapshot TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (snapshot, chunk)
) WITHOUT ROWID;
"""

# Replay protection (docs/mqtt.md): accepted command ids, each kept until its command expires,
# whatever the journal's pruning (see edgegate/store/seen_commands.py).
_V5_SEEN_COMMANDS = """
CREATE TABLE seen_commands (
    id TEXT PRIMARY KEY,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX seen_commands_expires ON seen_commands(expires);
"""

# Visitor QR passes (docs/visitors.md): single-entry passes this door already let in, kept
# until the pass's own end (edgegate/store/pass_uses.py).
_V6_PASS_USES = """
CREATE TABLE pass_uses (
    pass_id TEXT PRIMARY KEY,
    used REAL NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX pass_uses_expires ON pass_uses(expires);
"""

# End-to-end receipts (docs/mqtt.md, receipts): ``archived`` is when a receipt of the office
# covered the event (door clock, UNIX seconds; NULL: not yet). Events sent before this version
# were settled under the old promise (the broker's PUBACK) and count as archived.
_V7_RECEIPTS = """
ALTER TABLE events ADD COLUMN archived REAL;
UPDATE events SET archived = 0 WHERE sent = 1;
CREATE INDEX events_unarchived ON events(seq) WHERE archived IS NULL;
"""

# Append only: entry N-1 takes the store from user_version N-1 to N. Each runs in one
# transaction together with the user_version bump, so a crash mid-migration changes nothing.
# Presence shared by an area's doors (edgegate/core/areas.py): which door's event set it, so
# every door of the area orders passages the same way.
_V8_AREA_PEERS = """
ALTER TABLE presence ADD COLUMN door TEXT NOT NULL DEFAULT '';
ALTER TABLE presence ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
"""

# Journal epochs (docs/mqtt.md, receipts): the epoch each event was journaled in. A store
# that has journaled before keeps epoch '' (what the office files an older door's events
# under, so its receipts go on covering them); a new store takes a random one
# (edgegate/store/epoch.py).
_V9_EPOCH = """
ALTER TABLE events ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
INSERT OR IGNORE INTO meta(key, value)
    SELECT 'epoch', '' WHERE EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events');
"""

# Erasures a snapshot carries (docs/mqtt.md, snapshot ``erased``): each staged chunk's list
# (JSON), applied to the journal in the swap's transaction.
_V10_SNAPSHOT_ERASED = """
ALTER TABLE snapshot_chunks ADD COLUMN erased TEXT NOT NULL DEFAULT '[]';
"""

MIGRATIONS: list[str] = [
    _V1,
    _V2_RULES,
    _V3_FINGER_SLOTS,
    _V4_SYNC,
    _V5_SEEN_COMMANDS,
    _V6_PASS_USES,
    _V7_RECEIPTS,
    _V8_AREA_PEERS,
    _V9_EPOCH,
    _V10_SNAPSHOT_ERASED,
]
SCHEMA_VERSION = len(MIGRATIONS)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (the connection is in autocommit)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def truncate_wal(conn: sqlite3.Connection) -> None:
    """Copy the WAL back into the file and truncate it: after an erasure, the pages as they
    were before (``secure_delete`` zeroed the new ones) must not linger in old WAL frames.
    Best effort: a reader holding an old snapshot keeps its frames until the next one."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def migrate(conn: sqlite3.Connection, migrations: list[str] | None = None) -> None:
    """Bring the store to the last of ``migrations`` (default: the door's ``MIGRATIONS``;
    the central office's master store passes its own list)."""
    migrations = MIGRATIONS if migrations is None else migrations
    latest = len(migrations)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > latest:
        raise StoreError(f"store schema {version} is newer than this edgegate ({latest}); upgrade")
    for target in range(version + 1, latest + 1):
        conn.executescript(
            f"BEGIN IMMEDIATE; {migrations[target - 1]}; PRAGMA user_version = {target}; COMMIT;"
        )
        log.info("store_migrated", version=target)


def data_migrations(conn: sqlite3.Connection) -> None:
    """The door store's migrations that need Python, each run once (recorded in meta) in one
    transaction with its record."""
    from edgegate.store.credentials import canonical_card_forms

    for key, step in (("migrated_wiegand_card_forms", canonical_card_forms),):
        if conn.execute("SELECT 1 FROM meta WHERE key = ?", (key,)).fetchone():
            continue
        with transaction(conn):
            n = step(conn)
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, str(n)))
        if n:
            log.info("store_data_migrated", step=key, rows=n)


def open_db(
    path: Path | str,
    *,
    check: bool = True,
    readonly: bool = False,
    synchronous: str = "FULL",
    migrations: list[str] | None = None,
    identity: bool = False,
) -> sqlite3.Connection:
    """Open (and create or migrate) the store. ``check`` runs ``PRAGMA quick_check``.
    ``identity`` (the door's store): refuse a store that vanished or shrank to nothing, and
    keep its identity marker beside it (edgegate/store/identity.py)."""
    path = Path(path)
    marker: str | None = None
    if identity and not readonly:
        from edgegate.store import identity as store_identity

        marker = store_identity.check_before_open(path)
    if readonly:
        if not path.exists():
            raise StoreError(f"{path}: no store here (has the daemon or enrol run yet?)")
        uri = f"file:{path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    try:
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{path}: cannot switch to WAL (got {mode})")
            # FULL: a journaled decision survives a power cut once the door has acted on it
            # (about 0.5 ms per commit on an SSD; see docs/benchmarks.md for SD cards).
            if synchronous.upper() not in {"FULL", "NORMAL"}:
                raise StoreError(f"synchronous must be FULL or NORMAL, not {synchronous}")
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            conn.execute("PRAGMA foreign_keys = ON")
            # A removed person's row (name, sealed templates) is zeroed where it lay instead
            # of staying readable in the file's free space (erasure, docs/central.md).
            # Debian's SQLite is built with this on; other builds are not.
            conn.execute("PRAGMA secure_delete = ON")
        if check:
            result = conn.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise StoreError(f"{path}: integrity check failed: {result}")
        if not readonly:
            migrate(conn, migrations)
            # Whether the store was copied from elsewhere, asked before ``mark`` records it
            # as here, and acted on (a new journal epoch) before too: a crash in between
            # must not leave a copy marked as at home under its old epoch.
            # Both read once (store id and marker), here, and handed to both steps.
            seen = store_identity.read(conn, marker) if identity else None
            if migrations is None:
                from edgegate.store import epoch

                data_migrations(conn)
                epoch.ensure(conn, moved=seen.came_from_elsewhere() if seen else None)
            if seen is not None:
                store_identity.mark(conn, path, seen)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: {exc}") from exc
    except StoreError:
        conn.close()
        raise
    return conn
