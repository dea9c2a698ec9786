import subprocess
from pathlib import Path

import pytest

from edgegate.config import ConfigError, load, parse
from tests.conftest import EDGEGATE, REPO

EXAMPLE = REPO / "config" / "edgegate.example.toml"


def test_example_config_is_valid_and_documents_every_key():
    config = load(EXAMPLE)
    assert config.door.site and config.door.id
    text = EXAMPLE.read_text()
    # Every key of the sections the example shows is present with a comment above or beside it.
    for section in ("door", "gpio", "storage", "logging", "daemon", "rules"):
        model = getattr(config, section)
        for key in type(model).model_fields:
            assert f"{key} =" in text or f"# {key} =" in text, f"{section}.{key} not documented"


def test_check_config_cli_accepts_example():
    out = subprocess.run(
        [*EDGEGATE, "check-config", str(EXAMPLE)], capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[door]\nsite="hq"\nid="front"\nunlok_seconds=3\n', "door.unlok_seconds: unknown key"),
        ('[door]\nsite="hq"\nid="front"\nunlock_seconds=-1\n', "door.unlock_seconds:"),
        ('[door]\nsite="hq"\n', "door.id: required key is missing"),
        ('[door]\nsite="h q"\nid="f"\n', "door.site:"),
        (
            '[door]\nsite="hq"\nid="f"\n[[readers]]\ntype="rdm6300"\ndirection="up"\n',
            "readers[0].direction:",
        ),
        ('[door]\nsite="hq"\nid="f"\n[[readers]]\ntype="magic"\n', "readers[0]:"),
        ('[door]\nsite="hq"\nid="f"\n[gpio]\nlock=5\nred_led=5\n', "pin 5 is used by both"),
        ('[door\nsite="hq"\n', "not valid TOML"),
    ],
)
def test_bad_config_rejected_with_one_clear_line(tmp_path: Path, toml: str, expected: str):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert any(expected in line and str(path) in line for line in err.value.problems), (
        err.value.problems
    )
    out = subprocess.run(
        [*EDGEGATE, "check-config", str(path)], capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 2
    assert expected in out.stderr


def test_several_problems_one_line_each(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[door]\nsite="hq"\nid="f"\nfoo=1\n[gpio]\nbar=2\n[storage]\nbaz=3\n')
    with pytest.raises(ConfigError) as err:
        load(path)
    assert len(err.value.problems) == 3


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path / "nope.toml")
    assert "cannot read" in err.value.problems[0]


def test_duplicate_reader_names_rejected(tmp_path: Path):
    with pytest.raises(ConfigError):
        parse(
            {
                "door": {"site": "a", "id": "b"},
                "readers": [{"type": "rdm6300", "name": "x"}, {"type": "rdm6300", "name": "x"}],
            },
            tmp_path / "x.toml",
        )
