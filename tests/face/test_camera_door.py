"""Face entry end to end: video files as the camera -> face process -> daemon -> relay."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgegate.config import parse
from edgegate.config.models import Config
from edgegate.face.credentials import put_face
from edgegate.sim import camera as cam
from edgegate.sim.rdm6300 import Rdm6300Simulator
from edgegate.store import credentials as creds
from edgegate.store.db import open_db, transaction
from edgegate.store.journal import Event
from edgegate.store.sealed import load_key
from tests.conftest import DoorUnderTest, running_door

pytestmark = pytest.mark.face

FPS = 15


def face_config(tmp_path: Path, card_port: str, source: Path, **camera: Any) -> Config:
    return parse(
        {
            "door": {"site": "t", "id": "d", "unlock_seconds": 0.3},
            "gpio": {"pin_factory": "mock", "deny_led_seconds": 0.1},
            "readers": [{"type": "rdm6300", "port": card_port, "name": "entry"}],
            "camera": {"source": str(source), "assist_after": 2, **camera},
            "storage": {"path": str(tmp_path / "door.db")},
        },
        tmp_path / "face.toml",
    )


def enrol_faces(config: Config, faces: dict[str, np.ndarray], cards: dict[str, str]) -> None:
    conn = open_db(config.storage.path, synchronous="NORMAL")
    key = load_key(config.storage.path, config.storage.key_file)
    with transaction(conn):
        for person, enc in faces.items():
            put_face(conn, key, person, enc)
        for person, uid in cards.items():
            creds.upsert_person(conn, creds.Person(person))
            creds.add_credential(conn, "card", uid, person)
    conn.close()


@asynccontextmanager
async def face_door(
    tmp_path: Path,
    video: Path,
    faces: dict[str, np.ndarray],
    cards: dict[str, str],
    **camera: Any,
) -> AsyncIterator[tuple[DoorUnderTest, Rdm6300Simulator, Config]]:
    """The daemon with a card reader and the camera playing ``video``."""
    with Rdm6300Simulator() as sim:
        cfg = face_config(tmp_path, sim.port, video, **camera)
        setup = lambda c: enrol_faces(c, faces, cards)  # noqa: E731
        async with running_door(tmp_path, sim=sim, config=cfg, setup=setup) as d:
            yield d, sim, cfg


async def wait_for(
    d: DoorUnderTest, type_: str, timeout: float = 20.0
) -> tuple[Event, list[Event]]:
    """The next event of ``type_`` and every event before it."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while True:
        ev = await d.next_event(max(0.1, deadline - time.monotonic()))
        seen.append(ev)
        if ev.type == type_:
            return ev, seen


