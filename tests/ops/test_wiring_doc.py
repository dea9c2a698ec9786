"""docs/wiring.md names the same default pins as the config model and the example file."""

from __future__ import annotations

import re

from edgegate.config.models import GpioConfig
from tests.conftest import REPO

WIRING = (REPO / "docs" / "wiring.md").read_text()
EXAMPLE = (REPO / "config" / "edgegate.example.toml").read_text()
# "| `[gpio] lock` (GPIO17) | pin 11 |"
ROW = re.compile(r"`\[gpio\] (\w+)` \(GPIO(\d+)\) \| pin (\d+)")
# BCM GPIO -> 40-pin header position.
HEADER = {
    2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32, 13: 33,
    14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16, 24: 18,
    25: 22, 26: 37, 27: 13,
}  # fmt: skip


def test_pins_in_the_wiring_table_match_config_and_header() -> None:
    rows = ROW.findall(WIRING)
    assert len(rows) >= 11
    defaults = GpioConfig()
    for key, bcm, header in rows:
        assert key in GpioConfig.model_fields, key
        assert HEADER[int(bcm)] == int(header), (key, bcm, header)
        default = getattr(defaults, key)
        if default is not None:
            assert default == int(bcm), key
        else:  # optional inputs: the value the example file suggests
            assert re.search(rf"^# {key} = {bcm}\b", EXAMPLE, re.M), key
