"""Traffic counters over a generated month, read back by ``edgegate stats``."""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta
from pathlib import Path

from edgegate.cli.main import main
from edgegate.store.db import open_db, transaction
from edgegate.store.rules_state import bump, today_counts

# A weekday profile: a morning peak at 08h, a smaller one at 17h, nothing between 01h and 05h.
PROFILE = {7: 20, 8: 60, 9: 25, 12: 15, 13: 12, 17: 40, 18: 18, 22: 3, 0: 1}


def _generate(db: Path, days: int = 30) -> dict[str, int]:
    rng = random.Random(7)
    conn = open_db(db, synchronous="NORMAL")
    today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
    expected: dict[str, int] = {}
    with transaction(conn):
        for back in range(days):
            day = today - timedelta(days=back)
            total = 0
            for hour, passages in PROFILE.items():
                ts = (day + timedelta(hours=hour, minutes=rng.randrange(60))).timestamp()
                bump(conn, "d1", ts, "passages", passages)
                bump(conn, "d1", ts, "granted", passages - 1)
                bump(conn, "d1", ts, "denied", 1)
                bump(conn, "other", ts, "passages", 999)  # another door: not counted
                total += passages
            expected[day.strftime("%Y-%m-%d")] = total
    conn.close()
    return expected


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "edgegate.toml"
    path.write_text(
        f'[door]\nsite = "s"\nid = "d1"\n\n[gpio]\npin_factory = "mock"\n\n'
        f'[storage]\npath = "{tmp_path / "door.db"}"\n'
    )
    return path


def test_stats_over_a_generated_month(tmp_path: Path, capsys):
    cfg = _config(tmp_path)
    expected = _generate(tmp_path / "door.db")
    capsys.readouterr()  # the store's own log lines while generating
    assert main(["stats", "--config", str(cfg), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {d: v["passages"] for d, v in out["days"].items()} == expected
    assert out["busiest_hour"] == 8 and out["quietest_hour"] == 1
    assert out["hours"][8] == 60 * 30 and out["hours"][3] == 0
    assert out["traffic_measure"] == "passages+exits"

    assert main(["stats", "--config", str(cfg)]) == 0
    text = capsys.readouterr().out
    assert "busiest hour:  08:00-09:00 (1800 in total, 60.0/day)" in text
    assert "quietest hour: 01:00-02:00 (0 in total, 0.0/day)" in text
    bars = {int(line[:2]): line for line in text.splitlines() if line[2:4] == " |"}
    assert len(bars) == 24
    assert bars[8].count("#") == 40 and bars[3].count("#") == 0
    assert bars[17].count("#") == round(40 * 40 / 60)

    conn = open_db(tmp_path / "door.db", check=False)
    today = today_counts(conn, "d1", time.time())
    conn.close()
    assert today["passages"] == sum(PROFILE.values())
    assert today["denied"] == len(PROFILE)


def test_stats_on_an_empty_store(tmp_path: Path, capsys):
    cfg = _config(tmp_path)
    open_db(tmp_path / "door.db").close()
    capsys.readouterr()
    assert main(["stats", "--config", str(cfg)]) == 0
    assert "0 day(s) with activity" in capsys.readouterr().out
