"""The console inside ``central serve``: composes the office services, the live hub, the web
app (uvicorn on the server's own asyncio loop) and the outbox thread.

Publishing from the console goes through the server's already connected MQTT client (no new
broker connection per change: a lost card reaches the doors in milliseconds). The outbox
(webhook fan-out and deliveries) runs on its own thread and event loop, so a slow receiver or
a slow query there never delays the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import structlog
import uvicorn
from sqlalchemy import Engine

from edgegate.central import archive, store
from edgegate.central.config import CentralConfig, HttpSection
from edgegate.central.publisher import publish_signed, wait_all
from edgegate.central.server import CentralServer
from edgegate.central.services import EncodeFace, Office, biometrics, open_office, outbox
from edgegate.central.web.app import create_app
from edgegate.central.web.hub import Hub
from edgegate.contract import messages as m
from edgegate.contract.topics import site_credentials
from edgegate.errors import EdgegateError

log = structlog.get_logger(__name__)

FANOUT_CURSOR = "webhook_events"
OUTBOX_TICK = 1.0


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # ``central serve`` owns SIGTERM/SIGINT (it stops the archive cleanly too).
        yield


class BrokerDown(EdgegateError, RuntimeError):
    pass


class ConsoleRuntime:
    def __init__(
        self, config: CentralConfig, server: CentralServer, encode_face: EncodeFace | None = None
    ) -> None:
        assert config.http is not None
        self.config = config
        self.http: HttpSection = config.http
        self.server = server
        self.hub = Hub()
        self.office: Office = open_office(
            config,
            publish_versions=self._publish_versions,
            send_command=self._send_command,
            encode_face=encode_face,
        )
        # Finger enrolments running at doors (services/biometrics.py): the console's live
        # page and the API read them; the door's steps come in through ``_committed``.
        self.fingers = biometrics.FingerSessions()
        self.app = create_app(
            self.office, self.hub, session_hours=self.http.session_hours, fingers=self.fingers
        )
        server.on_committed = self._committed
        self._uvicorn: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._steps: set[asyncio.Task[None]] = set()
        self._outbox = threading.Thread(target=self._outbox_thread, name="outbox", daemon=True)
        if config.smtp is not None:
            # E-mail from the outbox (visitors' notices, anything enqueued as "email").
            from edgegate.central.notify import email_channel

            outbox.register_channel("email", email_channel(config.smtp))

    # --- publishing through the server's client (called on worker threads) ---------------

    def _publish_versions(self, master: Engine) -> bool:
        if not self.server.connected.is_set():
            return False  # kept as unpublished; the server sends them once reconnected
        site = self.config.central.site
        with store.reading(master) as conn:
            pending = store.unpublished(conn)
        if not pending:
            return True
        infos = [
            publish_signed(
                self.server.client, self.server.signer, site_credentials(site), v.message(site)
            )
            for v in pending
        ]
        try:
            wait_all(infos, self.config.central.publish_timeout_seconds)
        except Exception:
            log.warning("console_publish_failed", versions=len(pending))
            return False
        with master.begin() as conn:
            store.mark_published(conn, [v.version for v in pending], time.time())
        return True

    def _send_command(self, topic: str, message: dict[str, Any]) -> None:
        if not self.server.connected.is_set():
            raise BrokerDown("the office is not connected to the broker; command not sent")
        info = publish_signed(self.server.client, self.server.signer, topic, message)
        wait_all([info], self.config.central.publish_timeout_seconds)

    # --- live ----------------------------------------------------------------------------

    def _committed(self, changes: list[tuple[str, dict[str, Any]]]) -> None:
        doors = False
        for kind, item in changes:
            if kind == "enrol":
                self._finger_step(item["progress"])
                continue
            if kind == "event":
                self.hub.publish("events", item)
                doors = True  # last seen moved
                self._finger_ack(item)
            else:
                doors = True
        if doors:
            self.hub.publish("doors", None)
        self._wake.set()

    def _finger_ack(self, event: dict[str, Any]) -> None:
        """A door refused an ``enrol_finger`` command (no reader, busy): its session ends."""
        if event.get("type") != "command_ack" or event.get("cmd") != "enrol_finger":
            return
        if event.get("result") == "ok":
            return
        reason = str(event.get("reason") or "refused")
        session = biometrics.door_refused(self.fingers, str(event.get("cmd_id")), reason)
        if session is not None:
            self.hub.publish("enrol", session.id)

    def _finger_step(self, progress: m.EnrolProgress) -> None:
        """A door's enrolment step. Storing a captured template commits and publishes a
        version (waiting for the broker's PUBACK): on a worker thread, never on this loop."""

        async def step() -> None:
            try:
                session = await asyncio.to_thread(
                    biometrics.finger_progress, self.office, self.fingers, progress
                )
            except Exception:
                log.exception("finger_enrolment_step_failed", cmd_id=progress.cmd_id)
                return
            if session is not None:
                self.hub.publish("enrol", session.id)

        task = asyncio.get_running_loop().create_task(step())
        self._steps.add(task)
        task.add_done_callback(self._steps.discard)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        h = self.http
        cfg = uvicorn.Config(
            self.app,
            host=h.listen,
            port=h.port,
            ssl_certfile=str(h.tls_cert) if h.tls_cert else None,
            ssl_keyfile=str(h.tls_key) if h.tls_key else None,
            proxy_headers=bool(h.trusted_proxies),
            forwarded_allow_ips=",".join(h.trusted_proxies) or "",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._uvicorn = _Uvicorn(cfg)
        self._task = asyncio.create_task(self._uvicorn.serve())
        while not self._uvicorn.started:
            if self._task.done():
                await self._task  # raises the reason (port taken, bad certificate)
                raise RuntimeError("the console stopped at start")
            await asyncio.sleep(0.05)
        self._outbox.start()
        scheme = "https" if h.tls_cert else "http"
        log.info("console_started", url=f"{scheme}://{h.listen}:{h.port}/")

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._uvicorn is not None and self._task is not None:
            self._uvicorn.should_exit = True
            # SSE streams never end by themselves: close them rather than wait.
            self._uvicorn.force_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
        if self._outbox.is_alive():
            await asyncio.to_thread(self._outbox.join, 15)

    # --- outbox thread -------------------------------------------------------------------

    def _outbox_thread(self) -> None:
        asyncio.run(self._outbox_loop())

    async def _outbox_loop(self) -> None:
        async with httpx.AsyncClient(timeout=outbox.TIMEOUT_SECONDS) as client:
            dispatcher = outbox.Dispatcher(self.office.engine, client)
            while not self._stop.is_set():
                try:
                    self.fan_out()
                    await dispatcher.run_once()
                except Exception:
                    log.exception("outbox_failed")
                await asyncio.to_thread(self._wake.wait, OUTBOX_TICK)
                self._wake.clear()

    def fan_out(self) -> None:
        """Archived events after the cursor become outbox rows for the webhooks wanting them."""
        master = self.office.master()
        engine = self.office.engine
        cursor = outbox.get_cursor(engine, FANOUT_CURSOR)
        if cursor is None:  # first start: webhooks get events from now on, not the history
            with store.reading(master) as conn:
                outbox.set_cursor(engine, FANOUT_CURSOR, archive.last_event(conn))
            return
        while True:
            with store.reading(master) as conn:
                events = archive.search_events(conn, {}, after=cursor, limit=500, oldest_first=True)
            if not events:
                return
            cursor = events[-1]["n"]
            plain = [{k: v for k, v in e.items() if k not in ("n", "received")} for e in events]
            outbox.fan_out(engine, plain, (FANOUT_CURSOR, cursor))
