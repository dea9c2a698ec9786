"""``[alarms]`` and ``[smtp]`` of central.toml: alarm priorities, escalation and e-mail."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from edgegate.config.models import StrictModel

Priority = Literal["critical", "high", "medium", "low"]
PRIORITIES: tuple[Priority, ...] = ("critical", "high", "medium", "low")

# Door events that become alarms, with their default priority; "door_offline" is raised by
# the office itself when a door's availability turns offline.
DEFAULT_PRIORITIES: dict[str, Priority] = {
    "duress": "critical",
    "door_forced": "high",
    "emergency_on": "high",
    "tamper": "high",
    "door_offline": "high",
    "tailgating": "medium",
    "door_held_open": "medium",
    "assist_requested": "medium",
    "lockout": "medium",
    "reader_fault": "low",
}


class AlarmsSection(StrictModel):
    priorities: dict[str, Priority] = Field(
        default_factory=dict,
        description="Priority per alarm type, over the defaults (duress critical; door_forced, "
        "emergency_on, tamper, door_offline high; tailgating, door_held_open, "
        "assist_requested, lockout medium; reader_fault low).",
    )
    door_priorities: dict[str, dict[str, Priority]] = Field(
        default_factory=dict,
        description="Priority per door and alarm type, over priorities: "
        '{ front = { door_held_open = "high" } }.',
    )
    escalate_minutes: dict[Priority, float] = Field(
        default_factory=lambda: dict[Priority, float](
            {"critical": 1.0, "high": 5.0, "medium": 15.0, "low": 0.0}
        ),
        description="An alarm not acknowledged within this many minutes of being raised is "
        "escalated (webhooks and e-mail); 0 or absent: never.",
    )
    webhook_urls: list[str] = Field(
        default_factory=list,
        description="URLs that receive each escalation as a JSON POST, signed with "
        "webhook_secret_file (as the console's webhooks: docs/alarms.md).",
    )
    webhook_secret_file: Path | None = Field(
        None,
        description="File holding the secret (16 characters or more) that signs the posts to "
        "webhook_urls (else the systemd credential alarm-webhook-secret); without one they are "
        "not sent.",
    )
    email_to: list[str] = Field(
        default_factory=list,
        description="Addresses that receive each escalation by e-mail (needs [smtp]).",
    )
    check_seconds: float = Field(
        2.0,
        gt=0,
        le=300,
        description="How often `central serve` turns new events into alarms and escalates.",
    )

    @field_validator("priorities")
    @classmethod
    def _known_types(cls, value: dict[str, Priority]) -> dict[str, Priority]:
        unknown = sorted(set(value) - set(DEFAULT_PRIORITIES))
        if unknown:
            raise ValueError(f"unknown alarm type(s) {', '.join(unknown)}")
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r}: a webhook URL starts with http:// or https://")
        return value

    def priority(self, door: str, type_: str) -> Priority:
        return (
            self.door_priorities.get(door, {}).get(type_)
            or self.priorities.get(type_)
            or DEFAULT_PRIORITIES[type_]
        )


class SmtpSection(StrictModel):
    host: str = Field(description="SMTP server.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 submission, 25, 465).")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls (port 587), tls (implicit TLS, port 465) or none (a local relay).",
    )
    sender: str = Field(description="From: address of the office's e-mail.")
    username: str | None = Field(None, description="Login, if the server needs one.")
    password_file: Path | None = Field(
        None, description="File holding the password (else the systemd credential smtp-password)."
    )
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="Connect and send timeout.")
