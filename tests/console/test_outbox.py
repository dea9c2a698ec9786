"""The outbox and signed webhooks against a real HTTP receiver (http.server on a free port):
the signature verifies with the secret over timestamp and body, a failure is logged and
retried with backoff, a row gives up after MAX_ATTEMPTS, the secret is never logged."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegate.central.services import Office, audit, outbox
from tests.conftest import all_logs
from tests.console.conftest import ADMIN


class Receiver:
    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []  # answers to give, then 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook?token=abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def run(office: Office, now: float | None = None) -> int:
    async def go() -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            return await outbox.Dispatcher(office.engine, client).run_once(now)

    return asyncio.run(go())


def test_signed_delivery_retry_and_log(office: Office, receiver: Receiver) -> None:
    with all_logs() as logs:
        hook_id, secret = outbox.add_webhook(office.engine, ADMIN, receiver.url, ["access_denied"])
        events = [
            {"id": "e1", "type": "access_granted", "door": "front"},
            {"id": "e2", "type": "access_denied", "door": "front", "reason": "disabled"},
        ]
        assert outbox.fan_out(office.engine, events) == 1  # only the type it asked for
        receiver.statuses = [503]
        assert run(office) == 1
        assert len(receiver.got) == 1
        failed = outbox.delivery_log(office.engine, failed_only=True)
        assert failed and failed[0]["status_code"] == 503 and failed[0]["attempt"] == 1
        assert run(office) == 0  # not due yet: backoff
        row = outbox.due(office.engine, 1e12)[0]
        assert row["next_attempt"] - row["created"] >= outbox.backoff(1) - 1
        assert run(office, now=row["next_attempt"] + 0.1) == 1
        assert outbox.due(office.engine, 1e12) == []
    headers, body = receiver.got[-1]
    ts = headers["x-edgegate-timestamp"]
    want = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["x-edgegate-signature"] == f"sha256={want}"
    assert json.loads(body)["event"]["id"] == "e2"
    # A receiver checking with another secret, or a changed body, refuses it.
    assert outbox.sign("other", int(ts), body) != headers["x-edgegate-signature"]
    assert outbox.sign(secret, int(ts), body + b" ") != headers["x-edgegate-signature"]
    ok = [d for d in outbox.delivery_log(office.engine) if d["ok"]]
    assert len(ok) == 1 and ok[0]["attempt"] == 2
    # The secret and the URL's query (it may hold a token) are in no log and no audit entry.
    text = json.dumps(logs) + json.dumps(audit.recent(office.engine), default=str)
    assert secret not in text and "token=abc" not in text
    assert hook_id in [h["id"] for h in outbox.list_webhooks(office.engine)]
    assert "secret" not in outbox.list_webhooks(office.engine)[0]


def test_gives_up_after_max_attempts(office: Office) -> None:
    # Nothing listens on this port: every attempt fails to connect.
    outbox.add_webhook(office.engine, ADMIN, "http://127.0.0.1:9/x", ["*"])
    outbox.fan_out(office.engine, [{"id": "e", "type": "door_forced"}])
    now = 0.0
    for _ in range(outbox.MAX_ATTEMPTS):
        assert run(office, now=1e12 + now) == 1
        now += 4000
    assert outbox.due(office.engine, 1e13) == []
    log = outbox.delivery_log(office.engine)
    assert len(log) == outbox.MAX_ATTEMPTS and log[0]["status"] == "failed"


@given(st.integers(min_value=0, max_value=60))
def test_backoff_grows_and_is_bounded(n: int) -> None:
    assert 5.0 <= outbox.backoff(n) <= 3600.0
    assert outbox.backoff(n + 1) >= outbox.backoff(n)


def test_rejects_non_http_urls(office: Office) -> None:
    for bad in ("file:///etc/passwd", "ftp://x", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            outbox.add_webhook(office.engine, ADMIN, bad, ["*"])


def test_schema_created_by_two_processes_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``serve`` and a CLI command starting together both create the console's tables."""
    import threading

    from edgegate.central.engine import make_engine
    from edgegate.central.services import ensure_schema

    errors: list[BaseException] = []
    engines = [make_engine(tmp_path / "central.db") for _ in range(4)]

    def create(engine) -> None:  # type: ignore[no-untyped-def]
        try:
            ensure_schema(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_fan_out_moves_its_cursor_with_the_rows(office: Office) -> None:
    outbox.add_webhook(office.engine, ADMIN, "http://127.0.0.1:9/x", ["*"])
    assert outbox.fan_out(office.engine, [{"id": "a", "type": "t"}], ("events", 41)) == 1
    assert outbox.get_cursor(office.engine, "events") == 41
    assert outbox.fan_out(office.engine, [], ("events", 42)) == 0
    assert outbox.get_cursor(office.engine, "events") == 42
