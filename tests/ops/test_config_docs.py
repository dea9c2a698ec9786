"""docs/config.md is generated from the pydantic models and must match them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from edgegate.config.docs import DOC, generate, models_in
from edgegate.config.models import Config
from tests.conftest import EDGEGATE, REPO


def test_committed_reference_matches_the_models() -> None:
    assert DOC == REPO / "docs" / "config.md"
    assert DOC.read_text() == generate(), "run: python -m edgegate.config.docs"


def test_every_section_and_key_is_documented() -> None:
    text = generate()
    for name, field in Config.model_fields.items():
        models = models_in(field.annotation)
        if not models:
            assert f"| `{name}` |" in text
        for model in models:
            assert f"[{name}]" in text
            for key, sub in model.model_fields.items():
                assert f"| `{key}` |" in text
                assert sub.description, f"{model.__name__}.{key} has no description"
                assert " ".join(sub.description.split()) in text


def test_check_mode_detects_drift(tmp_path: Path) -> None:
    stale = tmp_path / "config.md"
    stale.write_text(generate().replace("Broker TCP port.", "Old text."))
    args = ["-m", "edgegate.config.docs", "--check", "--output", str(stale)]
    proc = subprocess.run([EDGEGATE[0], *args], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "out of date" in proc.stdout
    proc = subprocess.run([EDGEGATE[0], *args[:-1], str(DOC)], capture_output=True, cwd=REPO)
    assert proc.returncode == 0
