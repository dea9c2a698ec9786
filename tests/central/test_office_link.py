"""The office's own broker link in `central doors` (CLI, another process than serve) and the
console's doors board: serve records it in the store's instances table with a heartbeat
(edgegate/central/instances.py). A real mosquitto of this test's own is killed and restarted
under a running serve."""

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

        def link() -> dict:
            capsys.readouterr()
            assert central.run("doors", "--json") == 0
            return json.loads(capsys.readouterr().out)["office"]

        central.db()  # the store exists, no serve has run on it
        assert link()["state"] == "none"
        server = ServerThread(central)
        try:
            wait_until(lambda: link()["state"] == "connected", 10, "connected")
            up = link()
            capsys.readouterr()
            assert central.run("doors") == 0
            assert capsys.readouterr().out.startswith("office: connected to the broker since")

            killed = time.time()
            broker.stop(kill=True)
            down = wait_until(
                lambda: (d := link())["state"] == "disconnected" and d, 15, "disconnected"
            )
            assert down["since"] >= killed - 1 and down["error"]
            capsys.readouterr()
            assert central.run("doors") == 0
            out = capsys.readouterr().out
            assert "office: NOT CONNECTED to the broker since" in out and "last error" in out
            # The board the console renders says the same.
            office = open_office(central.config)
            board = doors.board(office)
            assert board["office"]["state"] == "disconnected"
            assert "NOT CONNECTED" in board["office"]["text"]

            back = time.time()
            broker.start()
            again = wait_until(
                lambda: (d := link())["state"] == "connected" and d, 20, "connected again"
            )
            assert again["since"] >= back - 1 > up["since"] and again["error"] == ""
            # A serve that stops beating is stale, whatever it last said.
            later = time.time() + instances.STALE_SECONDS + 1
            stale = central.q(instances.office_link, later)
            assert stale["state"] == "stale" and stale["broker_state"] == "connected"
            assert "NO WORD from central serve" in instances.describe(stale)
        finally:
            server.stop()
        assert link()["state"] == "stopped"
        office.close()
        central.close()


STATES = st.sampled_from(instances.STATES)


@given(st.lists(st.tuples(STATES, st.one_of(st.none(), st.text(max_size=8))), max_size=20))
def test_since_moves_only_with_the_state_and_a_connection_clears_the_error(
    steps: list[tuple[str, str | None]],
) -> None:
    link = instances.BrokerLink("i", "h", 1, 0.0)
    for t, (state, error) in enumerate(steps, 1):
        before = (link.state, link.since, link.error)
        changed = link.change(state, float(t), error)
        assert link.state == state
        assert link.since == (before[1] if state == before[0] else float(t))
        if state == "connected":
            assert link.error == ""
        elif error is not None:
            assert link.error == error
        else:
            assert link.error == before[2]
        assert changed == ((link.state, link.error) != (before[0], before[2]))
