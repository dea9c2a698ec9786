"""Home Assistant discovery: payloads HA accepts, templates that render, retained on a broker."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import jinja2
import paho.mqtt.client as mqtt
import pytest

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.sim.broker import Broker
from edgegate.sync.homeassistant import (
    REQUIRED,
    discovery_messages,
    removal_topics,
    topic_root,
)

# HA's discovery topic: <prefix>/<component>/[<node_id>/]<object_id>/config, ids [a-zA-Z0-9_-].
DISCOVERY_TOPIC = re.compile(
    r"^(?P<prefix>[A-Za-z0-9_-]+)/(?P<component>[a-z_]+)/(?P<node>[A-Za-z0-9_-]+)/"
    r"(?P<object>[A-Za-z0-9_-]+)/config$"
)
COMMON = ("name", "unique_id", "availability_topic", "payload_available", "device")


def config(tmp_path: Path, *, contact: bool = True, enabled: bool = True) -> Config:
    gpio: dict[str, Any] = {"pin_factory": "mock"}
    if contact:
        gpio["door_contact"] = 5
    return parse(
        {
            "door": {"site": "hq", "id": "front", "name": "Front entrance"},
            "gpio": gpio,
            "mqtt": {"host": "127.0.0.1"},
            "homeassistant": {"enabled": enabled},
            "storage": {"path": str(tmp_path / "d.db")},
        },
        tmp_path / "x.toml",
    )


def by_object(messages: list[tuple[str, dict[str, Any], bool]]) -> dict[str, dict[str, Any]]:
    out = {}
    for topic, payload, _ in messages:
        m = DISCOVERY_TOPIC.match(topic)
        assert m, topic
        out[m["object"]] = payload
    return out


def test_off_by_default(tmp_path: Path) -> None:
    assert discovery_messages(config(tmp_path, enabled=False)) == []


def test_payloads_have_what_home_assistant_requires(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    messages = discovery_messages(cfg)
    components = {}
    for topic, payload, retain in messages:
        m = DISCOVERY_TOPIC.match(topic)
        assert m, topic
        assert m["prefix"] == "homeassistant" and m["node"] == "edgegate_hq_front"
        assert retain
        components[m["object"]] = m["component"]
        for key in (*COMMON, *REQUIRED[m["component"]]):
            assert payload.get(key), (topic, key)
        assert payload["availability_topic"] == "edgegate/hq/front/availability"
        assert payload["device"]["identifiers"] == ["edgegate_hq_front"]
        assert payload["state_topic"].startswith(topic_root(cfg) + "/")
        json.dumps(payload)  # publishable as is
    assert components == {
        "lock": "lock",
        "contact": "binary_sensor",
        "mode": "sensor",
        "last_access": "sensor",
        "traffic_today": "sensor",
        "journal_depth": "sensor",
    }
    unique = [p["unique_id"] for _, p, _ in messages]
    assert len(set(unique)) == len(unique)
    # The lock's command topic is not the door's signed cmd topic.
    lock = by_object(messages)["lock"]
    assert lock["command_topic"] != "edgegate/hq/front/cmd"
    assert lock["optimistic"] is False


def test_no_contact_sensor_without_a_contact_input(tmp_path: Path) -> None:
    objects = by_object(discovery_messages(config(tmp_path, contact=False)))
    assert "contact" not in objects and "lock" in objects


def test_prefix_is_configurable(tmp_path: Path) -> None:
    cfg = config(tmp_path).model_copy(
        update={"homeassistant": config(tmp_path).homeassistant.model_copy(update={"prefix": "ha"})}
    )
    assert all(t.startswith("ha/") for t, _, _ in discovery_messages(cfg))


def render(template: str, value_json: dict[str, Any], this_state: str = "unknown") -> str:
    """Render a value template the way HA does (Jinja2, ``value_json``, ``this``)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(template).render(value_json=value_json, this={"state": this_state})


def test_templates_render_the_door_payloads(tmp_path: Path) -> None:
    o = by_object(discovery_messages(config(tmp_path)))
    state = {"lock": "released", "contact": "open", "mode": "lockdown", "alarms": []}
    assert render(o["lock"]["value_template"], state) == "UNLOCKED"
    assert render(o["lock"]["value_template"], {**state, "lock": "locked"}) == "LOCKED"
    assert render(o["contact"]["value_template"], state) == "ON"
    assert render(o["contact"]["value_template"], {**state, "contact": "closed"}) == "OFF"
    assert render(o["mode"]["value_template"], state) == "lockdown"
    assert "lockdown" in o["mode"]["options"]
    grant = {"type": "access_granted", "ts": "2026-11-23T10:00:00.000Z", "person": "alice"}
    assert render(o["last_access"]["value_template"], grant) == grant["ts"]
    denial = {"type": "access_denied", "ts": "2026-11-23T10:05:00.000Z"}
    assert render(o["last_access"]["value_template"], denial, grant["ts"]) == grant["ts"]
    assert render(o["last_access"]["value_template"], denial, "unknown") == "None"
    tel = {"today": {"granted": 7, "denied": 2, "passages": 5, "exits": 3}, "journal_depth": 4}
    assert render(o["traffic_today"]["value_template"], tel) == "8"
    no_inputs = {"today": {"granted": 7, "denied": 2, "passages": 0, "exits": 0}}
    assert render(o["traffic_today"]["value_template"], no_inputs) == "7"
    assert json.loads(render(o["traffic_today"]["json_attributes_template"], tel)) == tel["today"]
    assert render(o["journal_depth"]["value_template"], tel) == "4"


@pytest.mark.broker
def test_published_retained_and_seen_by_a_late_subscriber(tmp_path: Path, broker: Broker) -> None:
    """Published retained with paho (as the sync layer will), a subscriber that connects
    afterwards gets exactly these configs on homeassistant/#; removal clears them."""
    cfg = config(tmp_path)
    messages = discovery_messages(cfg)

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="door")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        for topic, payload, retain in messages:
            pub.publish(topic, json.dumps(payload), qos=1, retain=retain).wait_for_publish(5)
        received = collect(broker, "homeassistant/#")
        assert {t: json.loads(p) for t, p in received.items()} == {t: p for t, p, _ in messages}
        for topic in removal_topics(cfg):
            pub.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        assert collect(broker, "homeassistant/#", quiet=0.5) == {}
    finally:
        pub.loop_stop()
        pub.disconnect()


def collect(broker: Broker, pattern: str, quiet: float = 1.0) -> dict[str, bytes]:
    """Retained messages a fresh subscriber receives until ``quiet`` seconds pass silently."""
    got: dict[str, bytes] = {}
    last = [time.monotonic()]
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        assert msg.retain
        got[msg.topic] = msg.payload
        last[0] = time.monotonic()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ha")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect(broker.host, broker.port)
    sub.subscribe(pattern, qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        last[0] = time.monotonic()
        while time.monotonic() - last[0] < quiet:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    return got