def test_face_opens_stranger_denied_then_staff_and_camera_comes_back(
    tmp_path: Path, frames, enrolled
):
    video = cam.write_video(
        tmp_path / "door.avi",
        cam.sequence(
            [
                (frames["blank"], 5),
                (frames["obama3"], 45),
                (frames["blank"], 10),
                (frames["biden2"], 150),
            ]
        ),
        FPS,
    )

    async def scenario() -> None:
        faces = {"obama": enrolled["obama"]}
        async with face_door(tmp_path, video, faces, {"alice": "0F00BC614E"}) as (d, cards, _):
            ev, before = await wait_for(d, "access_granted")
            assert ev.payload["kind"] == "face" and ev.payload["person"] == "obama"
            assert ev.payload["reader"] == "camera" and 0.2 < ev.payload["score"] < 0.5
            assert "template" not in ev.payload and "image" not in ev.payload
            assert not [e for e in before if e.type == "access_denied"]
            assert d.lock_high
            # The face process is a separate, niced process (cards come first).
            proc = getattr(d.daemon.camera, "_proc", None)
            assert proc is not None and proc.pid != os.getpid()
            assert (
                os.getpriority(os.PRIO_PROCESS, proc.pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
            )
            # Biden is not enrolled: each try is a denial; the second calls staff, once.
            ev, before = await wait_for(d, "assist_requested")
            denials = [e for e in before if e.type == "access_denied"]
            assert len(denials) == 2 and all(e.payload["kind"] == "face" for e in denials)
            assert {e.payload["reason"] for e in denials} == {"unknown"}
            assert ev.payload["failures"] == 2 and ev.payload["reader"] == "camera"
            # A card tap while the face process works flat out is decided (how fast is a
            # benchmark's question: bench/face_latency.py, docs/benchmarks.md, not a test's).
            cards.tap("0F00BC614E")
            ev, _ = await wait_for(d, "access_granted", 5.0)
            assert ev.payload["kind"] == "card"
            # The video ends: the camera is gone (reader_fault), reopened, and back.
            await wait_for(d, "reader_fault", 15.0)
            await wait_for(d, "reader_recovered", 10.0)
            ev, _ = await wait_for(d, "access_granted", 15.0)
            assert ev.payload["person"] == "obama"
            camera = d.daemon.camera
            assert camera is not None and camera.status()["people"] == 1

    asyncio.run(scenario())


def test_missing_camera_is_a_fault_until_it_appears(tmp_path: Path, frames, enrolled):
    # Also: obama is enrolled while the daemon runs; the face process picks the change up.
    video = tmp_path / "later.avi"

    async def scenario() -> None:
        async with face_door(tmp_path, video, {}, {}) as (d, cards, cfg):
            ev, _ = await wait_for(d, "reader_fault", 30.0)
            assert ev.payload["reader"] == "camera" and "does not exist" in ev.payload["error"]
            # The card reader keeps deciding while the camera is down.
            cards.tap("0F00BC614E")
            ev, _ = await wait_for(d, "access_denied", 5.0)
            assert ev.payload["kind"] == "card"
            enrol_faces(cfg, {"obama": enrolled["obama"]}, {})
            d.daemon.credentials_changed()
            cam.write_video(video, cam.sequence([(frames["obama2"], 45)]), FPS)
            await wait_for(d, "reader_recovered", 15.0)
            ev, _ = await wait_for(d, "access_granted", 15.0)
            assert ev.payload["person"] == "obama" and ev.payload["kind"] == "face"
            assert d.daemon.camera is not None
            assert d.daemon.camera.status()["people"] == 1  # reloaded, started empty

    asyncio.run(scenario())


def test_card_and_face_door(tmp_path: Path, frames, enrolled):
    # Obama stands at the door all along; alice (card, no face here) and obama tap cards.
    video = cam.write_video(tmp_path / "door.avi", cam.sequence([(frames["obama2"], 400)]), FPS)

    async def scenario() -> None:
        faces = {"obama": enrolled["obama"], "biden": enrolled["biden"]}
        cards_ = {"obama": "0A0000BEEF", "alice": "0F00BC614E", "biden": "0B0000CAFE"}
        async with face_door(
            tmp_path,
            video,
            faces,
            cards_,
            mode="card+face",
            card_face_window_seconds=2.0,
            redecide_seconds=0.5,
        ) as (d, cards, _):
            # The face alone never opens at a card+face door.
            await asyncio.sleep(4.0)
            assert d.events.empty() and not d.lock_high
            cards.tap("0A0000BEEF")
            ev, before = await wait_for(d, "access_granted", 10.0)
            assert ev.payload["kind"] == "card" and ev.payload["person"] == "obama"
            assert ev.payload["factors"] == ["card", "face"] and ev.payload["score"] < 0.5
            assert not before[:-1]
            # Biden's card with obama's face in front of the camera: refused.
            await asyncio.sleep(0.6)
            cards.tap("0B0000CAFE")
            ev, _ = await wait_for(d, "access_denied", 10.0)
            assert ev.payload["person"] == "biden"
            assert ev.payload["reason"] in {"face_mismatch", "face_required"}
            assert not d.lock_high

    asyncio.run(scenario())
