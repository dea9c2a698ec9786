"""Hosts' notices go out from ``central serve`` without the console: an office with no
``[http]`` section (a real ``serve``, a real broker) delivers the booking's one-time link to
the registered webhook and by e-mail (a real SMTP server), through the outbox."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from edgegate.central.config import load_central
from edgegate.central.services import Actor, open_office, outbox
from edgegate.sim.broker import Broker
from tests.alarms.receivers import MailReceiver, WebhookReceiver
from tests.central.conftest import make_central
from tests.conftest import EDGEGATE, REPO

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).isoformat(timespec="seconds")


def test_serve_without_http_sends_the_hosts_notices(tmp_path: Path, broker: Broker, capsys):
    hook, mail = WebhookReceiver(), MailReceiver()
    mail.start()
    office = make_central(tmp_path, broker.port)
    with office.path.open("a") as f:
        f.write(
            '\n[visitors]\nlink_base_url = "https://office.example/visit-link/"\n'
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {mail.port}\nsecurity = "none"\n'
            'sender = "office@example.com"\n'
        )
    office.config = load_central(office.path)
    assert office.config.http is None
    registered = open_office(office.config)
    outbox.add_webhook(registered.engine, Actor("admin", "cli"), hook.url, ["visit_*", "*"])
    registered.close()
    assert office.run("people", "add", "alice") == 0
    assert office.run("visits", "host-email", "alice", "alice@example.com") == 0
    log = (tmp_path / "serve.log").open("w+")
    serve = subprocess.Popen(
        [*EDGEGATE, "central", "serve", "--config", str(office.path)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        now = time.time()
        capsys.readouterr()
        assert office.run("visits", "book", "--visitor", "Vera Visitor", "--host", "alice",
                          "--arrive", iso(now + 600), "--depart", iso(now + 7200),
                          "--zone", "lobby", "--by", "rita", "--json") == 0  # fmt: skip
        visit = json.JSONDecoder().raw_decode(capsys.readouterr().out)[0]["visit"]
        deadline = time.monotonic() + 60  # serve's start on a loaded machine included
        while not (hook.bodies and mail.messages):
            assert serve.poll() is None, log.seek(0) or log.read()
            assert time.monotonic() < deadline, "no notice reached the host: " + (
                log.seek(0) or log.read()
            )
            time.sleep(0.1)
        event = hook.bodies[0]["event"]
        assert (event["type"], event["visit"], event["host"]) == (
            "visit_confirm_request", visit, "alice")  # fmt: skip
        link = event["text"].rsplit(" ", 1)[-1]
        assert link.startswith("https://office.example/visit-link/")
        assert mail.rcpt[0] == ["alice@example.com"]
        assert link in mail.messages[0].get_payload(decode=True).decode()
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            assert serve.wait(20) == 0, log.seek(0) or log.read()
        finally:
            with contextlib.suppress(ProcessLookupError):
                serve.kill()
            hook.close()
            mail.close()
