"""``central people add-credential``: biometric credentials from the enrolment tools' files.

The wiring point for face and fingerprint enrolment: a door (``edgegate enroll finger
--export FILE``) or the office's own tools produce a file, this sends it to every door as a
credential. Accepted files:

* a finger template file (``finger_template`` JSON, ``hardware/fingerprint/template_file.py``):
  its site-wide value, sensor family (label ``model=<family>``) and template are used as they
  are; its person must be the one named on the command line;
* any other file: raw bytes (a sensor's template, packed face encodings) or base64 text of
  them. A finger then needs ``--label model=<family>`` (templates are not portable between
  sensor families) and gets a new site-wide value ``<person>.<16 hex>``; a face gets
  ``face-<first 16 hex of the SHA-256 of the data>`` (the same encodings, the same id). Face
  data must be versioned face data of the doors' descriptor model or untagged k x 128
  float32 (edgegate/face/face_format.py); it is sent in the versioned form.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from edgegate.cli.central_common import change, master, signer
from edgegate.cli.common import EXIT_USAGE, CliError
from edgegate.contract import messages as m

if TYPE_CHECKING:
    from edgegate.central.config import CentralConfig
    from edgegate.central.services import EncodeFace
    from edgegate.face.encode_process import FaceEncoderProcess

MAX_DATA_FILE = 1_000_000  # CredentialMsg.data holds at most 1,000,000 base64 characters


def as_base64(raw: bytes) -> str:
    """Base64 text of a file's content: kept when it already is base64 text, else encoded."""
    text = raw.strip()
    if text:
        try:
            base64.b64decode(text, validate=True)
            return text.decode("ascii")
        except (binascii.Error, ValueError):
            pass
    return base64.b64encode(raw).decode("ascii")


def _finger_template_file(person: str, raw: bytes, path: Path) -> m.CredentialMsg:
    from edgegate.hardware.fingerprint.template_file import (
        TemplateFileError,
        parse_template_file,
    )

    try:
        tf = parse_template_file(raw)
    except TemplateFileError as exc:
        raise CliError(f"{path}: {exc}", EXIT_USAGE) from None
    if tf.person != person:
        raise CliError(f"{path}: the template is {tf.person}'s, not {person}'s", EXIT_USAGE)
    return m.CredentialMsg.model_validate(tf.as_credential())


def biometric_credential(person: str, kind: str, path: Path, label: str) -> m.CredentialMsg:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_DATA_FILE + 1)
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror or exc}") from None
    if not raw or len(raw) > MAX_DATA_FILE:
        raise CliError(f"{path}: {len(raw)} bytes (1..{MAX_DATA_FILE} expected)", EXIT_USAGE)
    if kind == "finger" and raw.lstrip().startswith(b"{"):
        return _finger_template_file(person, raw, path)
    data = as_base64(raw)
    if kind == "finger":
        if not label.startswith("model="):
            raise CliError("a finger template needs --label model=<sensor family>", EXIT_USAGE)
        from edgegate.store.finger_slots import new_finger_value

        value = new_finger_value(person)
    else:
        data = _face_data(data, path)
        value = f"face-{hashlib.sha256(data.encode()).hexdigest()[:16]}"
    try:
        return m.CredentialMsg(kind=kind, value=value, person=person, label=label, data=data)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise CliError(f"{path}: {exc}", EXIT_USAGE) from None


def _face_data(data: str, path: Path) -> str:
    """Face encodings checked before any door sees them, in the versioned face format
    (edgegate/face/face_format.py); an untagged (legacy) file is tagged ``dlib_resnet_v1``."""
    from edgegate.face import face_format

    try:
        raw = face_format.versioned(base64.b64decode(data))
    except face_format.FaceDataError as exc:
        raise CliError(f"{path}: {exc}", EXIT_USAGE) from None
    return base64.b64encode(raw).decode("ascii")


