"""Files that carry trust or secrets must be writable by nobody but root or the daemon's user.

Whoever can write the config or ``central_public_key_file`` can add a key and sign unlocks;
whoever can write the CA file can stand in for the broker. Like sshd (StrictModes) and sudo,
the door refuses to start (``run``, ``check-config``, ``doctor``) when such a file, or a
directory above it, is writable by a group or by everyone, or is owned by another user than
root or the one running edgegate. Secrets readable by everyone (``password_file``, private
keys, the store's sealing key) are flagged, not refused: they leak, they do not let anyone in.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgegate.config.models import Config
from edgegate.config.readers import OsdpConfig


@dataclass(frozen=True, slots=True)
class FileProblem:
    path: Path
    role: str
    problem: str
    fix: str
    fatal: bool

    def line(self) -> str:
        return f"{self.path}: {self.role} {self.problem}; fix: {self.fix}"


def trusted_files(config_path: Path, config: Config) -> Iterator[tuple[str, Path, bool]]:
    """(role, path, secret) of every file the door trusts or keeps secrets in."""
    yield "config file", config_path, False
    mqtt = config.mqtt
    if mqtt is not None:
        for role, path, secret in (
            ("mqtt.central_public_key_file", mqtt.central_public_key_file, False),
            ("mqtt.ca_file", mqtt.ca_file, False),
            ("mqtt.cert_file", mqtt.cert_file, mqtt.key_file is None),
            ("mqtt.key_file", mqtt.key_file, True),
            ("mqtt.password_file", mqtt.password_file, True),
        ):
            if path is not None:
                yield role, path, secret
    for i, reader in enumerate(config.readers):
        if isinstance(reader, OsdpConfig) and reader.scbk_file is not None:
            yield f"readers[{i}].scbk_file", reader.scbk_file, True
    key = config.storage.key_file or config.storage.path.parent / "store.key"
    yield "storage key file", key, True


def _who(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _owner_ok(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid())


def _writable_by_others(st: os.stat_result) -> str | None:
    """Who besides the owner may write (None: nobody). A sticky directory (/tmp) lets nobody
    replace another user's entry, so it counts as safe, as for sshd."""
    if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
        return None
    if st.st_mode & stat.S_IWOTH:
        return "everyone"
    if st.st_mode & stat.S_IWGRP and st.st_gid != 0:
        return f"group {_group(st.st_gid)}"
    return None


def check_file(role: str, path: Path, secret: bool) -> list[FileProblem]:
    """The problems of one file and of the directories above it (none if it does not exist:
    a missing file is reported by whatever reads it)."""
    try:
        st = path.stat()
    except OSError:
        return []
    mode = f"mode {stat.S_IMODE(st.st_mode):04o}"
    out: list[FileProblem] = []
    if not _owner_ok(st):
        out.append(
            FileProblem(
                path,
                role,
                f"is owned by {_who(st.st_uid)}, not root or {_who(os.geteuid())}",
                f"chown root {path}",
                True,
            )
        )
    who = _writable_by_others(st)
    if who is not None:
        bits = "o-w" if who == "everyone" else "g-w,o-w"
        out.append(
            FileProblem(path, role, f"is writable by {who} ({mode})", f"chmod {bits} {path}", True)
        )
    if secret and st.st_mode & stat.S_IROTH:
        out.append(
            FileProblem(
                path, role, f"is a secret readable by everyone ({mode})", f"chmod o-r {path}", False
            )
        )
    for parent in path.resolve().parents:
        try:
            pst = parent.stat()
        except OSError:
            continue
        who = _writable_by_others(pst)
        if who is not None:
            out.append(
                FileProblem(
                    parent,
                    f"directory of {role}",
                    f"is writable by {who}, who can replace {path.name}",
                    f"chmod g-w,o-w {parent} (or +t)",
                    True,
                )
            )
        elif not _owner_ok(pst):
            out.append(
                FileProblem(
                    parent,
                    f"directory of {role}",
                    f"is owned by {_who(pst.st_uid)}, who can replace {path.name}",
                    f"chown root {parent}",
                    True,
                )
            )
    return out


def file_problems(config_path: Path, config: Config) -> list[FileProblem]:
    """Every problem of every trusted file, fatal ones first."""
    seen: set[Path] = set()
    out: list[FileProblem] = []
    for role, path, secret in trusted_files(config_path, config):
        for p in check_file(role, path, secret):
            if p.path not in seen or p.path == path:
                out.append(p)
            seen.add(p.path)
    return sorted(out, key=lambda p: not p.fatal)
