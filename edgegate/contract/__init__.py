"""The MQTT contract shared by the door and the office: messages, topics and signing.

Both sides import it; it imports neither (docs/mqtt.md is its prose form).
"""
