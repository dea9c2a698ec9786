"""Sending the office's notifications: e-mail through SMTP, signed JSON webhooks.

E-mail uses the standard library's ``smtplib`` and ``email.message`` (no dependency: the
protocol is small and smtplib handles STARTTLS, implicit TLS and login); webhooks use httpx,
the office's HTTP client. Both block, so callers on the event loop run them in a thread.
A failure is a ``NotifyError`` naming the target and the cause; the caller retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx
import structlog
from sqlalchemy.engine import Engine

from edgegate.central.alarms_config import AlarmsSection, SmtpSection
from edgegate.errors import EdgegateError
from edgegate.mqtt.client import credential_file

log = structlog.get_logger(__name__)


class NotifyError(EdgegateError, OSError):
    """A notification could not be delivered (the caller retries it later)."""


def smtp_password(cfg: SmtpSection) -> str | None:
    path = cfg.password_file or credential_file("smtp-password")
    if path is None:
        return None
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise NotifyError(f"smtp password {path}: {exc.strerror or exc}") from None


def build_email(cfg: SmtpSection, to: str, subject: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=cfg.sender.rpartition("@")[2] or None)
    msg.set_content(text)
    return msg


def send_email(cfg: SmtpSection, to: str, subject: str, text: str) -> None:
    """Send one plain-text e-mail; NotifyError on any failure."""
    msg = build_email(cfg, to, subject, text)
    context = ssl.create_default_context()
    try:
        if cfg.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=context
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=context)
            if cfg.username:
                smtp.login(cfg.username, smtp_password(cfg) or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotifyError(f"e-mail to {to} via {cfg.host}:{cfg.port}: {exc}") from None
    log.info("email_sent", to=to, subject=subject)


# --- webhooks: one signature, one set of headers, for every webhook the office sends ------
#
# As Kisi and Alta do: ``X-Edgegate-Timestamp: <unix seconds>`` and ``X-Edgegate-Signature:
# sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``. A receiver recomputes it and
# refuses timestamps older than a few minutes (replay). The console's registered webhooks
# (the outbox, services/outbox.py) and the alarms' ``[alarms] webhook_urls`` (below) are both
# signed here.

USER_AGENT = "edgegate-webhook/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_headers(
    secret: str, body: bytes, event: str, delivery: str, *, now: float | None = None
) -> dict[str, str]:
    """The headers of one webhook POST, signed with ``secret``."""
    ts = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Edgegate-Timestamp": str(ts),
        "X-Edgegate-Signature": sign(secret, ts, body),
        "X-Edgegate-Delivery": delivery,
        "X-Edgegate-Event": event,
    }


def alarm_webhook_secret(cfg: AlarmsSection) -> str:
    """The secret that signs the escalations to ``webhook_urls``: ``webhook_secret_file``, or
    the systemd credential ``alarm-webhook-secret``. NotifyError when there is none (an
    escalation is never posted unsigned)."""
    path = cfg.webhook_secret_file or credential_file("alarm-webhook-secret")
    if path is None:
        raise NotifyError(
            "no webhook secret: set [alarms] webhook_secret_file (or the systemd credential "
            "alarm-webhook-secret); escalations are never sent unsigned"
        )
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise NotifyError(f"webhook secret {path}: {exc.strerror or exc}") from None
    if len(secret) < MIN_SECRET:
        raise NotifyError(f"webhook secret {path}: shorter than {MIN_SECRET} characters")
    return secret


MIN_SECRET = 16


def post_webhook(
    url: str, body: str, secret: str, *, event: str, delivery: str, timeout: float = 10.0
) -> int:
    """POST ``body`` (JSON text) to ``url``, signed; NotifyError unless the answer is 2xx."""
    raw = body.encode()
    try:
        resp = httpx.post(
            url, content=raw, headers=webhook_headers(secret, raw, event, delivery), timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise NotifyError(f"webhook {url}: {type(exc).__name__}: {exc}") from None
    if not 200 <= resp.status_code < 300:
        raise NotifyError(f"webhook {url}: HTTP {resp.status_code}")
    return resp.status_code


# --- the outbox's e-mail channel --------------------------------------------------------------

EmailChannel = Callable[[Engine, dict[str, Any], httpx.AsyncClient], Awaitable[int | None]]


def email_body(subject: str, text: str) -> str:
    """The outbox ``body`` of an ``email`` row (its ``target`` is the address)."""
    return json.dumps({"subject": subject, "text": text}, separators=(",", ":"))


def email_channel(cfg: SmtpSection) -> EmailChannel:
    """The outbox channel ``email`` (``services/outbox.register_channel("email", ...)``):
    sends one row's e-mail with ``send_email`` in a worker thread; a failure is the outbox's
    DeliveryError, so the row is retried with the outbox's backoff."""
    from edgegate.central.services.outbox import DeliveryError

    async def send(_engine: Engine, row: dict[str, Any], _client: httpx.AsyncClient) -> None:
        try:
            body = json.loads(row["body"])
            subject, text = str(body["subject"]), str(body["text"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DeliveryError(f"not an e-mail row: {exc}") from None
        try:
            await asyncio.to_thread(send_email, cfg, row["target"], subject, text)
        except NotifyError as exc:
            raise DeliveryError(str(exc)) from None
        return None

    return send
