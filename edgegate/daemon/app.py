"""The daemon: the composition root. Builds the door from its config, hands each part only
what it needs (the sync layer gets ports, never the daemon or the door), and runs it until
told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from edgegate import __version__
from edgegate.config.models import Config
from edgegate.config.reader_types import reader_types
from edgegate.core.feedback import outcome_for, text_for
from edgegate.daemon import systemd
from edgegate.daemon.door import Door
from edgegate.daemon.finger_sync import FingerLibraryService
from edgegate.daemon.live_doctor import LiveDoctor
from edgegate.daemon.siren import SirenOutput
from edgegate.daemon.staff_card import StaffCardMemory
from edgegate.daemon.status import DoorStatus
from edgegate.daemon.wall_clock import SafeWallClock

if TYPE_CHECKING:
    from edgegate.daemon.finger_enrol import FingerEnrolment
from edgegate.hardware.base import Reader
from edgegate.hardware.gpio import DoorOutputs, make_pin_factory
from edgegate.hardware.inputs import DoorInputs
from edgegate.hardware.registry import ReaderDevices, build_reader
from edgegate.hardware.wiegand.gpio import EdgeSource
from edgegate.mqtt.client import central_keys
from edgegate.store.journal import Event, known_time, rfc3339
from edgegate.store.rules_state import load_modes
from edgegate.store.store import AsyncStore
from edgegate.sync.service import SyncService

log = structlog.get_logger(__name__)


class Daemon:
    """Everything one door runs. ``start`` brings it up, ``stop`` takes it down safely.

    Parts that later layers add (MQTT sync, fingerprint, camera, door rules) hook in through
    ``services``: coroutines started with the readers and cancelled on stop.
    """

    def __init__(
        self,
        config: Config,
        *,
        pin_factory: Any | None = None,
        edge_sources: Mapping[str, EdgeSource] | None = None,
    ) -> None:
        """``pin_factory`` and ``edge_sources`` (Wiegand wires by reader name) stand in for the
        configured GPIO; tests and the demo inject simulated ones here."""
        self.config = config
        self.store = AsyncStore(
            config.storage.path, identity=True, reserve_mb=config.storage.reserve_mb
        )
        factory = pin_factory or make_pin_factory(config.gpio.pin_factory)
        self.outputs = DoorOutputs(config.gpio, factory)
        # The office's public keys, read once here and handed to both that verify with them:
        # the sync (signed commands and credentials) and the door (visitor QR passes). A key
        # file that cannot be read stops the start with one line (MqttSetupError, cli run).
        keys = central_keys(config.mqtt) if config.mqtt is not None else []
        self.door = Door(config, self.store, self.outputs, pass_keys=keys)
        # The staff release button names the staff card tapped just before it.
        self.staff_cards = StaffCardMemory(self.door, config.rules)
        self.door.add_listener(self.staff_cards.on_event)
        self.inputs = DoorInputs(
            config.gpio, factory, self.staff_cards.wrap(self.door.rules.on_input)
        )
        # Optional alarm output (siren/strobe): follows the journal's alarms, silenced by
        # the office's signed 'silence' command.
        self.siren: SirenOutput | None = None
        if config.gpio.siren is not None:
            self.siren = SirenOutput(config.gpio, factory, self.door)
            self.door.add_listener(self.siren.on_event)
        devices = ReaderDevices(self.door, edge_sources or {})
        self.readers: list[Reader] = [
            build_reader(rcfg, name, self.door, devices)
            for rcfg, name in zip(config.readers, config.reader_names(), strict=True)
        ]
        self.services: list[Callable[[], Any]] = []
        # The doctor checks that are safe while running: on a schedule and on command.
        self.doctor = LiveDoctor(config, self.door, lambda: [r.status() for r in self.readers])
        if config.daemon.doctor_minutes > 0:
            self.services.append(self.doctor.run)
        self._credential_hooks: list[Callable[[], None]] = []
        self.finger_library: FingerLibraryService | None = None
        self.camera: Reader | None = None
        self._build_biometric(config, devices)
        self.door.add_listener(self._reader_feedback)
        # The fingerprint sensor's library follows credential changes (MQTT sync, snapshots).
        self.door.add_credentials_listener(self.credentials_changed)
        self.health = DoorStatus(config.daemon, self.door, self.readers, self.outputs)
        self.sync: SyncService | None = None
        # Finger enrolment for the office (the signed enrol_finger command) on this door's
        # sensor; its steps go out through the sync link.
        self.finger_enrol: FingerEnrolment | None = None
        if config.mqtt is not None and self.finger_library is not None:
            from edgegate.daemon.finger_enrol import FingerEnrolment

            assert config.fingerprint is not None
            self.finger_enrol = FingerEnrolment(
                self.finger_library.reader,
                config.fingerprint.model,
                site=config.door.site,
                door=config.door.id,
                publish=lambda progress: self.sync.publish_enrol(progress) if self.sync else None,
            )
        if config.mqtt is not None:
            # MQTT sync (docs/mqtt.md): events, state, telemetry, commands, credentials. It
            # gets ports (edgegate/sync/ports.py): the rules as DoorControl, the journal seam,
            # the status source, and plain callables for what the office may trigger.
            self.sync = SyncService(
                config,
                store=self.store,
                door=self.door.rules,
                journal=self.door.journal,
                status=self.health,
                on_credentials_changed=self.door.credentials_changed,
                clock=self.door.now,
                on_silence=self.siren.silence if self.siren is not None else None,
                on_doctor=self.doctor.request,
                on_reset_presence=self.door.reset_presence,
                on_enrol_finger=self.finger_enrol.start if self.finger_enrol else None,
                site_rules=self.door.site,
                central_keys=keys,
            )
            self.sync.retained_sources.append(self._homeassistant_discovery)
            self.services.append(self.sync.run)
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()

    def _build_biometric(self, config: Config, devices: ReaderDevices) -> None:
        """The readers configured by their own section (``[fingerprint]``, ``[camera]``),
        through their declared builders (edgegate/config/reader_types.py)."""
        from edgegate.daemon.biometric import BiometricDevices

        parts = BiometricDevices(
            self.door,
            devices.edge_sources,
            door=self.door,
            store=self.store,
            config=config,
            readers=list(self.readers),
            services=self.services,
            on_credentials_changed=self._credential_hooks,
        )
        for kind in reader_types().values():
            section = getattr(config, kind.section) if kind.section else None
            if section is None:
                continue
            reader = kind.load_builder()(section, section.name, parts)
            assert isinstance(reader, Reader), f"{kind.name} builder returned {reader!r}"
            self.readers.append(reader)
            if kind.section == "camera":
                self.camera = reader
        self.finger_library = parts.finger_library

    def credentials_changed(self, *_: Any) -> None:
        """Register with whatever changes credentials (MQTT sync): the fingerprint sensor's
        library is brought in step with the store soon after, off the hot path, and the
        camera's gallery is reloaded."""
        for hook in self._credential_hooks:
            hook()

    def _homeassistant_discovery(self) -> list[tuple[str, bytes | str, bool]]:
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
        granted = event.type == "access_granted"
        outcome = outcome_for("granted" if granted else str(event.payload.get("reason", "")))
        text = text_for(outcome, self.config.feedback.language)
        for reader in self.readers:
            if reader.name == event.payload.get("reader"):
                reader.feedback(granted, outcome, text)

    async def start(self) -> None:
        await self.store.open()
        await self._safe_wall_clock()
        lockouts = await self.store.call(self.door.rules.restore_lockouts)
        # The emergency latch and lockdown from before a restart, before the lock is driven: a
        # watchdog restart during a fire keeps the door released (until a reset).
        modes = await self.store.call(load_modes)
        if self.door.rules.restore_modes(modes):
            self.outputs.unlock()
        else:
            self.outputs.safe_state()
        # After that: an active fire input found here releases the lock at once.
        self.inputs.start(asyncio.get_running_loop())
        self.door.rules.started(lockouts, self.inputs.is_active("door_contact"))
        self.door.site.start()
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

    async def _safe_wall_clock(self) -> None:
        """Dates never earlier than what the door already knows (daemon/wall_clock.py). Only
        for the real clock: a test that drives ``door.clock`` keeps its own."""
        if self.door.clock is not time.time:
            return
        path = self.config.storage.path
        clock = SafeWallClock(await self.store.call(known_time, path))
        self.door.clock = clock
        self.door.journal.unsynchronised = lambda: clock.behind() > 0
        behind = clock.behind()
        if behind > 0:
            log.warning("clock_behind", behind_seconds=round(behind, 1))
            await self.door.record(
                "clock_behind",
                behind_seconds=round(behind, 1),
                wall=rfc3339(clock.wall()),
                assumed=rfc3339(clock()),
            )
            self.services.append(lambda: self._await_clock(clock))

    async def _await_clock(self, clock: SafeWallClock) -> None:
        """Journal ``clock_synchronised`` once the wall clock has caught up (NTP)."""
        while clock.behind() > 0:
            await asyncio.sleep(1.0)
        log.info("clock_synchronised")
        await self.door.record("clock_synchronised", wall=rfc3339(clock.wall()))

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
        self.door.site.close()
        for gate in self.door.gates:
            gate.close()
        if self.siren is not None:
            self.siren.close()
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
