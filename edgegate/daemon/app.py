"""The daemon: the composition root. Builds the door from its config, hands each part only
what it needs (the sync layer gets ports, never the daemon or the door), and runs it until
told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from typing import Any

import structlog

from edgegate import __version__
from edgegate.config.models import Config
from edgegate.core.reads import Direction
from edgegate.daemon import systemd
from edgegate.daemon.door import Door
from edgegate.daemon.status import DoorStatus
from edgegate.hardware.base import Reader
from edgegate.hardware.gpio import DoorOutputs, make_pin_factory
from edgegate.hardware.inputs import DoorInputs
from edgegate.hardware.registry import build_reader
from edgegate.store.journal import Event
from edgegate.store.store import AsyncStore
from edgegate.sync.service import SyncService

log = structlog.get_logger(__name__)


class Daemon:
    """Everything one door runs. ``start`` brings it up, ``stop`` takes it down safely.

    Parts that later layers add (MQTT sync, fingerprint, camera, door rules) hook in through
    ``services``: coroutines started with the readers and cancelled on stop.
    """

    def __init__(self, config: Config, *, pin_factory: Any | None = None) -> None:
        self.config = config
        self.store = AsyncStore(config.storage.path)
        factory = pin_factory or make_pin_factory(config.gpio.pin_factory)
        self.outputs = DoorOutputs(config.gpio, factory)
        self.door = Door(config, self.store, self.outputs)
        self.inputs = DoorInputs(config.gpio, factory, self.door.rules.on_input)
        self.readers: list[Reader] = [
            build_reader(rcfg, name, self.door)
            for rcfg, name in zip(config.readers, config.reader_names(), strict=True)
        ]
        self.services: list[Callable[[], Any]] = []
        self.finger_library: Any | None = None
        if config.fingerprint is not None:
            self.readers.append(self._fingerprint_reader(config))
        self.camera: Reader | None = None
        if config.camera is not None:
            self.camera = self._camera_reader(config)
            self.readers.append(self.camera)
        self.door.add_listener(self._reader_feedback)
        # The fingerprint sensor's library follows credential changes (MQTT sync, snapshots).
        self.door.add_credentials_listener(self.credentials_changed)
        self.health = DoorStatus(config.daemon, self.door, self.readers, self.outputs)
        self.sync: SyncService | None = None
        if config.mqtt is not None:
            # MQTT sync (docs/mqtt.md): events, state, telemetry, commands, credentials.
            self.sync = SyncService(
                config,
                store=self.store,
                door=self.door.rules,
                journal=self.door.journal,
                status=self.health,
                on_credentials_changed=self.door.credentials_changed,
                clock=self.door.now,
            )
            self.sync.retained_sources.append(self._homeassistant_discovery)
            self.services.append(self.sync.run)
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()

    def _fingerprint_reader(self, config: Config) -> Reader:
        from edgegate.core.assist import AssistTracker
        from edgegate.hardware.fingerprint.reader import FingerprintReader

        fp = config.fingerprint
        assert fp is not None
        door = self.door
        door.assist[fp.name] = AssistTracker(fp.assist_after, fp.assist_window_seconds)
        reader = FingerprintReader(
            fp.name,
            door,
            fp.port,
            direction=Direction(fp.direction),
            baudrate=fp.baudrate,
            address=fp.address,
            password=fp.password,
            min_score=fp.min_score,
            poll_interval=fp.poll_interval,
            on_unrecognised=lambda reason: door.attempt_failed(
                fp.name, "finger", reason, poor=False
            ),
            on_poor_capture=lambda reason: door.attempt_failed(
                fp.name, "finger", reason, poor=True
            ),
        )
        # Library sync: the sensor follows the store's finger credentials (docs/fingerprint.md).
        from edgegate.daemon.finger_sync import FingerLibraryService

        self.finger_library = FingerLibraryService(reader, self.store, fp, config.storage)
        self.services.append(self.finger_library.run)
        return reader

    def credentials_changed(self, *_: Any) -> None:
        """Register with whatever changes credentials (MQTT sync): the fingerprint sensor's
        library is brought in step with the store soon after, off the hot path."""
        if self.finger_library is not None:
            self.finger_library.request()
        self.reload_gallery()

    def _homeassistant_discovery(self) -> list[tuple[str, str, bool]]:
        """Home Assistant discovery configs, republished retained on every (re)connect."""
        from edgegate.sync.homeassistant import discovery_messages

        return [
            (topic, json.dumps(payload, separators=(",", ":")), retain)
            for topic, payload, retain in discovery_messages(self.config)
        ]

    def _reader_feedback(self, event: Event) -> None:
        """Show each decision on the reader that produced the read (OSDP LEDs, buzzer, text)."""
        if event.type not in ("access_granted", "access_denied"):
            return
        for reader in self.readers:
            if reader.name == event.payload.get("reader"):
                reader.feedback(event.type == "access_granted")

    def _camera_reader(self, config: Config) -> Reader:
        from edgegate.core.assist import AssistTracker
        from edgegate.face.cardface import CardFaceGate
        from edgegate.face.pipeline import Settings
        from edgegate.face.reader import CameraReader

        cam = config.camera
        assert cam is not None
        door = self.door
        door.assist[cam.name] = AssistTracker(cam.assist_after, cam.assist_window_seconds)
        if cam.mode == "card+face":
            # Only here do reads pass through the gate, in front of the others (a card waits
            # for its face before a PIN); other doors keep the direct path.
            door.gates.insert(0, CardFaceGate(door, cam.name, cam.card_face_window_seconds))
        return CameraReader(
            cam.name,
            door,
            cam.source,
            Settings.from_config(cam),
            config.storage.path,
            key_file=config.storage.key_file,
            direction=Direction(cam.direction),
            fps=cam.fps,
            nice=cam.nice,
            on_failed=lambda reason, poor: door.attempt_failed(cam.name, "face", reason, poor=poor),
        )

    def reload_gallery(self) -> None:
        """Face credentials changed (a central update): reload the camera's gallery now."""
        reload = getattr(self.camera, "reload_gallery", None)
        if reload is not None:
            reload()

    async def start(self) -> None:
        await self.store.open()
        lockouts = await self.store.call(self.door.rules.restore_lockouts)
        self.outputs.safe_state()
        # After safe_state: an active fire input found here releases the lock at once.
        self.inputs.start(asyncio.get_running_loop())
        self.door.rules.started(lockouts, self.inputs.is_active("door_contact"))
        for reader in self.readers:
            self._tasks.append(asyncio.create_task(reader.run(), name=f"reader:{reader.name}"))
        for service in self.services:
            self._tasks.append(asyncio.create_task(service(), name="service"))
        self._tasks.append(asyncio.create_task(self.health.watch(self._crashed), name="health"))
        await self._readers_settled(timeout=2.0)
        self.health.healthy = True
        log.info(
            "daemon_started",
            version=__version__,
            site=self.config.door.site,
            door=self.config.door.id,
            readers=[r.name for r in self.readers],
            store=str(self.config.storage.path),
        )
        systemd.notify("READY=1\nSTATUS=deciding")

    async def _readers_settled(self, timeout: float) -> None:
        """Wait until every reader has opened its device or reported a fault, so READY=1 means
        the door is reading (pyserial discards what arrived before the port was opened)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if all(r.healthy or r.last_error for r in self.readers):
                return
            await asyncio.sleep(0.01)

    def _crashed(self) -> list[str]:
        return [t.get_name() for t in self._tasks if t.done() and t.get_name() != "health"]

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        systemd.notify("STOPPING=1")
        log.info("daemon_stopping")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.door.drain()
        self.inputs.close()
        self.door.rules.close()
        for gate in self.door.gates:
            gate.close()
        # Fail-secure on a normal stop: the relay off is the locked state.
        self.outputs.safe_state()
        self.outputs.close()
        await self.store.close()
        log.info("daemon_stopped")

    def status(self) -> dict[str, Any]:
        return self.health.status()


async def run(config: Config) -> None:
    """What ``edgegate run`` does: start, wait for SIGTERM/SIGINT, stop safely."""
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_stop)
    await daemon.start()
    try:
        await daemon.wait()
    finally:
        await daemon.stop()
