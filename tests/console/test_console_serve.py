"""``edgegate central serve`` with an ``[http]`` section, as a real process on a real broker:
the console answers, a door coming online and going offline shows on the live board."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edgegate.central.config import load_central
from edgegate.central.services import open_office, operators, outbox, tokens
from edgegate.central.web.pages import commands as commands_page
from edgegate.central.web.pages import muster as muster_page
from edgegate.cli.main import main
from edgegate.sim.broker import Broker
from edgegate.store.journal import rfc3339
from tests.central.conftest import FakeDoor, wait_until
from tests.conftest import EDGEGATE, REPO
from tests.console.conftest import ADMIN, PASSWORD, csrf_of, write_config
from tests.console.site import Stream

pytestmark = pytest.mark.broker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Office:
    def __init__(self, tmp_path: Path, broker: Broker) -> None:
        self.port = free_port()
        self.path = write_config(tmp_path, broker.port, self.port)
        assert main(["central", "keygen", "--config", str(self.path)]) == 0
        office = open_office(load_central(self.path))
        operators.add(office.engine, ADMIN, "guard", "security", PASSWORD)
        office.engine.dispose()
        self.log = (tmp_path / "serve.log").open("w+")
        self.proc = subprocess.Popen(
            [*EDGEGATE, "central", "serve", "--config", str(self.path)],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._up, 90, "the console to answer")

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.output()
        try:
            return httpx.get(self.url + "/signin", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


@pytest.fixture
def office(tmp_path: Path, broker: Broker) -> Iterator[Office]:
    o = Office(tmp_path, broker)
    yield o
    if o.proc.poll() is None:
        o.proc.kill()
        o.proc.wait(10)


def signed_in(url: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=10, follow_redirects=True)
    form = c.get("/signin")
    r = c.post(
        "/signin", data={"username": "guard", "password": PASSWORD, "csrf": csrf_of(form.text)}
    )
    assert r.status_code == 200 and "guard (security)" in r.text
    return c


def test_serve_console_live_doors(office: Office, broker: Broker) -> None:
    c = signed_in(office.url)
    assert "No door has reported yet" in c.get("/doors").text
    door = FakeDoor(broker, "front")
    try:
        with c.stream("GET", "/live/doors", timeout=30) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: doors"  # the board as it is now, at once
            door.online()
            t0 = time.monotonic()
            online = _until_frame(lines, 'data-door="front" class="online')
            assert time.monotonic() - t0 < 5
            assert online
            door.send(door.topics.availability, b"offline", retain=True)
            t0 = time.monotonic()
            assert _until_frame(lines, 'data-door="front" class="offline')
            # Within a second on this machine, even loaded (figures in docs/benchmarks.md).
            assert time.monotonic() - t0 < 5
    finally:
        door.close()
    assert office.stop() == 0, office.output()
    assert "console_started" in office.output()


def test_serve_delivers_signed_webhooks_of_door_events(office: Office, broker: Broker) -> None:
    from tests.console.test_outbox import Receiver

    receiver = Receiver()
    engine = open_office(load_central(office.path)).engine
    _id, secret = outbox.add_webhook(engine, ADMIN, receiver.url, ["access_denied"])
    door = FakeDoor(broker, "side")
    try:
        door.online()
        time.sleep(1.5)  # the fan-out starts from the archive's end at its first tick
        door.publish_event(door.event("access_granted", person="alice"))
        door.publish_event(door.event("access_denied", reason="revoked"))
        wait_until(lambda: receiver.got, 30, "the webhook delivery")
    finally:
        door.close()
        receiver.server.shutdown()
    headers, body = receiver.got[0]
    assert json.loads(body)["event"]["reason"] == "revoked"
    assert headers["x-edgegate-signature"] == outbox.sign(
        secret, int(headers["x-edgegate-timestamp"]), body
    )
    assert len(receiver.got) == 1  # only the type it asked for
    assert office.stop() == 0


def test_serve_console_live_commands_and_muster(office: Office, broker: Broker) -> None:
    """The commands page and the muster list follow the live feed (no polling): a command
    sent through the console shows as sent, then with the door's acknowledgement; a passage
    shows on the muster list; each well before the pages' periodic refresh."""
    engine = open_office(load_central(office.path)).engine
    token = tokens.create(engine, ADMIN, "live", "security")
    engine.dispose()
    assert min(commands_page.REFRESH_SECONDS, muster_page.REFRESH_SECONDS) > 20
    door = FakeDoor(broker, "front")
    streams = [Stream(office.url, p, token) for p in ("/live/commands", "/live/muster")]
    cmds, roll = streams
    try:
        for s in streams:
            assert s.open.wait(30), "a live stream did not open"
        wait_until(lambda: "None yet" in cmds.last_frame(), 20, "the commands as they are")
        wait_until(lambda: "Nobody entered" in roll.last_frame(), 20, "the list as it is")
        door.online()
        r = httpx.post(
            office.url + "/api/v1/commands",
            json={"door": "front", "cmd": "unlock"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        cmd_id = r.json()["id"]
        row = rf'data-cmd="{cmd_id}">.*?<td class="ack">'
        wait_until(lambda: re.search(row + "waiting", cmds.last_frame(), re.S), 15, "sent")
        door.publish_event(door.event("command_ack", cmd_id=cmd_id, cmd="unlock", result="ok"))
        wait_until(
            lambda: re.search(row + r'front: <span class="ok">ok', cmds.last_frame(), re.S),
            15,
            "the door's acknowledgement",
        )
        now = rfc3339(time.time())  # inside the list's window (the fake door's are old)
        door.publish_event(
            door.event("access_granted", person="alice", direction="in", area="hall", ts=now)
        )
        wait_until(lambda: "<td>alice</td>" in roll.last_frame(), 15, "alice on the list")
    finally:
        for s in streams:
            s.close()
        door.close()
    assert office.stop() == 0, office.output()


def _until_frame(lines: Iterator[str], needle: str) -> bool:
    frame: list[str] = []
    for line in lines:
        if line == "":
            if needle in "\n".join(frame):
                return True
            frame = []
        else:
            frame.append(line)
    return False
