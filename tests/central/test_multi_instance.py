"""Two ``central serve`` instances on one PostgreSQL share the doors' events (MQTT shared
subscription) while one of them is killed with -9 and the broker is killed twice: every event
is archived exactly once, every door's receipts cover all its events, and the surviving
instance holds the singleton duties (it answers a snapshot request, raises an alarm).

The doors are light simulated doors (edgegate/sim/light_doors.py: plain paho clients that keep
every event until a signed receipt covers it and publish again what none covered once receipts
stood still), four of them, 2,500 events each: 10,000 events, ~30 s on the 2-core machine when
quiet (load 3), several minutes at load 20; ``EDGEGATE_MULTI_EVENTS`` sets another total."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from edgegate.central.engine import make_engine
from edgegate.central.schema.alarms import alarms
from edgegate.central.schema.archive import events, instances
from edgegate.sim.broker import Broker
from edgegate.sim.light_doors import LightDoor
from edgegate.sim.postgres import Postgres
from tests.central.conftest import SITE, make_central
from tests.conftest import EDGEGATE, REPO

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.timeout(600)]
DOORS = 4
PER_DOOR = int(os.environ.get("EDGEGATE_MULTI_EVENTS", "10000")) // 4
N = DOORS * PER_DOOR
RESEND_SECONDS = 3.0


def wait_for(cond, timeout: float, what: str, tick=None):
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        if tick is not None:
            tick()
        value = cond()
        if value:
            # Where a slow run spent its time (pytest -s shows it).
            print(f"{what}: {time.monotonic() - start:.1f} s", file=sys.stderr)
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_two_instances_lose_nothing_and_hand_duties_over(
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
    config_b = tmp_path / "central-b.toml"
    config_b.write_text(central.path.read_text().replace('instance = "a"', 'instance = "b"'))
    engine = make_engine(db)
    logs: dict[str, Path] = {}

    def serve(name: str, config: Path) -> subprocess.Popen[bytes]:
        logs[name] = tmp_path / f"serve-{name}.log"
        with logs[name].open("ab") as log:
            return subprocess.Popen(
                [*EDGEGATE, "central", "serve", "--config", str(config)],
                cwd=REPO,
                env=subprocess_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def subscribed(name: str) -> bool:
        return logs[name].read_bytes().count(b"central_subscribed") >= 1

    def archived() -> int:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar_one()

    def leaders() -> dict[str, bool]:
        with engine.connect() as conn:
            return dict(conn.execute(select(instances.c.id, instances.c.leader)).all())

    procs = {"a": serve("a", central.path), "b": serve("b", config_b)}
    doors = [
        LightDoor(broker.host, broker.port, SITE, f"d{i}", central.verifier, RESEND_SECONDS, 20)
        for i in range(DOORS)
    ]

    def resend() -> None:
        for d in doors:
            d.resend_if_stalled()

    t0 = time.monotonic()
    try:
        wait_for(lambda: subscribed("a") and subscribed("b"), 180, "both instances subscribed")
        wait_for(lambda: sum(leaders().values()) == 1, 30, "one duty holder")
        for d in doors:
            d.start()
        wait_for(lambda: all(d.connected.is_set() for d in doors), 30, "doors connected")
        for d in doors:
            d.publish(PER_DOOR)

        kills = []
        wait_for(lambda: archived() >= N * 2 // 10, 240, "20% archived", resend)
        broker.stop(kill=True)
        broker.start()
        kills.append(("broker", archived()))
        wait_for(lambda: archived() >= N * 4 // 10, 240, "40% archived", resend)
        holder = next(name for name, held in leaders().items() if held)
        survivor = "b" if holder == "a" else "a"
        procs[holder].send_signal(signal.SIGKILL)
        procs[holder].wait(10)
        kills.append((f"serve {holder} (duty holder)", archived()))
        wait_for(lambda: archived() >= N * 6 // 10, 240, "60% archived", resend)
        broker.stop(kill=True)
        broker.start()
        kills.append(("broker", archived()))

        wait_for(lambda: archived() >= N, 300, f"all {N} events archived", resend)
        wait_for(lambda: all(d.done for d in doors), 120, "receipts cover every event", resend)
        stored_at = time.monotonic() - t0

        # The survivor holds the duties: it says so, answers a snapshot request and raises
        # the alarm of a forced door (both are singleton duties).
        assert leaders()[survivor] is True
        doors[0].request_snapshot()
        wait_for(lambda: doors[0].snapshots, 60, "a snapshot from the survivor")
        forced = doors[1].send_event("door_forced")

        def alarm_raised() -> bool:
            with engine.connect() as conn:
                q = select(alarms.c.id).where(alarms.c.event_id == forced)
                return conn.execute(q).first() is not None

        wait_for(alarm_raised, 60, "the forced door's alarm", resend)
        assert procs[survivor].poll() is None
    except AssertionError as exc:
        tails = {name: log.read_text(errors="replace")[-3000:] for name, log in logs.items()}
        raise AssertionError(
            f"{exc}\n" + "\n".join(f"--- {k}:\n{v}" for k, v in tails.items())
        ) from None
    finally:
        for d in doors:
            d.stop()
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()

    with engine.connect() as conn:
        ids = conn.execute(select(events.c.id)).scalars().all()
        per_door = dict(
            conn.execute(select(events.c.door, func.count()).group_by(events.c.door)).all()
        )
    engine.dispose()
    assert len(ids) == len(set(ids)) == N + 1, "an event is missing or archived twice"
    assert per_door == {f"d{i}": PER_DOOR + (i == 1) for i in range(DOORS)}
    assert all(d.bad_receipts == 0 for d in doors)
    print(
        f"{N} events from {DOORS} doors archived once in {stored_at:.1f} s; kills at "
        f"{kills}; re-sent by the doors: {sum(d.resent for d in doors)}"
    )
