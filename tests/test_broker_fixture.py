"""The real broker the MQTT tests run against: it starts, carries QoS 1, dies and comes back."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest

from edgegate.sim.broker import Broker


def _roundtrip(b: Broker, payload: bytes) -> bytes:
    got = threading.Event()
    box: list[bytes] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda _c, _u, m: (box.append(m.payload), got.set())
    c.connect(b.host, b.port)
    c.subscribe("t/x", qos=1)
    c.loop_start()
    try:
        c.publish("t/x", payload, qos=1).wait_for_publish(5)
        assert got.wait(5)
    finally:
        c.loop_stop()
        c.disconnect()
    return box[0]


def test_broker_carries_qos1_and_restarts_on_same_port(broker: Broker):
    assert _roundtrip(broker, b"one") == b"one"
    port = broker.port
    broker.stop(kill=True)
    assert not broker.running
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    with pytest.raises(OSError):
        c.connect(broker.host, port)
    broker.start()
    assert broker.port == port and broker.starts == 2
    assert _roundtrip(broker, b"two") == b"two"
