"""The outbox's e-mail channel against a real local SMTP server (aiosmtpd): a row is sent as
a plain-text e-mail; while the server is down the row fails, is logged and retried with the
outbox's backoff; nothing is sent twice."""

from __future__ import annotations

import asyncio
import time
from email.message import Message

import httpx
from sqlalchemy import select

from edgegate.central.alarms_config import SmtpSection
from edgegate.central.notify import email_body, email_channel
from edgegate.central.schema.console import outbox as outbox_t
from edgegate.central.services import outbox
from tests.alarms.receivers import MailReceiver
from tests.console.conftest import _operators_db, office  # noqa: F401 (fixtures)


def test_email_rows_are_sent_and_retried(office, mail: MailReceiver):  # noqa: F811
    cfg = SmtpSection(
        host="127.0.0.1",
        port=mail.port,
        security="none",
        sender="office@example.org",
        timeout_seconds=2,
    )
    outbox.register_channel("email", email_channel(cfg))
    try:
        row = outbox.enqueue(
            office.engine,
            "email",
            "guard@example.org",
            "alarm_escalated",
            email_body("Door forced at front", "Alarm 7: door_forced\n"),
        )
        bad = outbox.enqueue(office.engine, "email", "x@example.org", "alarm_escalated", "{")

        async def deliver(now: float) -> None:
            async with httpx.AsyncClient() as client:
                await outbox.Dispatcher(office.engine, client).run_once(now)

        asyncio.run(deliver(time.time()))  # the SMTP server is not running yet
        with office.engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(select(outbox_t))}
        assert rows[row].status == "pending" and rows[row].attempts == 1
        assert "127.0.0.1" in rows[row].last_error
        assert "not an e-mail row" in rows[bad].last_error
        mail.start()
        asyncio.run(deliver(time.time() + 3600))  # past the backoff
        asyncio.run(deliver(time.time() + 7200))  # nothing left to send for that row
        with office.engine.connect() as conn:
            assert (
                conn.execute(select(outbox_t.c.status).where(outbox_t.c.id == row)).scalar()
                == "sent"
            )
        assert len(mail.messages) == 1
        msg: Message = mail.messages[0]
        assert msg["Subject"] == "Door forced at front" and msg["From"] == "office@example.org"
        assert mail.rcpt == [["guard@example.org"]]
        assert "Alarm 7: door_forced" in msg.get_payload()
    finally:
        outbox.CHANNELS.pop("email", None)
