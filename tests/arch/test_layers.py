"""The layer rules (pyproject.toml, [tool.importlinter]) hold: run here too, so a plain pytest
run catches an import across the layers, not only scripts/setup.sh test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LINT = Path(sys.executable).parent / "lint-imports"


def test_import_layers_are_kept() -> None:
    # import-linter is a dev dependency (setup.cfg), installed next to this interpreter.
    exe = str(LINT) if LINT.exists() else (shutil.which("lint-imports") or "lint-imports")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [exe, "--no-cache"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout
