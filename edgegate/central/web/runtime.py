"""The console inside ``central serve``: composes the office services, the live hub and the web
app (uvicorn on the server's own asyncio loop). The outbox (webhooks, e-mail) is serve's own
(central/outbox_runner.py): it runs with or without the console; the console only wakes it.

Publishing from the console goes through the server's already connected MQTT client (no new
broker connection per change: a lost card reaches the doors in milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import structlog
import uvicorn
from sqlalchemy import Engine

from edgegate.central import store
from edgegate.central.config import CentralConfig, HttpSection
from edgegate.central.publisher import publish_signed, wait_all
from edgegate.central.server import CentralServer
from edgegate.central.services import EncodeFace, Office, biometrics, muster, open_office
from edgegate.central.web.app import create_app
from edgegate.central.web.hub import Hub
from edgegate.contract import messages as m
from edgegate.contract.topics import site_credentials
from edgegate.errors import EdgegateError

log = structlog.get_logger(__name__)

# The live feed's "re-read" changes -> the hub topic of the views that re-read them.
RE_READ = {"door": "doors", "alarm": "alarms", "command": "commands"}


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # ``central serve`` owns SIGTERM/SIGINT (it stops the archive cleanly too).
        yield


class BrokerDown(EdgegateError, RuntimeError):
    pass


class ConsoleRuntime:
    def __init__(
        self,
        config: CentralConfig,
        server: CentralServer,
        encode_face: EncodeFace | None = None,
        wake_outbox: Callable[[], None] | None = None,
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
            changed=server.changed_here,
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
        self._wake_outbox = wake_outbox
        self._steps: set[asyncio.Task[None]] = set()

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
        """The live feed (central/live_feed.py), on the loop: what any instance committed.
        Events come one by one; door rows, alarms and commands only say "re-read", and so
        do, once for the lot, the events a re-read view shows (a door's ``command_ack`` for
        the commands page, passages for the muster list)."""
        due: set[str] = set()
        for kind, item in changes:
            if kind == "enrol":
                self._finger_step(item["progress"])
            elif kind == "event":
                self.hub.publish("events", item)
                self._finger_ack(item)
                if item.get("type") == "command_ack":
                    due.add("commands")
                elif item.get("type") in muster.PASSAGES:
                    due.add("muster")
            else:
                due.add(RE_READ[kind])
        for topic in sorted(due):
            self.hub.publish(topic, None)
        if self._wake_outbox is not None:
            self._wake_outbox()  # archived events may be wanted by webhooks

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
        scheme = "https" if h.tls_cert else "http"
        log.info("console_started", url=f"{scheme}://{h.listen}:{h.port}/")

    async def stop(self) -> None:
        if self._uvicorn is not None and self._task is not None:
            self._uvicorn.should_exit = True
            # SSE streams never end by themselves: close them rather than wait.
            self._uvicorn.force_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
