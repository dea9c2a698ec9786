"""Command ids the door has accepted, each kept until its command's ``expires``.

Replay protection must not depend on the journal: sent events are pruned (down to none with
``keep_sent_events = 0``), and a command whose ``command_ack`` was pruned would otherwise be
accepted again after a restart. This small table is written before the command is carried
out (a crash in between loses the command, never repeats it) and pruned only by expiry.
"""

from __future__ import annotations

import sqlite3

from edgegate.store.db import transaction


def remember(conn: sqlite3.Connection, cmd_id: str, expires: float, now: float) -> bool:
    """Record ``cmd_id`` until ``expires`` (UNIX seconds) and drop ids expired by ``now``.
    False when the id was already there (a replay that raced the in-memory check)."""
    with transaction(conn):
        conn.execute("DELETE FROM seen_commands WHERE expires <= ?", (now,))
        cur = conn.execute(
            "INSERT OR IGNORE INTO seen_commands(id, expires) VALUES (?, ?)", (cmd_id, expires)
        )
        return cur.rowcount == 1


def live(conn: sqlite3.Connection, now: float) -> dict[str, float]:
    """Ids whose command has not expired by ``now``, with their expiry."""
    rows = conn.execute("SELECT id, expires FROM seen_commands WHERE expires > ?", (now,))
    return {cid: exp for cid, exp in rows}
