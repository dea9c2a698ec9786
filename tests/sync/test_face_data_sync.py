"""Face ``data`` from the central office over the real broker: versioned and legacy encodings
are stored versioned; another descriptor model or an unknown format version is stored but
unusable (logged, counted by the gallery as ``face_format``) so the rest of the message still
applies; malformed data refuses the message as ``malformed``; the door goes on."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import numpy as np
import pytest

from edgegate.face import face_format as ff
from edgegate.face.credentials import load_faces, to_wire
from edgegate.sim.broker import Broker
from edgegate.store.db import open_db
from edgegate.store.sealed import load_key, unseal
from tests.conftest import all_logs
from tests.sync.central import update
from tests.sync.test_door_inbound import scenario_door
from tests.sync.test_door_sync import ALICE, until

pytestmark = pytest.mark.broker
ENC = np.random.default_rng(3).normal(0, 0.1, (2, 128)).astype(np.float32)


def put_face(value: str, data: bytes | str) -> dict:
    text = data if isinstance(data, str) else base64.b64encode(data).decode()
    cred = {"kind": "face", "value": value, "person": "alice", "data": text}
    return {"op": "put_credential", "credential": cred}


def test_face_data_formats_over_mqtt(tmp_path: Path, broker: Broker):
    other = ff.HEADER.pack(ff.MAGIC, 1, 512, 1, b"arcface_r100") + bytes(2048)
    newer = ff.HEADER.pack(ff.MAGIC, 7, 128, 2, b"dlib_resnet_v1") + ENC.tobytes()

    async def body(d, central, sim):
        sync, t = d.daemon.sync, central.topics
        send = central.send
        torn = ff.encode(ENC.tobytes())[:-1]
        await asyncio.to_thread(send, t.credentials, update(1, 0, [put_face("face-torn", torn)]))
        await until(lambda: sum(sync.rejected.values()) == 1)
        assert dict(sync.rejected) == {"malformed": 1} and sync.version == 0
        # Faces this door cannot read do not hold back the rest of the update.
        legacy = put_face("face-legacy", ENC.astype("<f4").tobytes())
        ops = [
            put_face("face-new", newer),
            put_face("face-oth", other),
            legacy,
            put_face("face-v1", to_wire(ENC)),
        ]
        await asyncio.to_thread(send, t.credentials, update(1, 0, ops))
        await until(lambda: sync.version == 1)
        assert dict(sync.rejected) == {"malformed": 1}
        sim.tap(ALICE)
        ev = await d.next_event()
        while ev.type != "access_granted":
            ev = await d.next_event()

    with all_logs() as logs:
        scenario_door(tmp_path, broker, body)
    rejected = [e for e in logs if e["event"] == "mqtt_message_rejected"]
    assert "face face-torn" in " | ".join(e["detail"] for e in rejected)
    unusable = {e["value"]: e["error"] for e in logs if e["event"] == "face_credential_unusable"}
    assert "face data format version 7 is not supported" in unusable["face-new"]
    assert "descriptor model 'arcface_r100'" in unusable["face-oth"]
    assert "this door uses 'dlib_resnet_v1'" in unusable["face-oth"]
    db = tmp_path / "door.db"
    conn = open_db(db, readonly=True, check=False)
    key = load_key(db)
    blobs = dict(conn.execute("SELECT value, data FROM credentials WHERE kind = 'face'"))
    faces, bad = load_faces(conn, key)
    conn.close()
    assert sorted(blobs) == ["face-legacy", "face-new", "face-oth", "face-v1"]
    assert bad == 2  # face-new and face-oth: stored, unusable here, counted
    # The legacy data was re-tagged when it was stored: every usable row at rest is versioned.
    for value in ("face-legacy", "face-v1"):
        assert ff.decode(unseal(key, "face", value, blobs[value])).version == 1
    for _, enc, _ in faces:
        np.testing.assert_array_equal(enc, ENC)
