"""Real receivers for the office's notifications: an HTTP server taking webhook POSTs and a
local SMTP server (aiosmtpd) taking e-mail, each on a free port of 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from edgegate.sim.broker import free_port


class WebhookReceiver:
    """Answers ``status`` (200 unless changed) and keeps every JSON body it was sent. With a
    ``secret`` it checks each POST's signature as a receiver should (computed here with the
    standard library, not with edgegate's code): a missing or wrong signature, or a
    timestamp off by more than 5 minutes, is answered 401 and kept in ``refused``."""

    def __init__(self, secret: str | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.refused: list[str] = []
        self.status = 200
        self.secret = secret
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                problem = outer.check(dict(self.headers.items()), body)
                if problem:
                    outer.refused.append(problem)
                    self.send_response(401)
                    self.end_headers()
                    return
                if outer.status == 200:
                    outer.bodies.append(json.loads(body))
                    outer.headers.append(dict(self.headers.items()))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alarms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def check(self, headers: dict[str, str], body: bytes) -> str:
        """Why the POST is refused ('' when it is signed right, or no secret is set)."""
        if self.secret is None:
            return ""
        lower = {k.lower(): v for k, v in headers.items()}
        ts, signature = lower.get("x-edgegate-timestamp"), lower.get("x-edgegate-signature")
        if not ts or not signature:
            return "unsigned"
        if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            return "stale timestamp"
        mac = hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(signature, "sha256=" + mac.hexdigest()):
            return "bad signature"
        return ""

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailReceiver:
    """aiosmtpd's Controller: a real SMTP server in its own thread."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.rcpt: list[list[str]] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.rcpt.append(list(envelope.rcpt_tos))
                outer.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.running = False

    def start(self) -> None:
        self.controller.start()
        self.running = True

    def close(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False
