"""The door daemon's start-up reads what it needs once: the office's public keys (a
``central_public_key_file``) are read by the composition root and handed to both that verify
with them (the sync: signed commands and credentials; the door: visitor QR passes). A key file
that cannot be used stops the start with ONE error line, not an error for the visitor
passes followed by the fatal one."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edgegate.config import load
from edgegate.contract import signing
from edgegate.daemon.app import Daemon
from tests.conftest import EDGEGATE, REPO, write_config_file
from tests.reads import reads_of, watching


def _config(tmp_path: Path, key_text: str) -> tuple[Path, Path]:
    """A door with [mqtt] (a closed port: no broker needed to start) and a key file."""
    key_file = tmp_path / "central.pub"
    key_file.write_text(key_text)
    config = write_config_file(tmp_path, "/dev/null")
    config.write_text(
        config.read_text() + f'\n[mqtt]\nhost = "127.0.0.1"\nport = 1\n'
        f'central_public_key_file = "{key_file}"\n'
    )
    return config, key_file


def test_the_office_keys_are_read_once_and_reach_the_sync_and_the_door(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = signing.generate().public_key()
    config, key_file = _config(tmp_path, signing.public_text(key) + "\n")
    cfg = load(config)

    async def start_and_stop() -> Daemon:
        daemon = Daemon(cfg, pin_factory=MockFactory())
        await daemon.start()
        await daemon.stop()
        return daemon

    with watching(monkeypatch) as seen:
        daemon = asyncio.run(start_and_stop())
    assert reads_of(seen, key_file) == 1, seen["opens"]
    want = signing.public_bytes(key)
    assert [signing.public_bytes(k) for k in daemon.door.pass_keys] == [want]
    assert daemon.sync is not None and daemon.sync.chunk_parser.key_texts == [
        signing.public_text(key)
    ]


def test_an_unusable_key_file_is_one_fatal_line(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    config, _ = _config(tmp_path, "not a key\n")
    proc = subprocess.run(
        [*EDGEGATE, "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    errors = [line for line in lines if line["level"] == "error"]
    assert [e["event"] for e in errors] == ["daemon_start_failed"], proc.stderr
    assert "central public key" in errors[0]["reason"] and "Traceback" not in proc.stderr
