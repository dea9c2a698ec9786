"""scripts/install.sh staged into a throwaway root: the real venv and package install, config,
unit and its enablement; a second run changes nothing.

Under ``--root`` the script skips what only makes sense on the door itself (apt, creating the
system user, systemctl daemon-reload); those steps are exercised on a Pi, not here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "install.sh"
# The Debian interpreter a Raspberry Pi OS door has; any python3 >= 3.11 works.
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else shutil.which("python3")


def install(root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": str(PYTHON)}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def seed_etc(etc: Path) -> None:
    """A minimal system's user database (dialout and video exist on Debian, gpio does not)."""
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\nvideo:x:44:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\ndialout:*::\nvideo:*::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o600)


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path under root: mode, mtime (ns), size, and link target or the content hash of
    files outside the venv (inside it, a rewrite shows in the mtime; hashing 60 MB is slow)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_symlink():
            what = "-> " + os.readlink(path)
        elif path.is_file() and not rel.startswith("opt/edgegate/venv/"):
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = ""
        out[rel] = (st.st_mode, st.st_mtime_ns, st.st_size, what)
    return out


@pytest.mark.slow
def test_install_into_a_root_then_again_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    as_root = os.geteuid() == 0  # useradd --root chroots: root only
    if as_root:
        seed_etc(root / "etc")
    first = install(root, tmp_path)
    assert first.returncode == 0, first.stderr
    if as_root:
        passwd = (root / "etc/passwd").read_text()
        assert "edgegate:x:" in passwd and ":/var/lib/edgegate:/usr/sbin/nologin" in passwd
        groups = {
            line.split(":")[0]: line.split(":")
            for line in (root / "etc/group").read_text().splitlines()
        }
        for name in ("gpio", "dialout", "video", "input"):
            assert "edgegate" in groups[name][3].split(","), name
        gid = int(groups["edgegate"][2])
    else:
        assert "not creating the edgegate user" in first.stderr
    assert "Next:" in first.stdout and "systemctl start edgegate" in first.stdout

    unit = root / "etc/systemd/system/edgegate.service"
    assert unit.read_text() == (REPO / "systemd/edgegate.service").read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants/edgegate.service"
    assert wants.is_symlink() and os.readlink(wants) == "/etc/systemd/system/edgegate.service"
    config = root / "etc/edgegate/edgegate.toml"
    assert config.read_text() == (REPO / "config/edgegate.example.toml").read_text()
    assert config.stat().st_mode & 0o777 == 0o640
    if as_root:
        assert config.stat().st_gid == gid  # readable by the daemon's group only
    assert (root / "etc/edgegate/credentials").stat().st_mode & 0o777 == 0o700
    assert os.readlink(root / "usr/local/bin/edgegate") == "/opt/edgegate/venv/bin/edgegate"
    assert (root / "opt/edgegate/docs/config.md").exists()

    # The venv holds a real (non-editable) install: it runs without the checkout on the path.
    # Without PYTHONPATH: the tests' own (pointing at the checkout) would hide the install.
    venv = root / "opt/edgegate/venv/bin"
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [venv / "python", "-c", "import edgegate; print(edgegate.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=bare,
        check=True,
    )
    assert where.stdout.startswith(str(root / "opt/edgegate/venv"))
    check = subprocess.run(
        [venv / "edgegate", "check-config", str(config)], capture_output=True, text=True, env=bare
    )
    assert check.returncode == 0, check.stderr

    before = snapshot(root)
    second = install(root, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stderr
    assert snapshot(root) == before

    # A technician's config is never overwritten; a drifted unit is put back.
    config.write_text(config.read_text().replace('id = "front"', 'id = "back"'))
    unit.write_text(unit.read_text() + "\n# local edit\n")
    third = install(root, tmp_path)
    assert third.returncode == 0, third.stderr
    assert 'id = "back"' in config.read_text()
    assert unit.read_text() == (REPO / "systemd/edgegate.service").read_text()
    assert "installed " + str(unit) in third.stderr
