"""Files that carry trust or secrets: a world-writable config or central key file, or one
owned by another non-root user, stops ``check-config``, ``doctor`` and ``run`` (one line naming
the file and the fix); a password file readable by everyone is flagged by doctor."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.config.file_trust import check_file
from tests.conftest import EDGEGATE, REPO, write_config_file

NOBODY = 65534
ENV = {
    **{k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")},
    "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
}


def _edgegate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGEGATE, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ENV,
        timeout=60,
    )


def _doctor(config: Path) -> tuple[int, list[dict[str, str]]]:
    proc = _edgegate("doctor", "--config", str(config), "--listen", "0", "--json")
    report = json.loads(proc.stdout)
    return proc.returncode, [c for c in report["checks"] if c["part"] == "permissions"]


def _with_key_file(tmp_path: Path) -> tuple[Path, Path]:
    config = write_config_file(tmp_path, "/dev/null")
    keys = tmp_path / "central.pub"
    keys.write_text("")
    config.write_text(
        config.read_text()
        + f'\n[mqtt]\nhost = "127.0.0.1"\ncentral_public_key_file = "{keys}"\n'
        + f'password_file = "{tmp_path / "mqtt-password"}"\n'
    )
    (tmp_path / "mqtt-password").write_text("secret\n")
    (tmp_path / "mqtt-password").chmod(0o600)
    return config, keys


@pytest.mark.parametrize("which", ["config", "central_public_key_file"])
def test_world_writable_trust_file_stops_every_entry_point(tmp_path: Path, which: str):
    config, keys = _with_key_file(tmp_path)
    assert _edgegate("check-config", str(config)).returncode == 0
    target = config if which == "config" else keys
    target.chmod(0o666)

    check = _edgegate("check-config", str(config))
    assert check.returncode == 2
    assert f"{target}: " in check.stderr and "writable by everyone (mode 0666)" in check.stderr
    assert f"chmod o-w {target}" in check.stderr

    run = _edgegate("run", "--config", str(config))
    assert run.returncode == 2 and f"chmod o-w {target}" in run.stderr
    assert not (tmp_path / "door.db").exists()  # refused before anything started

    code, perms = _doctor(config)
    assert code != 0
    assert [c["status"] for c in perms] == ["fail"]
    assert f"chmod o-w {target}" in perms[0]["message"]
    assert "sign unlocks" in perms[0]["message"]

    target.chmod(0o644)
    assert _edgegate("check-config", str(config)).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_trust_file_owned_by_another_user_is_refused(tmp_path: Path):
    config, keys = _with_key_file(tmp_path)
    os.chown(keys, NOBODY, -1)
    check = _edgegate("check-config", str(config))
    assert check.returncode == 2
    assert "is owned by" in check.stderr and f"chown root {keys}" in check.stderr


def test_password_file_readable_by_everyone_is_flagged(tmp_path: Path):
    config, _ = _with_key_file(tmp_path)
    password = tmp_path / "mqtt-password"
    assert [c["status"] for c in _doctor(config)[1]] == ["ok"]
    password.chmod(0o644)
    assert _edgegate("check-config", str(config)).returncode == 0  # flagged, not refused
    perms = _doctor(config)[1]
    assert [c["status"] for c in perms] == ["warn"]
    assert f"chmod o-r {password}" in perms[0]["message"]


def test_writable_directory_above_is_refused(tmp_path: Path):
    config, _ = _with_key_file(tmp_path)
    tmp_path.chmod(0o777)  # anyone could replace the config by renaming
    try:
        check = _edgegate("check-config", str(config))
        assert check.returncode == 2 and f"chmod g-w,o-w {tmp_path}" in check.stderr
        tmp_path.chmod(0o1777)  # sticky, as /tmp: nobody replaces another user's file
        assert _edgegate("check-config", str(config)).returncode == 0
    finally:
        tmp_path.chmod(0o700)


@settings(max_examples=200, deadline=None)
@given(mode=st.integers(0, 0o777), root_group=st.booleans())
def test_fatal_exactly_when_someone_else_may_write(tmp_path_factory, mode: int, root_group: bool):
    path = tmp_path_factory.mktemp("m") / "f"
    path.write_text("")
    if not root_group and os.geteuid() == 0:
        os.chown(path, -1, NOBODY)
    path.chmod(mode)
    gid_root = path.stat().st_gid == 0
    problems = check_file("x", path, secret=True)
    fatal = [p for p in problems if p.fatal and p.path == path]
    expect = bool(mode & stat.S_IWOTH) or bool(mode & stat.S_IWGRP and not gid_root)
    assert bool(fatal) == expect
    assert any(not p.fatal for p in problems) == bool(mode & stat.S_IROTH)
