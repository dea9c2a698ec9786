"""One path writes the door's journal: ``DoorJournal.write_tx`` (edgegate/daemon/door_journal.py).

Code that journals with the state it changes (a credential update, a snapshot swap) is handed
that writer; none calls ``edgegate.store.journal.append`` itself, or what is counted in traffic
and flagged on the row would again depend on who wrote it. Read from the source's syntax tree.
"""

from __future__ import annotations

import ast
from pathlib import Path

import edgegate

PACKAGE = Path(edgegate.__file__).parent
WRITER = PACKAGE / "daemon" / "door_journal.py"


def writers_of_the_journal(path: Path) -> list[int]:
    """Lines of ``path`` calling ``journal.append`` or importing ``append`` from the journal."""
    tree = ast.parse(path.read_text(), str(path))
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "append"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "journal"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "edgegate.store.journal"
            and any(a.name == "append" for a in node.names)
        ):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_door_journal_writes_the_journal():
    found = {
        str(p.relative_to(PACKAGE)): lines
        for p in sorted(PACKAGE.rglob("*.py"))
        if p != WRITER and p.name != "journal.py" and (lines := writers_of_the_journal(p))
    }
    assert found == {}


def test_the_check_sees_a_writer(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from edgegate.store import journal\n"
        "def f(conn):\n"
        "    journal.append(conn, 'x', {}, site='s', door='d', now=0)\n"
        "from edgegate.store.journal import append\n"
    )
    assert writers_of_the_journal(bad) == [3, 4]
    assert writers_of_the_journal(WRITER)  # the one writer is seen as one
