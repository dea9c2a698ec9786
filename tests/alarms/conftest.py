"""Fixtures of the alarm tests: the office (real `central serve` on a real broker) with
[alarms] and [smtp] pointing at real local receivers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgegate.central.config import load_central
from edgegate.sim.broker import Broker
from tests.alarms.receivers import MailReceiver, WebhookReceiver
from tests.central.conftest import Central, make_central, subscriber  # noqa: F401 (fixture)

WEBHOOK_SECRET = "receiver-and-office-share-this-0123"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    w = WebhookReceiver(secret=WEBHOOK_SECRET)
    yield w
    w.close()


@pytest.fixture
def mail() -> Iterator[MailReceiver]:
    m = MailReceiver()
    yield m
    m.close()


def alarm_office(
    tmp_path: Path,
    broker: Broker,
    webhook: WebhookReceiver,
    mail: MailReceiver,
    db: str | None = None,
    **alarms: object,
) -> Central:
    """An office with alarms escalating fast to ``webhook`` and ``mail``; ``db``: its store
    (an SQLite file in ``tmp_path`` by default, or a PostgreSQL URL)."""
    central = make_central(tmp_path, broker.port, db)
    secret = tmp_path / "alarm-webhook.secret"
    secret.write_text(f"{webhook.secret}\n")
    secret.chmod(0o600)
    settings = {
        "escalate_minutes": {"critical": 0.02, "high": 0.02, "medium": 0, "low": 0},
        "webhook_urls": [webhook.url],
        "webhook_secret_file": str(secret),
        "email_to": ["guard@example.org"],
        "check_seconds": 0.2,
        **alarms,
    }
    lines = ["", "[alarms]"]
    lines += [f"{k} = {_toml(v)}" for k, v in settings.items() if v is not None]
    lines += [
        "",
        "[smtp]",
        'host = "127.0.0.1"',
        f"port = {mail.port}",
        'security = "none"',
        'sender = "office@example.org"',
        "timeout_seconds = 2",
    ]
    with central.path.open("a") as f:
        f.write("\n".join(lines) + "\n")
    config = load_central(central.path)
    return Central(central.path, config, central.verifier, central.signer)


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)
