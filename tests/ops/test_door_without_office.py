"""A door is installed without the ``office`` extra (no SQLAlchemy): ``edgegate`` must still
start and run the door's commands. Each run hides SQLAlchemy with a ``sys.meta_path`` finder
that refuses it, as if it were not installed, in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config_file

# Runs ``edgegate ARGS...`` with SQLAlchemy refused at import, whoever asks for it.
WITHOUT_SQLALCHEMY = """
import sys

class NoSqlalchemy:
    def find_spec(self, name, path=None, target=None):
        if name == "sqlalchemy" or name.startswith("sqlalchemy."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoSqlalchemy())
from edgegate.cli.main import main

raise SystemExit(main(sys.argv[1:]))
"""


def edgegate_without_sqlalchemy(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SQLALCHEMY, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


def test_the_blocker_does_hide_sqlalchemy(subprocess_env):
    """The check below can fail: an office command does need SQLAlchemy."""
    r = subprocess.run(
        [sys.executable, "-c", WITHOUT_SQLALCHEMY.replace("from edgegate", "import sqlalchemy\n#")],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=60,
    )
    assert r.returncode != 0 and "No module named 'sqlalchemy'" in r.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["central", "--help"], ["central", "visits", "--help"]]
)
def test_help_without_the_office_extra(args, subprocess_env):
    r = edgegate_without_sqlalchemy(*args, env=subprocess_env)
    assert r.returncode == 0, r.stderr
    assert "usage: edgegate" in r.stdout


def test_door_commands_without_the_office_extra(tmp_path: Path, subprocess_env):
    cfg = str(write_config_file(tmp_path, "/dev/null"))
    r = edgegate_without_sqlalchemy(
        "enroll", "card", "--config", cfg, "--person", "alice", "--card", "0F00BC614E",
        env=subprocess_env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = edgegate_without_sqlalchemy("people", "list", "--config", cfg, "--json", env=subprocess_env)
    assert r.returncode == 0, r.stderr
    assert "alice" in r.stdout and json.loads(r.stdout)


def test_cli_visit_categories_are_the_services():
    """The CLI keeps its own copy (registering commands must not load SQLAlchemy)."""
    from edgegate.central.services.visitors import CATEGORIES
    from edgegate.cli import central_visits

    assert central_visits.CATEGORIES == CATEGORIES
