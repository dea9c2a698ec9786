"""doctor reads each input in its contact's meaning and warns about fire and obstruction
inputs wired normally open (a cut wire would read as "no alarm" / "clear")."""

from __future__ import annotations

from pathlib import Path

from edgegate.config import parse
from edgegate.doctor import Status
from edgegate.doctor.local import check_gpio


def _gpio_checks(tmp_path: Path, **gpio: object) -> dict[str, list[tuple[Status, str]]]:
    cfg = parse(
        {
            "door": {"site": "t", "id": "d"},
            "gpio": {"pin_factory": "mock", "fire_alarm": 13, "obstruction": 26, **gpio},
            "readers": [],
            "storage": {"path": str(tmp_path / "door.db")},
        },
        tmp_path / "t.toml",
    )
    out: dict[str, list[tuple[Status, str]]] = {}
    for c in check_gpio(cfg):
        out.setdefault(c.part, []).append((c.status, c.message))
    return out


def test_normally_open_fire_input_is_warned_about(tmp_path: Path):
    checks = _gpio_checks(tmp_path)
    fire = checks["gpio fire_alarm"]
    assert [s for s, _ in fire] == [Status.OK, Status.WARN]
    assert "cut wire reads as no alarm" in fire[1][1]
    assert [s for s, _ in checks["gpio obstruction"]] == [Status.OK, Status.WARN]


def test_normally_closed_inputs_read_in_their_meaning(tmp_path: Path):
    checks = _gpio_checks(tmp_path, normally_closed=["fire_alarm", "obstruction"])
    # Mock pins float high (pull-up, nothing wired): an open contact, which is the alarm.
    assert checks["gpio fire_alarm"] == [
        (Status.OK, "pin 13 claimed (input, normally closed, FIRE ALARM ACTIVE)")
    ]
    assert checks["gpio obstruction"] == [
        (Status.OK, "pin 26 claimed (input, normally closed, obstructed)")
    ]
