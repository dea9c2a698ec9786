"""edgegate: access control for every door, decided locally, synced over MQTT."""

__version__ = "0.1.0"
