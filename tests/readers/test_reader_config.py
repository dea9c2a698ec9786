"""The reader and PIN config: the commented examples parse, bad values name their key."""

from __future__ import annotations

import re
import tomllib

import pytest

from edgegate.config import ConfigError, parse
from tests.conftest import REPO

EXAMPLE = (REPO / "config" / "edgegate.example.toml").read_text()


def blocks() -> dict[str, dict]:
    found: dict[str, dict] = {}
    for block in re.findall(r"((?:^# [^\n]*\n)+)", EXAMPLE, flags=re.M):
        body = "\n".join(line[2:] for line in block.splitlines())
        start = re.search(r"^(\[\[readers\]\]|\[pin\])$", body, flags=re.M)
        if start is None:
            continue
        table = tomllib.loads(body[start.start() :])
        if "readers" in table:
            found[table["readers"][0]["type"]] = table["readers"][0]
        elif "pin" in table:
            found["pin"] = table["pin"]
    return found


def test_commented_examples_parse_and_show_every_key():
    from edgegate.config.models import PinConfig, Pn532Config, WiegandConfig

    found = blocks()
    assert set(found) >= {"pn532", "wiegand", "pin"}
    cfg = parse(
        {
            "door": {"site": "s", "id": "d"},
            "readers": [found["pn532"], found["wiegand"]],
            "pin": found["pin"],
        },
        REPO / "example.toml",
    )
    assert cfg.readers[0].type == "pn532" and cfg.readers[1].d1 == 25
    assert cfg.pin.require and cfg.pin.readers == ["keypad"]
    for model, table in ((Pn532Config, found["pn532"]), (WiegandConfig, found["wiegand"])):
        assert set(model.model_fields) == set(table)
    assert set(PinConfig.model_fields) == set(found["pin"])


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        ({"type": "pn532", "poll_interval_seconds": 0}, "readers[0].poll_interval_seconds"),
        ({"type": "pn532", "uart": "x"}, "readers[0].uart"),
        ({"type": "wiegand", "d0": 5}, "readers[0].d1"),
        ({"type": "wiegand", "d0": 5, "d1": 5}, "d0 and d1 must be different"),
        ({"type": "wiegand", "d0": 5, "d1": 6, "formats": [37]}, "readers[0].formats"),
    ],
)
def test_bad_reader_keys_are_named(reader: dict, expected: str):
    with pytest.raises(ConfigError) as err:
        parse({"door": {"site": "s", "id": "d"}, "readers": [reader]}, REPO / "t.toml")
    assert expected in str(err.value) or any(expected in p for p in err.value.problems)
