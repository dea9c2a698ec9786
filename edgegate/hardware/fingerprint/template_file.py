"""The template file: how a finger enrolled at a door reaches the central office.

``edgegate enroll finger --export FILE`` writes one JSON object: the person, the site-wide
credential value, the sensor family and the template (base64). The office imports it and sends
the credential to every door like any other. Templates never travel in events; this file is
the only way out of a door, it is written owner-only (0600) and holds the template in clear,
so it is carried by hand (or over SSH) and deleted once imported (docs/fingerprint.md).

``parse_template_file`` is strict: unknown keys, a wrong type, bad base64 or an empty or
oversized template are a ``TemplateFileError`` naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgegate.errors import EdgegateError
from edgegate.hardware.fingerprint.sensor import MAX_UPLOAD

FILE_TYPE = "finger_template"
MAX_FILE_BYTES = 64 * 1024
_ID = r"^[A-Za-z0-9_.@:-]{1,128}$"


class TemplateFileError(EdgegateError, ValueError):
    """A template file that cannot be used as given."""


class TemplateFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["finger_template"] = Field(description="Always 'finger_template'.")
    v: Literal[1] = Field(1, description="Format version.")
    site: str = Field("", max_length=64, description="Site of the enrolling door.")
    door: str = Field("", max_length=64, description="Door where the finger was enrolled.")
    person: str = Field(pattern=_ID, description="Person id, as at the central office.")
    name: str = Field("", max_length=200, description="Person's display name, if given.")
    value: str = Field(min_length=1, max_length=128, description="Site-wide credential value.")
    model: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Sensor family.")
    template: str = Field(
        min_length=1, max_length=4 * MAX_UPLOAD // 3 + 4, description="Base64 template."
    )
    created: str = Field("", max_length=40, description="RFC 3339 UTC time of enrolment.")

    def template_bytes(self) -> bytes:
        try:
            data = base64.b64decode(self.template, validate=True)
        except (binascii.Error, ValueError):
            raise TemplateFileError("template: not valid base64") from None
        if not data or len(data) > MAX_UPLOAD:
            raise TemplateFileError(f"template: {len(data)} bytes (1..{MAX_UPLOAD} expected)")
        return data

    def as_credential(self) -> dict[str, str]:
        """The credential to send to the doors (the fields of contract.messages.CredentialMsg)."""
        return {
            "kind": "finger",
            "value": self.value,
            "person": self.person,
            "label": f"model={self.model}",
            "data": self.template,
        }


def make_template_file(
    *, site: str, door: str, person: str, name: str, value: str, model: str, template: bytes
) -> TemplateFile:
    return TemplateFile(
        type=FILE_TYPE,
        site=site,
        door=door,
        person=person,
        name=name,
        value=value,
        model=model,
        template=base64.b64encode(template).decode(),
        created=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )


def parse_template_file(text: str | bytes) -> TemplateFile:
    """Parse and check a template file's content (the template is decoded once to check it)."""
    if len(text) > MAX_FILE_BYTES:
        raise TemplateFileError(f"file larger than {MAX_FILE_BYTES} bytes")
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise TemplateFileError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise TemplateFileError("not a JSON object")
    try:
        parsed = TemplateFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise TemplateFileError(f"{where}: {first['msg']}") from None
    parsed.template_bytes()
    return parsed


def write_template_file(path: Path, content: TemplateFile) -> None:
    """Write owner-only; refuses to overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content.model_dump_json(indent=1) + "\n")


def read_template_file(path: Path) -> TemplateFile:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TemplateFileError(f"{path}: {exc.strerror or exc}") from None
    return parse_template_file(data)
