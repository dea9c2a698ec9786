"""``edgegate doctor`` end to end: simulated devices on real ptys, mock pins, a real broker.

Each case runs the real console command in a subprocess and reads its --json report and exit
code. What cannot exist here: a real RDM6300, fingerprint module and camera (simulators on ptys
and a video file stand in for them) and GPIO (gpiozero's mock pin factory).
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from edgegate.sim.broker import Broker
from edgegate.sim.fingerprint import FingerprintSimulator
from edgegate.sim.rdm6300 import Rdm6300Simulator
from tests.conftest import EDGEGATE, REPO, enrol

CARD = "0F00BC614E"


class Presenter:
    """Holds a card on a simulated reader (a frame every 60 ms) while doctor listens."""

    def __init__(self, sim: Rdm6300Simulator, bad_checksum: bool = False) -> None:
        self.sim, self.bad = sim, bad_checksum
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(Rdm6300Simulator.REPEAT_INTERVAL):
            if self.bad:
                self.sim.tap_bad_checksum(CARD)
            else:
                self.sim.tap(CARD)

    def __enter__(self) -> Presenter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def sims() -> Iterator[tuple[Rdm6300Simulator, Rdm6300Simulator, FingerprintSimulator]]:
    good, noisy = Rdm6300Simulator(), Rdm6300Simulator()
    finger = FingerprintSimulator(capacity=300).start()
    finger.enroll(0, "alice")
    try:
        yield good, noisy, finger
    finally:
        finger.stop()
        good.close()
        noisy.close()


def write_video(path: Path) -> None:
    """A three-frame video file: the camera source (cv2 reads it like a device)."""
    cv2 = pytest.importorskip("cv2", reason="face stack (opencv) not installed")
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, dtype=np.uint8))
    writer.release()


def toml_config(
    tmp_path: Path,
    readers: list[tuple[str, str]],
    *,
    fingerprint: tuple[str, int] | None = None,
    broker: Broker | None = None,
    camera: Path | None = None,
    pin_factory: str = "mock",
) -> Path:
    lines = [
        '[door]\nsite = "test"\nid = "d1"\n',
        f'[gpio]\npin_factory = "{pin_factory}"\ndoor_contact = 5\nexit_button = 6\n',
    ]
    for name, port in readers:
        lines.append(f'[[readers]]\ntype = "rdm6300"\nport = "{port}"\nname = "{name}"\n')
    if fingerprint:
        port, password = fingerprint
        lines.append(f'[fingerprint]\nport = "{port}"\npassword = {password}\n')
    if camera:
        lines.append(f'[camera]\nsource = "{camera}"\n')
    if broker:
        lines.append(f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n')
        lines.append("[homeassistant]\nenabled = true\n")
    lines.append(f'[storage]\npath = "{tmp_path / "door.db"}"\n')
    path = tmp_path / "edgegate.toml"
    path.write_text("\n".join(lines))
    return path


def run_doctor(config: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGEGATE, "doctor", "--config", str(config), "--listen", "1", *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


def doctor(config: Path, env: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]]]:
    proc = run_doctor(config, env, "--json")
    report = json.loads(proc.stdout)
    assert report["exit"] == proc.returncode
    return proc.returncode, {c["part"]: c for c in report["checks"]}


@pytest.mark.broker
def test_everything_works(
    tmp_path: Path, sims: Any, broker: Broker, subprocess_env: dict[str, str]
) -> None:
    good, noisy, finger = sims
    enrol(tmp_path / "door.db", "alice", CARD)
    video = tmp_path / "cam.avi"
    write_video(video)
    cfg = toml_config(
        tmp_path,
        [("entry", good.port), ("exit", noisy.port)],
        fingerprint=(finger.port, 0),
        broker=broker,
        camera=video,
    )
    with Presenter(good), Presenter(noisy, bad_checksum=True):
        code, checks = doctor(cfg, subprocess_env)
    assert code == 0, checks
    status = {part: c["status"] for part, c in checks.items()}
    for part in (
        "config",
        "store",
        "store key",
        "reader entry",
        "fingerprint finger",
        "camera",
        "gpio",
        "gpio lock",
        "gpio door_contact",
        "broker",
        "home assistant",
    ):
        assert status[part] == "ok", checks[part]
    assert "1 people, 1 credentials" in checks["store"]["message"]
    entry = checks["reader entry"]["message"]
    frames = int(entry.split(": ")[1].split(" frame")[0])
    assert frames >= 5 and "0 checksum error(s)" in entry and CARD in entry
    # The reader fed only bad checksums: a warning with the count, not a failure.
    assert status["reader exit"] == "warn"
    assert "0 frame(s)" in checks["reader exit"]["message"]
    assert " 0 checksum" not in checks["reader exit"]["message"]
    assert "300 templates" in checks["fingerprint finger"]["message"]
    assert "64x48" in checks["camera"]["message"]
    # Mock pins idle high (pull-up): the contact is not pulled low, so the door reads open.
    # The contact polarity is said too ([gpio] normally_closed, docs/wiring.md).
    assert checks["gpio door_contact"]["message"] == (
        "pin 5 claimed (input, normally open, door open)"
    )
    assert status["clock"] in ("ok", "warn")


def test_bad_port_fails(tmp_path: Path, sims: Any, subprocess_env: dict[str, str]) -> None:
    good, held, _ = sims
    readers = [("entry", good.port), ("gone", "/dev/ttyUSB-missing"), ("held", held.port)]
    cfg = toml_config(tmp_path, readers)
    # Held exclusively, as the running daemon holds its ports.
    with serial.Serial(held.port, 9600, exclusive=True):
        code, checks = doctor(cfg, subprocess_env)
    assert code == 1
    assert checks["reader gone"]["status"] == "fail"
    assert "does not exist" in checks["reader gone"]["message"]
    assert checks["reader held"]["status"] == "fail"
    assert "in use (is edgegate running?" in checks["reader held"]["message"]
    assert checks["reader entry"]["status"] == "ok"
    text = run_doctor(cfg, subprocess_env).stdout  # what the technician reads
    assert "FAIL  reader gone  " in text and "something is wrong" in text


def test_broken_parts_each_say_what_is_wrong(
    tmp_path: Path, sims: Any, broker: Broker, subprocess_env: dict[str, str]
) -> None:
    good, _, finger = sims
    db = tmp_path / "door.db"
    enrol(db, "alice", CARD)
    for n in range(300):  # enough rows for several pages, so a middle page can be damaged
        enrol(db, f"p{n}", f"{n:010X}")
    raw = bytearray(db.read_bytes())
    raw[4096 * 2 : 4096 * 2 + 512] = b"\xa5" * 512
    db.write_bytes(bytes(raw))
    broker.stop()
    cfg = toml_config(
        tmp_path, [("entry", good.port)], fingerprint=(finger.port, 1234), broker=broker
    )
    code, checks = doctor(cfg, subprocess_env)
    assert code == 1
    assert checks["store"]["status"] == "fail" and "restore a backup" in checks["store"]["message"]
    assert checks["fingerprint finger"]["status"] == "fail"
    assert checks["broker"]["status"] == "fail" and "cannot reach" in checks["broker"]["message"]


def test_unknown_pin_factory_and_invalid_config(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    cfg = toml_config(tmp_path, [], pin_factory="nosuchfactory")
    code, checks = doctor(cfg, subprocess_env)
    assert code == 1
    assert checks["gpio"]["status"] == "fail" and "nosuchfactory" in checks["gpio"]["message"]
    assert checks["readers"]["status"] == "warn"
    cfg.write_text(cfg.read_text().replace('id = "d1"', 'id = "d1"\nunlok_seconds = 3'))
    proc = run_doctor(cfg, subprocess_env)
    assert proc.returncode == 2
    assert "door.unlok_seconds: unknown key" in proc.stdout
