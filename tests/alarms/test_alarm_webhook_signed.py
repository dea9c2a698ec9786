"""`[alarms] webhook_urls` are signed like the console's webhooks (notify.webhook_headers),
checked by a real local HTTP receiver with the standard library; without a secret nothing is
posted (the escalation fails, is recorded and counted, and is retried)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import insert

from edgegate.central.alarms import AlarmService
from edgegate.central.engine import make_engine
from edgegate.central.notify import NotifyError, post_webhook
from edgegate.central.schema.alarms import alarms
from edgegate.central.server import CentralServer
from edgegate.central.services import ensure_schema
from edgegate.sim.broker import Broker
from tests.alarms.conftest import alarm_office
from tests.alarms.receivers import MailReceiver, WebhookReceiver
from tests.central.conftest import SITE

pytestmark = pytest.mark.broker


def test_configured_webhooks_are_signed_never_unsigned(
    tmp_path: Path,
    broker: Broker,
    webhook: WebhookReceiver,
    mail: MailReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    central = alarm_office(tmp_path, broker, webhook, mail, webhook_secret_file=None)
    server = CentralServer(central.config, central.signer)  # not started: its sender only
    svc = AlarmService(make_engine(central.config.central.db), central.config.alarms, SITE)
    ensure_schema(svc.engine)
    server.alarms = svc
    now = time.time()
    with svc.engine.begin() as conn:
        alarm_id = conn.execute(
            insert(alarms).values(site=SITE, door="front", type="door_forced", priority="high",
                                  state="new", raised=now - 120, detail={})
        ).inserted_primary_key[0]  # fmt: skip

    # No secret: nothing is posted, the failure is recorded, counted, and retried later.
    assert svc.escalate(now, server._send_escalation, has_smtp=False) == 0
    assert webhook.bodies == [] and webhook.refused == []
    failed = [h for h in svc.history(alarm_id) if h["action"] == "escalation_failed"]
    assert len(failed) == 1 and "no webhook secret" in failed[0]["note"]
    assert server.counters["alarm_webhook_no_secret"] == 1

    # The secret as a systemd credential: signed; the receiver checks it and takes it.
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "alarm-webhook-secret").write_text(webhook.secret + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert svc.escalate(time.time(), server._send_escalation, has_smtp=False) == 1
    assert webhook.refused == [] and [b["alarm"]["id"] for b in webhook.bodies] == [alarm_id]
    headers = webhook.headers[0]
    assert headers["X-Edgegate-Event"] == "alarm_escalated"
    assert headers["X-Edgegate-Delivery"] == f"alarm-{alarm_id}"
    assert headers["User-Agent"] == "edgegate-webhook/1"  # the same headers as the outbox's

    # The signature means something: another secret, or a changed body, is refused.
    with pytest.raises(NotifyError, match="HTTP 401"):
        post_webhook(webhook.url, "{}", "not-the-receivers-secret", event="x", delivery="1")
    assert webhook.refused == ["bad signature"]
    server._worker.shutdown()
    server._store.shutdown()
    svc.engine.dispose()
