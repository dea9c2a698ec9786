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

from edgegate.config import ConfigError, load, load_trusted
from edgegate.config.file_trust import check_file
from edgegate.doctor.local import check_file_trust
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


def _refusal(config: Path) -> str:
    """load_trusted's one line per problem (what run and check-config print), or ''."""
    try:
        load_trusted(config)
    except ConfigError as exc:
        return "\n".join(exc.problems)
    return ""


def _perms(config: Path) -> list[tuple[str, str]]:
    return [(str(c.status), c.message) for c in check_file_trust(config, load(config))]


@pytest.mark.parametrize("which", ["config", "central_public_key_file"])
def test_world_writable_trust_file_is_refused(tmp_path: Path, which: str):
    config, keys = _with_key_file(tmp_path)
    assert _refusal(config) == ""
    target = config if which == "config" else keys
    target.chmod(0o666)
    refusal = _refusal(config)
    assert f"{target}: " in refusal and "writable by everyone (mode 0666)" in refusal
    assert f"chmod o-w {target}" in refusal
    perms = _perms(config)
    assert [s for s, _ in perms] == ["fail"]
    assert f"chmod o-w {target}" in perms[0][1] and "sign unlocks" in perms[0][1]
    target.chmod(0o644)
    assert _refusal(config) == ""


def test_every_entry_point_refuses(tmp_path: Path):
    """The console commands themselves: check-config and run exit 2 naming the fix, before
    anything starts; doctor fails with the permissions check."""
    config, keys = _with_key_file(tmp_path)
    keys.chmod(0o666)
    check = _edgegate("check-config", str(config))
    assert check.returncode == 2 and f"chmod o-w {keys}" in check.stderr
    run = _edgegate("run", "--config", str(config))
    assert run.returncode == 2 and f"chmod o-w {keys}" in run.stderr
    assert not (tmp_path / "door.db").exists()  # refused before anything started
    code, perms = _doctor(config)
    assert code != 0 and [c["status"] for c in perms] == ["fail"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_trust_file_owned_by_another_user_is_refused(tmp_path: Path):
    config, keys = _with_key_file(tmp_path)
    os.chown(keys, NOBODY, -1)
    refusal = _refusal(config)
    assert "is owned by" in refusal and f"chown root {keys}" in refusal


def test_password_file_readable_by_everyone_is_flagged(tmp_path: Path):
    config, _ = _with_key_file(tmp_path)
    password = tmp_path / "mqtt-password"
    assert [s for s, _ in _perms(config)] == ["ok"]
    password.chmod(0o644)
    assert _refusal(config) == ""  # flagged, not refused
    perms = _perms(config)
    assert [s for s, _ in perms] == ["warn"]
    assert f"chmod o-r {password}" in perms[0][1]


def test_writable_directory_above_is_refused(tmp_path: Path):
    config, _ = _with_key_file(tmp_path)
    tmp_path.chmod(0o777)  # anyone could replace the config by renaming
    try:
        assert f"chmod g-w,o-w {tmp_path}" in _refusal(config)
        tmp_path.chmod(0o1777)  # sticky, as /tmp: nobody replaces another user's file
        assert _refusal(config) == ""
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
