"""Reader types are declared once and found by name or by entry point.

The plug-in test installs nothing: it puts a package and its ``.dist-info`` (with an
``entry_points.txt``) on a fresh interpreter's path, which is what ``importlib.metadata`` reads
for an installed distribution, and lets that interpreter load a config naming the new type
and build its reader.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from edgegate.config.biometric import CameraConfig, FingerprintConfig
from edgegate.config.reader_types import BUILTIN, READER_TYPES, reader_types
from edgegate.config.readers import (
    OsdpConfig,
    Pn532Config,
    QrHidConfig,
    QrScannerConfig,
    Rdm6300Config,
    WiegandConfig,
)
from edgegate.hardware.registry import build_reader
from edgegate.hardware.wiegand.reader import WiegandReader
from edgegate.sim.wiegand import SimulatedWiegand
from tests.conftest import REPO
from tests.readers.conftest import ReaderEventSink

PLUGIN = """
from typing import Literal

from pydantic import Field

from edgegate.config.readers import ReaderBase
from edgegate.config.reader_types import ReaderType
from edgegate.hardware.base import Reader


class AcmeConfig(ReaderBase):
    type: Literal["acme"] = Field(description="An ACME reader.")
    port: str = Field("/dev/acme0", description="Where it is.")


class AcmeReader(Reader):
    family = "acme"

    async def open(self) -> None: ...

    async def serve(self) -> None: ...

    def close(self) -> None: ...


def build(cfg, name, devices):
    return AcmeReader(name, devices.sink)


READER_TYPE = ReaderType("acme", AcmeConfig, "acme_edgegate:build")
BROKEN = ReaderType("pn532", AcmeConfig, "acme_edgegate:build")  # a built-in's name: refused
"""

CHECK = """
import json, sys
from edgegate.config import parse
from edgegate.config.reader_types import READER_TYPES
from edgegate.hardware.registry import build_reader

class Sink:
    def __getattr__(self, name):
        return lambda *a, **k: None

cfg = parse({"door": {"site": "s", "id": "d"}, "readers": [{"type": "acme", "name": "a"}]},
            "plugin.toml")
reader = build_reader(cfg.readers[0], "a", Sink())
print(json.dumps({"types": sorted(READER_TYPES), "family": reader.family,
                  "port": cfg.readers[0].port}))
"""


def test_builtin_types_are_declared_once_each() -> None:
    names = [t.name for t in BUILTIN]
    assert len(names) == len(set(names))
    assert {t.config for t in BUILTIN} == {
        Rdm6300Config,
        Pn532Config,
        WiegandConfig,
        OsdpConfig,
        QrScannerConfig,
        QrHidConfig,
        FingerprintConfig,
        CameraConfig,
    }
    assert (
        frozenset({"rdm6300", "pn532", "wiegand", "osdp", "qr_scanner", "qr_hid"}) == READER_TYPES
    )
    for t in reader_types().values():
        assert callable(t.load_builder())


def test_a_plugin_reader_type_is_found_by_entry_point(tmp_path: Path) -> None:
    (tmp_path / "acme_edgegate.py").write_text(PLUGIN)
    info = tmp_path / "acme_edgegate-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-edgegate\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[edgegate.readers]\nacme = acme_edgegate:READER_TYPE\n"
        "broken = acme_edgegate:BROKEN\nmissing = acme_edgegate_nowhere:X\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    out = subprocess.run(
        [sys.executable, "-c", CHECK],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {
        "types": ["acme", "osdp", "pn532", "qr_hid", "qr_scanner", "rdm6300", "wiegand"],
        "family": "acme",
        "port": "/dev/acme0",
    }
    # The two bad entry points were logged and skipped, not fatal.
    assert "reader_type_rejected" in out.stdout + out.stderr
    assert "reader_type_unloadable" in out.stdout + out.stderr


def test_wiegand_wires_are_injected_not_looked_up() -> None:
    cfg = WiegandConfig(type="wiegand", d0=24, d1=25)
    wires = SimulatedWiegand("wg")
    from edgegate.hardware.registry import ReaderDevices

    reader = build_reader(
        cfg, "wg", ReaderEventSink(), ReaderDevices(ReaderEventSink(), {"wg": wires})
    )
    assert isinstance(reader, WiegandReader) and reader.source is wires


def test_production_code_imports_no_simulator() -> None:
    """Only the demos (and the tests) may import ``edgegate.sim``."""
    offenders = []
    for path in (REPO / "edgegate").rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(("edgegate/sim/", "edgegate/cli/demo")):  # the demos run simulators
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{rel}: {n}" for n in names if n.startswith("edgegate.sim")]
    assert offenders == [], textwrap.indent("\n".join(offenders), "  ")
