"""``publisher.wait_all``: a stopping ``central serve`` ends its PUBACK waits at once."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest

from edgegate.central.publisher import BrokerUnreachable, wait_all


def unacked() -> mqtt.MQTTMessageInfo:
    """paho's own handle of a QoS 1 publish whose PUBACK never comes (sent, then the
    client disconnected)."""
    info = mqtt.MQTTMessageInfo(1)
    info.rc = mqtt.MQTT_ERR_SUCCESS
    return info


def test_abort_ends_a_wait_that_would_last_minutes() -> None:
    stopping = threading.Event()
    threading.Timer(0.2, stopping.set).start()
    # Were the abort ignored, this would wait the whole hour: pytest's own timeout (and the
    # wording below, which only the abort path gives) tells the two apart, not a clock.
    with pytest.raises(BrokerUnreachable, match="stopping"):
        wait_all([unacked()], 3600, stopping)


def test_without_abort_the_timeout_is_what_ends_it() -> None:
    with pytest.raises(BrokerUnreachable, match=r"no PUBACK within 0\.3 s"):
        wait_all([unacked()], 0.3)


def test_acknowledged_messages_end_the_wait() -> None:
    info = unacked()
    info._set_as_published()
    wait_all([info], 3600, threading.Event())
