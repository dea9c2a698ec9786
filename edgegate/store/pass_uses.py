"""Single-entry visitor passes this door already let in (docs/visitors.md).

Written in the same transaction as the grant's journal row, so a pass is used exactly when
its grant is on disk, and a restart keeps it used. A row is kept until the pass's own end
(after that the pass is refused as expired anyway), so the table stays as small as the
number of passes live at once.
"""

from __future__ import annotations

import sqlite3


def is_used(conn: sqlite3.Connection, pass_id: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pass_uses WHERE pass_id = ?", (pass_id,)).fetchone() is not None
    )


def mark_used(conn: sqlite3.Connection, pass_id: str, expires: float, now: float) -> None:
    """Call inside the grant's transaction."""
    conn.execute("DELETE FROM pass_uses WHERE expires <= ?", (now,))
    conn.execute(
        "INSERT OR IGNORE INTO pass_uses(pass_id, used, expires) VALUES (?, ?, ?)",
        (pass_id, now, expires),
    )
