"""Sending the office's notifications: e-mail through SMTP, JSON webhooks.

E-mail uses the standard library's ``smtplib`` and ``email.message`` (no dependency: the
protocol is small and smtplib handles STARTTLS, implicit TLS and login); webhooks use httpx,
the office's HTTP client. Both block, so callers on the event loop run them in a thread.
A failure is a ``NotifyError`` naming the target and the cause; the caller retries.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx
import structlog
from sqlalchemy.engine import Engine

from edgegate.central.alarms_config import SmtpSection
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


def post_webhook(url: str, body: str, *, timeout: float = 10.0) -> int:
    """POST ``body`` (JSON text) to ``url``; NotifyError unless the answer is 2xx."""
    try:
        resp = httpx.post(
            url,
            content=body.encode(),
            headers={"Content-Type": "application/json", "User-Agent": "edgegate-alarms/1"},
            timeout=timeout,
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