def captured_finger(config: CentralConfig, person: str, timeout: float) -> m.CredentialMsg:
    """A finger captured on the office's desk sensor (nothing is stored on that sensor)."""
    fp = config.fingerprint
    if fp is None:
        raise CliError("--capture needs a [fingerprint] section (the desk sensor)", EXIT_USAGE)
    from edgegate.cli.enroll_bio import capture_for_office
    from edgegate.hardware.fingerprint.errors import FingerprintError
    from edgegate.store.finger_slots import new_finger_value

    try:
        template, model = asyncio.run(capture_for_office(fp, timeout))
    except (FingerprintError, OSError, TimeoutError) as exc:
        raise CliError(f"fingerprint capture failed: {exc}") from None
    return m.CredentialMsg(
        kind="finger",
        value=new_finger_value(person),
        person=person,
        label=f"model={model}",
        data=base64.b64encode(template).decode("ascii"),
    )


def add_biometric(config: CentralConfig, person: str, args: argparse.Namespace) -> int:
    from edgegate.central import store

    if not args.kind:
        raise CliError("give --kind (face or finger)", EXIT_USAGE)
    if args.capture:
        if args.kind != "finger":
            raise CliError("--capture is for --kind finger", EXIT_USAGE)
        # Checked before anyone touches the sensor: the capture is the slow, human part.
        signer(config)
        with store.reading(master(config)) as conn:
            known = store.get_person(conn, person) is not None
        if not known:
            raise CliError(f"no person {person!r}; add the person first")
        cred = captured_finger(config, person, args.timeout)
        op = m.PutCredential(op="put_credential", credential=cred)
        return change(config, [op], f"added finger {cred.value}")
    if args.image:
        if args.kind != "face":
            raise CliError("--image is for --kind face", EXIT_USAGE)
        return _face_from_photos(config, person, args.image)
    if args.data_file is None:
        raise CliError("give --data-file (or --capture for a finger)", EXIT_USAGE)
    cred = biometric_credential(person, args.kind, args.data_file, args.label)
    op = m.PutCredential(op="put_credential", credential=cred)
    return change(config, [op], f"added {cred.kind} {cred.value}")


def face_encoder() -> EncodeFace | None:
    """The face stack's enrolment function for the office (console, API, ``--image``), or
    None when the face extra is not installed. Nothing heavy is loaded here: dlib and its
    models load on the first enrolment."""
    import importlib.util

    if importlib.util.find_spec("face_recognition") is None:
        return None

    one_at_a_time = threading.Lock()  # ~200 MB of dlib buffers per encoding

    def encode(photos: list[tuple[str, bytes]]) -> bytes:
        from edgegate.face.encode import face_data_from_photos

        with one_at_a_time:
            return face_data_from_photos(photos)

    return encode


def face_encoder_process() -> FaceEncoderProcess | None:
    """``central serve``'s face encoder: the same function in a niced worker process, so
    dlib never holds serve's GIL (``edgegate.face.encode_process``); None without the face
    extra. The caller closes it."""
    import importlib.util

    if importlib.util.find_spec("face_recognition") is None:
        return None
    from edgegate.face.encode_process import FaceEncoderProcess

    return FaceEncoderProcess()


def _face_from_photos(config: CentralConfig, person: str, paths: list[Path]) -> int:
    """``--image``: the same office service as the console's face enrolment."""
    from edgegate.central.services import biometrics, open_office
    from edgegate.cli.central_console import cli_actor

    photos = []
    for path in paths:
        try:
            with path.open("rb") as fh:
                photos.append((str(path), fh.read(biometrics.MAX_PHOTO_BYTES + 1)))
        except OSError as exc:
            raise CliError(f"{path}: {exc.strerror or exc}") from None
    signer(config)  # a missing key must stop the command before anything is computed
    office = open_office(config, encode_face=face_encoder())
    try:
        cred = biometrics.face_credential(office, cli_actor(), person, photos)
    except biometrics.EnrolRefused as exc:
        raise CliError(f"face not enrolled: {exc}") from None
    finally:
        office.close()
    op = m.PutCredential(op="put_credential", credential=cred)
    return change(config, [op], f"added face {cred.value}", "face_enrolled", cred.value)
