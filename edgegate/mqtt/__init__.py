"""The MQTT transport both sides share: one paho client factory, reading ``[mqtt]``."""
