"""A card disabled as lost through the API reaches a real door at once: ``central serve`` (a
process, its console) publishes the new version right after the master commit, not on a timer.
The office's sweep of unpublished versions is set to an hour here, so a path that waited for
it would never see the door deny the card within the (generous) bound below."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest

from edgegate.central.services import open_office, tokens
from edgegate.contract.topics import DoorTopics
from edgegate.sim.broker import Broker
from tests.console.site import SETUP, Site

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CARD = "0F00BC614E"


@pytest.fixture
def site(tmp_path: Path, broker: Broker) -> Iterator[Site]:
    s = Site(tmp_path, broker, {})
    yield s
    s.close()


def door_decisions(broker: Broker) -> tuple[mqtt.Client, queue.Queue[tuple[str, str]]]:
    """(type, reason) of every decision the door publishes on its events topic."""
    got: queue.Queue[tuple[str, str]] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-lost-card")

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        ev = json.loads(msg.payload)
        if ev.get("type") in ("access_granted", "access_denied") and ev.get("credential") == CARD:
            got.put((ev["type"], ev.get("reason", "")))

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe(DoorTopics("hq", "front").events, qos=1)
    client.loop_start()
    return client, got


def tap_until(reader, got: queue.Queue[tuple[str, str]], kind: str, timeout: float) -> str:  # type: ignore[no-untyped-def]
    """Tap (one tap in flight) until the door decides ``kind``; its reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reader.tap(CARD)
        try:
            decided, reason = got.get(timeout=2)
        except queue.Empty:
            continue
        if decided == kind:
            return reason
    raise AssertionError(f"the door did not decide {kind} within {timeout:g} s")


def test_lost_card_reaches_the_door_without_waiting_for_the_sweep(site: Site) -> None:
    text = site.config_path.read_text()
    site.config_path.write_text(
        text.replace("[central]\n", "[central]\npending_sweep_seconds = 3600\n")
    )
    assert site.central("people", "add", "alice", "--name", "Alice", "--card", CARD) in (0, 3)
    office = open_office(site.config)
    token = tokens.create(office.engine, SETUP, "desk", "reception")
    office.close()
    site.serve()
    _door, reader = site.door("front")
    watcher, got = door_decisions(site.broker)
    try:
        tap_until(reader, got, "access_granted", 60)  # the door holds the card
        r = httpx.post(
            f"{site.url}/api/v1/cards/{CARD}/disable",
            json={"reason": "lost"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.json()["published"] is True  # by the request itself, after the PUBACK
        # Generous for a loaded machine, and still far below the hour-long sweep.
        assert tap_until(reader, got, "access_denied", 30) == "revoked"
    finally:
        watcher.loop_stop()
        watcher.disconnect()
