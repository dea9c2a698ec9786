"""The store on a failing SD card: a zero-length, vanished or damaged store stops the daemon
with ONE structured log line naming the file and the fix (never a traceback, never a new empty
door); a full disk still lets the door start (its journal reserve is released), and says
"disk full" in plain words."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from edgegate.config import load
from edgegate.doctor import Status
from edgegate.doctor.local import check_store
from edgegate.store import reserve
from edgegate.store.db import open_db
from edgegate.store.identity import marker_path
from tests.conftest import EDGEGATE, REPO, write_config_file

ENV = {
    **{k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")},
    "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
}


def _run(config: Path, timeout: float = 30) -> tuple[int | None, list[dict], str]:
    """Start ``edgegate run``; return (exit code or None if it started, log lines, stderr)."""
    proc = subprocess.Popen(
        [*EDGEGATE, "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=ENV,
    )
    lines: list[dict] = []
    raw = []
    assert proc.stderr is not None
    for line in proc.stderr:
        raw.append(line)
        lines.append(json.loads(line))
        if lines[-1]["event"] == "daemon_started":
            proc.terminate()
            proc.wait(timeout)
            return None, lines, "".join(raw)
    return proc.wait(timeout), lines, "".join(raw)


def _store(tmp_path: Path) -> tuple[Path, Path]:
    config = write_config_file(tmp_path, "/dev/null")
    store = tmp_path / "door.db"
    open_db(store, identity=True).close()  # the door has run here before
    assert marker_path(store).exists()
    return config, store


def _one_fatal_line(code: int | None, lines: list[dict], raw: str, store: Path) -> dict:
    assert code == 1, raw
    assert "Traceback" not in raw
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1, raw
    assert errors[0]["event"] == "daemon_start_failed"
    assert errors[0]["file"] == str(store)
    return errors[0]


@pytest.mark.parametrize("fault", ["zero-length", "vanished"])
def test_store_that_shrank_to_nothing_is_an_error_not_a_new_door(tmp_path: Path, fault: str):
    config, store = _store(tmp_path)
    if fault == "zero-length":
        store.write_bytes(b"")
    else:
        store.unlink()
    for extra in ("-wal", "-shm"):
        Path(f"{store}{extra}").unlink(missing_ok=True)
    code, lines, raw = _run(config)
    err = _one_fatal_line(code, lines, raw, store)
    assert ("is empty" if fault == "zero-length" else "is missing") in err["reason"]
    assert "restore the store from a backup" in err["fix"]
    assert not store.exists() or store.stat().st_size == 0  # nothing re-created
    # doctor no longer says "all good, 0 people"
    checks = check_store(load(config))
    assert [c.status for c in checks] == [Status.FAIL]
    assert "restore the store from a backup" in checks[0].message


def test_damaged_store_is_one_structured_line(tmp_path: Path):
    config, store = _store(tmp_path)
    with open(store, "r+b") as fh:  # the header and first page overwritten
        fh.write(os.urandom(4096))
    code, lines, raw = _run(config)
    err = _one_fatal_line(code, lines, raw, store)
    assert "the store cannot be used" in err["reason"]
    assert "backup" in err["fix"]


def test_new_door_still_starts_and_marks_its_store(tmp_path: Path):
    config = write_config_file(tmp_path, "/dev/null")
    code, _lines, raw = _run(config)
    assert code is None, raw
    store = tmp_path / "door.db"
    assert marker_path(store).read_text().strip()
    assert (tmp_path / "door.db.reserve").stat().st_size == 8 * 1024 * 1024


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A 4 MiB tmpfs: a file system that fills up (needs root; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    mnt = tmp_path / "sd"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", f"edgegate-{uuid.uuid4().hex[:6]}", str(mnt)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt: Path) -> None:
    with open(mnt / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    os.sync()


def _config_on(tmp_path: Path, mnt: Path, reserve_mb: float) -> Path:
    """A door that ran before on the small file system (store, marker, reserve made)."""
    config = write_config_file(tmp_path, "/dev/null")
    text = config.read_text().replace(str(tmp_path / "door.db"), str(mnt / "door.db"))
    config.write_text(text + f"reserve_mb = {reserve_mb}\n")
    open_db(mnt / "door.db", identity=True).close()
    reserve.ensure(mnt / "door.db", reserve_mb)
    return config


@pytest.mark.slow
def test_full_disk_start_releases_the_reserve_and_says_disk_full(tmp_path: Path, small_tmpfs):
    config = _config_on(tmp_path, small_tmpfs, 1)
    store = small_tmpfs / "door.db"
    for extra in ("-wal", "-shm"):  # as after a power cut: WAL files to re-create
        Path(f"{store}{extra}").unlink(missing_ok=True)
    _fill(small_tmpfs)
    code, lines, raw = _run(config)
    assert code is None, raw  # started anyway
    full = [line for line in lines if line["event"] == "store_disk_full"]
    assert len(full) == 1 and full[0]["message"].startswith("disk full:")
    assert "released the 1024 KiB reserve" in full[0]["message"]


@pytest.mark.slow
def test_full_disk_without_reserve_says_disk_full_in_one_line(tmp_path: Path, small_tmpfs):
    config = _config_on(tmp_path, small_tmpfs, 0)
    store = small_tmpfs / "door.db"
    for extra in ("-wal", "-shm"):
        Path(f"{store}{extra}").unlink(missing_ok=True)
    _fill(small_tmpfs)
    code, lines, raw = _run(config)
    err = _one_fatal_line(code, lines, raw, store)
    assert err["reason"].startswith("disk full:")
    assert "free space" in err["fix"]
