"""Space kept back for the journal: a file of ``[storage] reserve_mb`` beside the store.

On a full disk SQLite cannot even open a WAL store (the -wal and -shm files need room), and
the door would stay down. At start the reserve is (re)made when there is room; when the store
cannot be opened or written because the disk is full, the reserve is deleted, which gives
the journal room for hours of events while someone frees the disk (docs/operations.md).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

# Below this much free space an I/O error while writing is taken for a full disk.
NEARLY_FULL = 256 * 1024


def reserve_path(store: Path) -> Path:
    return store.with_name(store.name + ".reserve")


def free_bytes(store: Path) -> int | None:
    try:
        return shutil.disk_usage(store.parent).free
    except OSError:
        return None


def is_disk_full(exc: BaseException, store: Path) -> bool:
    """SQLite says "database or disk is full", or an I/O error with (almost) no space left
    (SQLite reports a failed -shm or -wal extension as a plain "disk I/O error")."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc).lower()
    if "disk is full" in text:
        return True
    free = free_bytes(store)
    return "disk i/o error" in text and free is not None and free < NEARLY_FULL


def ensure(store: Path, size_mb: float) -> None:
    """Make (or complete) the reserve file; on a disk without room, log and go on."""
    path = reserve_path(store)
    size = int(size_mb * 1024 * 1024)
    if size <= 0:
        path.unlink(missing_ok=True)
        return
    try:
        if path.exists() and path.stat().st_size >= size:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        path.unlink(missing_ok=True)
        log.warning("store_reserve_not_made", file=str(path), error=str(exc), mb=size_mb)


def release(store: Path) -> int:
    """Delete the reserve; the bytes it gave back (0 if there was none)."""
    path = reserve_path(store)
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size
