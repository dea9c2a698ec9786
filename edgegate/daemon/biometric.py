"""Builders of the biometric readers (``[fingerprint]``, ``[camera]``), declared as reader
types in ``edgegate/config/reader_types.py`` like the card readers.

They need more of the door than a card reader does (its failed-attempt and assist hooks, the
store, a background service, the other readers for card+face), so they live in the daemon
layer and get a :class:`BiometricDevices` from the composition root instead of the whole
``Daemon``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from edgegate.config.biometric import CameraConfig, FingerprintConfig
from edgegate.config.models import Config
from edgegate.core.assist import AssistTracker
from edgegate.core.reads import Direction
from edgegate.daemon.door import Door
from edgegate.daemon.finger_sync import FingerLibraryService
from edgegate.hardware.base import Reader
from edgegate.hardware.registry import ReaderDevices
from edgegate.store.store import AsyncStore


@dataclass(slots=True)
class BiometricDevices(ReaderDevices):
    """What a biometric builder gets: the door it reports to, and places to hook into."""

    door: Door = field(kw_only=True)
    store: AsyncStore = field(kw_only=True)
    config: Config = field(kw_only=True)
    # The card readers already built: card+face routes their reads through its gate.
    readers: list[Reader] = field(kw_only=True)
    # Coroutines the daemon starts with the readers and cancels on stop.
    services: list[Callable[[], Awaitable[None]]] = field(kw_only=True)
    # Called (no arguments) when the store's credentials changed (MQTT sync, snapshots).
    on_credentials_changed: list[Callable[[], None]] = field(kw_only=True)
    finger_library: FingerLibraryService | None = None


def fingerprint(fp: FingerprintConfig, name: str, devices: BiometricDevices) -> Reader:
    from edgegate.hardware.fingerprint.reader import FingerprintReader

    door = devices.door
    door.assist[name] = AssistTracker(fp.assist_after, fp.assist_window_seconds)
    reader = FingerprintReader(
        name,
        door,
        fp.port,
        direction=Direction(fp.direction),
        baudrate=fp.baudrate,
        address=fp.address,
        password=fp.password,
        min_score=fp.min_score,
        poll_interval=fp.poll_interval,
        on_unrecognised=lambda reason: door.attempt_failed(name, "finger", reason, poor=False),
        on_poor_capture=lambda reason: door.attempt_failed(name, "finger", reason, poor=True),
    )
    # Library sync: the sensor follows the store's finger credentials (docs/fingerprint.md),
    # brought in step soon after a change, off the hot path.
    library = FingerLibraryService(reader, devices.store, fp, devices.config.storage)
    devices.finger_library = library
    devices.services.append(library.run)
    devices.on_credentials_changed.append(library.request)
    return reader


def camera(cam: CameraConfig, name: str, devices: BiometricDevices) -> Reader:
    from edgegate.face.cardface import CardFaceGate
    from edgegate.face.pipeline import Settings
    from edgegate.face.reader import CameraReader

    door = devices.door
    storage = devices.config.storage
    door.assist[name] = AssistTracker(cam.assist_after, cam.assist_window_seconds)
    if cam.mode == "card+face":
        # Only here do reads pass through the gate, in front of the door's other gates (a card
        # waits for its face before a PIN); other doors keep the direct path.
        door.gates.insert(0, CardFaceGate(door, name, cam.card_face_window_seconds))
    reader = CameraReader(
        name,
        door,
        cam.source,
        Settings.from_config(cam),
        storage.path,
        key_file=storage.key_file,
        direction=Direction(cam.direction),
        fps=cam.fps,
        nice=cam.nice,
        on_failed=lambda reason, poor: door.attempt_failed(name, "face", reason, poor=poor),
    )
    # Face credentials changed (a central update): reload the camera's gallery now.
    devices.on_credentials_changed.append(reader.reload_gallery)
    return reader
