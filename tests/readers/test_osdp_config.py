"""The [[readers]] type = "osdp" table: the example documents it and it validates strictly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edgegate.config import ConfigError, load
from edgegate.config.models import OsdpConfig
from edgegate.hardware.osdp_reader import OsdpReader
from edgegate.hardware.registry import build_reader
from tests.conftest import REPO
from tests.readers.conftest import ReaderEventSink

EXAMPLE = REPO / "config" / "edgegate.example.toml"


def example_osdp_table() -> str:
    """The commented-out OSDP reader table of the example, uncommented."""
    lines = EXAMPLE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line == '# type = "osdp"') - 1
    table = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        text = line[2:]
        if text.startswith("# scbk_file"):  # the key file alternative, uncommented too
            text = text[2:]
        if not text.startswith("#"):
            table.append(text)
    return "\n".join(table) + "\n"


def test_example_documents_every_osdp_key():
    text = EXAMPLE.read_text()
    for key in OsdpConfig.model_fields:
        shown = f"\n# {key} =" in text or f"\n# # {key} =" in text
        assert shown, f"readers (osdp).{key} not in the example"


def test_example_osdp_table_is_valid(tmp_path: Path):
    path = tmp_path / "osdp.toml"
    path.write_text('[door]\nsite = "hq"\nid = "front"\n\n' + example_osdp_table())
    config = load(path)
    (reader,) = config.readers
    assert isinstance(reader, OsdpConfig)
    assert reader.secure_channel and not reader.install_mode
    assert tomllib.loads(example_osdp_table())["readers"][0]["type"] == "osdp"
    built = build_reader(reader, config.reader_names()[0], ReaderEventSink())
    assert isinstance(built, OsdpReader) and built.scbk_credential == "osdp-scbk-lobby"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('type = "osdp"\naddress = 127\n', "readers[0].address:"),
        ('type = "osdp"\nbaudrate = 12345\n', "readers[0].baudrate:"),
        ('type = "osdp"\nscbk = "00112233"\n', "readers[0].scbk: unknown key"),
        ('type = "osdp"\nscbk_credential = "../etc/shadow"\n', "readers[0].scbk_credential:"),
    ],
)
def test_bad_osdp_tables_are_refused(tmp_path: Path, table: str, expected: str):
    path = tmp_path / "bad.toml"
    path.write_text('[door]\nsite = "hq"\nid = "front"\n[[readers]]\n' + table)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert expected in str(err.value)
