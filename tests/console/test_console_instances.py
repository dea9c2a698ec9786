"""Two ``central serve`` instances with their consoles on one PostgreSQL and a real mosquitto:
the doors' events are shared among the instances (each is archived by one of them), yet every
console's live views show everything (central/live_feed.py):

* each instance's ``/live/events`` stream shows every event a door sent, once, whichever
  instance archived it; also after the instances' LISTEN connections were killed on the server
  (``pg_terminate_backend``: what a PostgreSQL restart or a lost connection does to them);
* the alarm the duty holder raised from a forced door reaches both consoles' ``/live/alarms``
  (the periodic alarm check is off: the duty holder is woken by the feed, whichever instance
  archived the event);
* an operator acknowledging one of them through one instance's console (its REST API: the
  alarm desk, as the console page and the CLI) shows on the other instance's ``/live/alarms``
  at once: the alarm service's transaction announces it, not the page's slow refresh;
* a command sent through one console shows on the other's ``/live/commands`` as sent, and
  with the door's acknowledgement (an event either instance may archive), at once too.

The streams are read over HTTP from the real processes, as a browser's EventSource does."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from edgegate.central.config import load_central
from edgegate.central.engine import make_engine
from edgegate.central.live_feed import APPLICATION_NAME
from edgegate.central.services import Actor, open_office, tokens
from edgegate.central.web.pages.alarms import REFRESH_SECONDS
from edgegate.central.web.pages.commands import REFRESH_SECONDS as COMMANDS_REFRESH
from edgegate.sim.broker import Broker
from edgegate.sim.postgres import Postgres
from tests.central.conftest import FakeDoor, make_central, wait_until
from tests.conftest import EDGEGATE, REPO
from tests.console.site import Stream, free_port

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(300)]
EVENTS = 20  # per round; the broker hands them to the two instances in turn
# The instances' LISTEN connections (the session's cluster has other tests' databases).
OURS = "application_name LIKE :app AND datname = current_database()"


def test_every_console_shows_every_event_and_alarm(
    tmp_path: Path,
    broker: Broker,
    postgres_cluster: Postgres,
    office_template: str,
    subprocess_env: dict[str, str],
) -> None:
    db = postgres_cluster.database(template=office_template)
    central = make_central(
        tmp_path, broker.port, db, instance="a", session_expiry_seconds=2, duty_check_seconds=0.5
    )
    base = central.path.read_text()
    ports = {"a": free_port(), "b": free_port()}
    configs: dict[str, Path] = {}
    for name, port in ports.items():
        configs[name] = tmp_path / f"central-{name}.toml"
        configs[name].write_text(
            base.replace('instance = "a"', f'instance = "{name}"')
            + f'\n[http]\nlisten = "127.0.0.1"\nport = {port}\n'
            # No periodic alarm check within the test: the duty holder raises the alarm only
            # because the live feed woke it, whichever instance archived the forced door.
            + "\n[alarms]\ncheck_seconds = 300\n"
        )
    office = open_office(load_central(configs["a"]))
    token = tokens.create(office.engine, Actor("test", "cli"), "live", "security")
    office.close()

    logs: dict[str, Path] = {}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, config in configs.items():
        logs[name] = tmp_path / f"serve-{name}.log"
        with logs[name].open("ab") as log:
            procs[name] = subprocess.Popen(
                [*EDGEGATE, "central", "serve", "--config", str(config)],
                cwd=REPO,
                env=subprocess_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    streams: list[Stream] = []
    door = FakeDoor(broker, "front")
    engine = make_engine(db)

    def up(name: str) -> bool:
        assert procs[name].poll() is None, logs[name].read_text()[-3000:]
        try:
            return httpx.get(urls[name] + "/signin", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def ready(name: str) -> bool:
        return up(name) and b"central_subscribed" in logs[name].read_bytes()

    def send_round(tag: str) -> list[str]:
        sent = []
        for _ in range(EVENTS):
            ev = door.event("access_granted", person="alice")
            ev["id"] = f"{tag}-{ev['id']}"
            door.publish_event(ev)
            sent.append(ev["id"])
        return sent

    try:
        wait_until(lambda: ready("a") and ready("b"), 180, "both consoles up and subscribed")
        events = {name: Stream(url, "/live/events", token) for name, url in urls.items()}
        alarms = {name: Stream(url, "/live/alarms", token) for name, url in urls.items()}
        commands_b = Stream(urls["b"], "/live/commands", token)
        streams += [*events.values(), *alarms.values(), commands_b]
        for s in streams:
            assert s.open.wait(30), "a live stream did not open"
        door.online()

        def listening() -> int:
            with engine.connect() as conn:
                q = f"SELECT count(*) FROM pg_stat_activity WHERE {OURS}"
                return conn.execute(text(q), {"app": APPLICATION_NAME + "%"}).scalar_one()

        wait_until(lambda: listening() == 2, 60, "both instances listening")

        # 1. Every event on both consoles, whichever instance archived it.
        first = send_round("r1")
        for name, s in events.items():
            wait_until(lambda s=s: set(first) <= set(s.ids), 30, f"round 1 on console {name}")

        # 2. The LISTEN connections killed on the server: the instances listen again, and
        # what was archived meanwhile still shows (read by cursor, not from the lost
        # notifications).
        with engine.connect() as conn:
            q = f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {OURS}"
            killed = conn.execute(text(q), {"app": APPLICATION_NAME + "%"}).all()
        assert len(killed) == 2
        second = send_round("r2")
        for name, s in events.items():
            wait_until(lambda s=s: set(second) <= set(s.ids), 30, f"round 2 on console {name}")
        wait_until(lambda: listening() == 2, 60, "both instances listening again")
        third = send_round("r3")
        for name, s in events.items():
            wait_until(lambda s=s: set(third) <= set(s.ids), 30, f"round 3 on console {name}")

        for name, s in events.items():
            shown = [i for i in s.ids if i in set(first + second + third)]
            assert len(shown) == len(set(shown)) == 3 * EVENTS, f"console {name}: {shown}"

        # 3. The alarms the duty holder raises reach both consoles' alarm views. Two forced
        # doors: the broker hands consecutive messages to the instances in turn, so the one
        # not holding the duties archives one of them.
        for _ in range(2):
            door.publish_event(door.event("door_forced"))
        for name, s in alarms.items():
            wait_until(
                lambda s=s: s.last_frame().count("<td>door_forced</td>") == 2,
                30,
                f"both alarms on console {name}",
            )

        # 4. Acknowledged through console a: console b shows it well before its periodic
        # refresh (alarms.REFRESH_SECONDS) would have.
        auth = {"Authorization": f"Bearer {token}"}
        listed = httpx.get(urls["a"] + "/api/v1/alarms", headers=auth, timeout=10).json()
        forced = min(a["id"] for a in listed if a["type"] == "door_forced")
        r = httpx.post(
            f"{urls['a']}/api/v1/alarms/{forced}/acknowledge",
            json={"note": "on my way"},
            headers=auth,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert REFRESH_SECONDS > 20
        wait_until(
            lambda: re.search(
                rf'data-alarm="{forced}">.*?<td>acknowledged</td>', alarms["b"].last_frame(), re.S
            ),
            20,
            "the acknowledgement on console b",
        )

        # 5. A command sent through console a: console b shows it sent, then acknowledged,
        # well before its periodic refresh (commands.REFRESH_SECONDS).
        assert COMMANDS_REFRESH > 20
        r = httpx.post(
            urls["a"] + "/api/v1/commands",
            json={"door": "front", "cmd": "unlock"},
            headers=auth,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        cmd_id = r.json()["id"]
        row = rf'data-cmd="{cmd_id}">.*?<td class="ack">'
        wait_until(
            lambda: re.search(row + "waiting", commands_b.last_frame(), re.S),
            20,
            "the command sent on console b",
        )
        door.publish_event(door.event("command_ack", cmd_id=cmd_id, cmd="unlock", result="ok"))
        wait_until(
            lambda: re.search(row + r'front: <span class="ok">ok', commands_b.last_frame(), re.S),
            20,
            "the door's acknowledgement on console b",
        )
    except AssertionError as exc:
        tails = {name: log.read_text(errors="replace")[-3000:] for name, log in logs.items()}
        raise AssertionError(
            f"{exc}\n" + "\n".join(f"--- {k}:\n{v}" for k, v in tails.items())
        ) from None
    finally:
        for s in streams:
            s.close()
        door.close()
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        engine.dispose()
    # The events really were shared: each instance archived some (its counters at the stop),
    # so each console showed events the other instance archived.
    for name, log in logs.items():
        stopped = [json.loads(x) for x in log.read_text().splitlines() if "central_stopped" in x]
        assert stopped and stopped[-1].get("events_archived", 0) > 0, f"{name} archived none"
