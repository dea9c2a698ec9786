"""MQTT sync: the door's link to the central office (docs/mqtt.md is the contract)."""
