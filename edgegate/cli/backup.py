"""``edgegate backup --config PATH --to FILE``: a consistent copy of the store, daemon running.

SQLite's online backup API copies the database page by page under a read transaction, so the
copy is consistent even while the daemon journals decisions (WAL lets both run). The copy is
checked (``PRAGMA integrity_check``) before the command reports success. The store key that
seals biometric data is NOT in the copy: back it up separately (docs/operations.md).
The copy is marked as one: the store restored from it takes a new journal epoch
(edgegate/store/epoch.py), as its seqs may since have gone to other events.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
from pathlib import Path

from edgegate.cli.common import CliError, add_config_arg, load_config, open_store
from edgegate.store import epoch, sealed


def register(sub: argparse._SubParsersAction) -> None:
    backup = sub.add_parser("backup", help="consistent copy of the store (daemon may run)")
    add_config_arg(backup)
    backup.add_argument("--to", type=Path, required=True, help="file to write (not overwritten)")
    backup.set_defaults(func=cmd_backup)


def cmd_backup(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    target: Path = args.to
    if target.exists():
        raise CliError(f"{target} exists; give a new file name")
    source = open_store(config, readonly=True)
    partial = target.with_name(target.name + ".partial")
    try:
        # Created 0600: the copy holds people, cards and (sealed) biometrics.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        dest = sqlite3.connect(partial)
        try:
            source.backup(dest, pages=1024)
            epoch.mark_backup(dest)
            dest.commit()
            result = dest.execute("PRAGMA integrity_check").fetchone()[0]
            counts = [
                dest.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("people", "credentials", "events")
            ]
        finally:
            dest.close()
        if result != "ok":
            raise CliError(f"the copy failed its integrity check: {result}")
        partial.rename(target)
    except (sqlite3.Error, OSError) as exc:
        raise CliError(f"backup failed: {exc}") from None
    finally:
        source.close()
        partial.unlink(missing_ok=True)
    key = sealed.key_path(config.storage.path, config.storage.key_file)
    print(
        f"backed up {config.storage.path} to {target}: {counts[0]} people, {counts[1]} "
        f"credentials, {counts[2]} events. Keep the store key ({key}) safe separately: "
        "without it enrolled fingers and faces cannot be opened."
    )
    return 0
