"""Home Assistant MQTT discovery: the door as a lock with sensors, announced on the broker.

``discovery_messages(config)`` is pure: it returns the (topic, payload, retain) triples the sync
layer publishes (retained) each time it connects, when ``[homeassistant] enabled`` is set. Home
Assistant then shows one device per door with:

- a ``lock`` whose state follows ``state`` (``lock``: locked/released);
- a ``binary_sensor`` (door) for the contact, when ``[gpio] door_contact`` is wired;
- ``sensor``s for the mode, the last granted access (from ``events``), today's traffic and the
  journal depth (from ``telemetry``).

Every entity uses the door's ``availability`` topic, so it goes unavailable with the door's
last will. Entities read the door's existing topics; nothing is published for Home Assistant
alone except these discovery configs.

Unlocking from Home Assistant is deliberately not possible: the door obeys only signed commands
on ``cmd`` (PRODUCT.md), and Home Assistant cannot sign. HA's MQTT lock requires a command
topic, so the lock's points at ``<root>/ha/lock``, which the door never subscribes to; HA keeps
the lock non-optimistic, so pressing "unlock" changes nothing shown. Remote opening goes
through the central office (docs/homeassistant.md).

The value templates read these fields (the sync layer's payloads must keep them):
``state``: ``lock``, ``contact``, ``mode``; ``telemetry``: ``today`` (granted, denied,
passages, exits; ``Door.today_counts``) and ``journal_depth`` (events not yet acknowledged);
``events``: ``type``, ``ts``.
"""

from __future__ import annotations

from typing import Any

from edgegate import __version__
from edgegate.config.models import Config

# Message = (topic, payload, retain); the caller JSON-encodes the payload.
Message = tuple[str, dict[str, Any], bool]

PAYLOAD_ONLINE = "online"
PAYLOAD_OFFLINE = "offline"
MODES = ["normal", "lockdown", "emergency", "attended"]
# Keys HA's MQTT integration requires per component (its discovery schemas).
REQUIRED = {
    "lock": ("command_topic",),
    "binary_sensor": ("state_topic",),
    "sensor": ("state_topic",),
}


def topic_root(config: Config) -> str:
    return f"edgegate/{config.door.site}/{config.door.id}"


def node_id(config: Config) -> str:
    return f"edgegate_{config.door.site}_{config.door.id}"


def device_block(config: Config) -> dict[str, Any]:
    door = config.door
    return {
        "identifiers": [node_id(config)],
        "name": door.name or f"{door.site} {door.id}",
        "manufacturer": "edgegate",
        "model": f"edgegate {door.mode}",
        "sw_version": __version__,
        "suggested_area": door.zone or None,
    }


def _entities(config: Config) -> list[tuple[str, str, dict[str, Any]]]:
    root = topic_root(config)
    state, telemetry, events = f"{root}/state", f"{root}/telemetry", f"{root}/events"
    traffic = "(value_json.today.passages + value_json.today.exits)"
    entities: list[tuple[str, str, dict[str, Any]]] = [
        (
            "lock",
            "lock",
            {
                "name": "Lock",
                "state_topic": state,
                "value_template": "{{ 'UNLOCKED' if value_json.lock == 'released' else 'LOCKED' }}",
                "state_locked": "LOCKED",
                "state_unlocked": "UNLOCKED",
                # Never obeyed by the door (unsigned): see the module docstring.
                "command_topic": f"{root}/ha/lock",
                "payload_lock": "LOCK",
                "payload_unlock": "UNLOCK",
                "optimistic": False,
            },
        ),
        (
            "sensor",
            "mode",
            {
                "name": "Mode",
                "state_topic": state,
                "value_template": "{{ value_json.mode }}",
                "device_class": "enum",
                "options": MODES,
                "icon": "mdi:door-closed-lock",
            },
        ),
        (
            "sensor",
            "last_access",
            {
                "name": "Last access",
                "state_topic": events,
                # Other events leave the state as it is (``this`` is the entity's own state);
                # before the first grant that state is 'unknown', which a timestamp sensor
                # cannot parse, so it becomes 'None' (HA's MQTT sensors read it as no value).
                "value_template": "{{ value_json.ts if value_json.type == 'access_granted' "
                "else (this.state if this.state not in ('unknown', 'unavailable') "
                "else 'None') }}",
                "device_class": "timestamp",
            },
        ),
        (
            "sensor",
            "traffic_today",
            {
                "name": "Traffic today",
                "state_topic": telemetry,
                # As `edgegate stats`: passages and exits, or grants where nothing counts them.
                "value_template": f"{{{{ {traffic} if {traffic} > 0 "
                "else value_json.today.granted }}",
                "json_attributes_topic": telemetry,
                "json_attributes_template": "{{ value_json.today | tojson }}",
                "state_class": "total_increasing",
                "unit_of_measurement": "people",
                "icon": "mdi:account-multiple",
            },
        ),
        (
            "sensor",
            "journal_depth",
            {
                "name": "Journal depth",
                "state_topic": telemetry,
                "value_template": "{{ value_json.journal_depth }}",
                "state_class": "measurement",
                "unit_of_measurement": "events",
                "entity_category": "diagnostic",
                "icon": "mdi:tray-full",
            },
        ),
    ]
    if config.gpio.door_contact is not None:
        entities.insert(
            1,
            (
                "binary_sensor",
                "contact",
                {
                    "name": "Door",
                    "state_topic": state,
                    "value_template": "{{ 'ON' if value_json.contact == 'open' else 'OFF' }}",
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "device_class": "door",
                },
            ),
        )
    return entities


def discovery_messages(config: Config) -> list[Message]:
    """The retained discovery configs for this door; empty when discovery is off."""
    if not config.homeassistant.enabled:
        return []
    prefix = config.homeassistant.prefix
    node = node_id(config)
    device = {k: v for k, v in device_block(config).items() if v is not None}
    out: list[Message] = []
    for component, object_id, payload in _entities(config):
        full = {
            **payload,
            "unique_id": f"{node}_{object_id}",
            "availability_topic": f"{topic_root(config)}/availability",
            "payload_available": PAYLOAD_ONLINE,
            "payload_not_available": PAYLOAD_OFFLINE,
            "device": device,
            "qos": 1,
        }
        out.append((f"{prefix}/{component}/{node}/{object_id}/config", full, True))
    return out


def removal_topics(config: Config) -> list[str]:
    """Topics on which an empty retained message removes each entity (HA's documented way),
    e.g. when a door is decommissioned or discovery is switched off."""
    prefix, node = config.homeassistant.prefix, node_id(config)
    return [
        f"{prefix}/{component}/{node}/{object_id}/config"
        for component, object_id, _ in _entities(config)
    ]
