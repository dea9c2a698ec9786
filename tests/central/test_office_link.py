"""The office's own broker link in `central doors` (CLI, another process than serve) and the
console's doors board: each serve instance's row in the store's instances table, written at
every duty check (edgegate/central/leader.py), read by edgegate/central/instances.py. A real
mosquitto of this test's own is killed and restarted under a running serve."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegate.central import instances
from edgegate.central.services import doors, open_office
from edgegate.sim.broker import Broker
from tests.central.conftest import ServerThread, make_central, wait_until

pytestmark = pytest.mark.broker


def test_doors_says_whether_the_office_is_on_the_broker(
    tmp_path: Path, office_db: str, capsys
) -> None:
    with Broker() as broker:
        central = make_central(tmp_path, broker.port, office_db)

        def links() -> list[dict]:
            capsys.readouterr()
            assert central.run("doors", "--json") == 0
            return json.loads(capsys.readouterr().out)["office"]

        def state() -> str | None:
            found = links()
            return found[0]["state"] if found else None

        central.db()  # the store exists, no serve runs on it
        assert links() == []
        capsys.readouterr()
        assert central.run("doors") == 0
        assert capsys.readouterr().out.startswith("office: no central serve is running")
        server = ServerThread(central)
        office = open_office(central.config)
        try:
            wait_until(lambda: state() == "connected", 10, "connected")
            up = links()[0]
            capsys.readouterr()
            assert central.run("doors") == 0
            assert "connected to the broker since" in capsys.readouterr().out.splitlines()[0]

            killed = time.time()
            broker.stop(kill=True)
            wait_until(lambda: state() == "disconnected", 15, "disconnected")
            down = links()[0]
            assert down["since"] >= killed - 1 and down["error"]
            capsys.readouterr()
            assert central.run("doors") == 0
            first = capsys.readouterr().out.splitlines()[0]
            assert "NOT CONNECTED to the broker since" in first and "last error" in first
            # The board the console renders says the same.
            board = doors.board(office)["office"]
            assert not board["connected"] and "NOT CONNECTED" in board["lines"][0]

            back = time.time()
            broker.start()
            wait_until(lambda: state() == "connected", 20, "connected again")
            again = links()[0]
            assert again["since"] >= back - 1 > up["since"] and again["error"] == ""
            # An instance that stops beating is taken for dead, whatever it last said.
            dead = instances.stale_after(central.config.central.duty_check_seconds)
            later = time.time() + dead + 1
            stale = central.q(instances.office_links, later, dead)[0]
            assert stale["state"] == "stale" and stale["broker_state"] == "connected"
            assert "NO WORD from central serve" in instances.describe(stale)
        finally:
            server.stop()
        assert links() == []  # a clean stop removes its row
        office.close()
        central.close()


@given(
    st.sampled_from(["connecting", "connected", "disconnected"]),
    st.floats(0, 1e6),
    st.floats(0, 1e4),
    st.floats(0.1, 600),
)
def test_an_instance_is_stale_exactly_when_its_heartbeat_is_older_than_the_limit(
    said: str, heartbeat: float, age: float, stale: float
) -> None:
    row = {"broker": said, "heartbeat": heartbeat}
    now = heartbeat + age
    got = instances.link_state(row, now, stale)
    assert got == ("stale" if now - heartbeat > stale else said)
    assert instances.link_state(row, heartbeat, stale) == said  # just heard: as it said
