"""Getting a template out for distribution: the office capture and the door's template file."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import stat
from pathlib import Path

import pytest
from fp_helpers import wait_until
from hypothesis import given
from hypothesis import strategies as st

from edgegate.cli.enroll_bio import capture_for_office
from edgegate.config.models import FingerprintConfig
from edgegate.contract.messages import CredentialMsg
from edgegate.hardware.fingerprint.sensor import MAX_UPLOAD
from edgegate.hardware.fingerprint.template_file import (
    TemplateFileError,
    make_template_file,
    parse_template_file,
    read_template_file,
    write_template_file,
)
from edgegate.sim.fingerprint import FingerprintSimulator, finger_template


def test_office_capture_returns_template_and_model_without_storing(sim: FingerprintSimulator):
    prompts: list[str] = []

    async def touch() -> None:
        await wait_until(lambda: any("Place your finger" in p for p in prompts))
        sim.place_finger("ivan")
        await wait_until(lambda: any("Lift" in p for p in prompts))
        sim.lift_finger()
        await wait_until(lambda: any("same finger" in p for p in prompts))
        sim.place_finger("ivan", quality=0.95)

    async def main() -> tuple[bytes, str]:
        finger = asyncio.create_task(touch())
        # The office PC's desk sensor, configured like a door's ([fingerprint] model=r503).
        result = await capture_for_office(
            FingerprintConfig(port=sim.port, model="r503"), 5, prompts.append
        )
        await finger
        return result

    template, model = asyncio.run(main())
    assert model == "r503"
    assert template == finger_template("ivan")  # RegModel keeps the first capture here
    assert sim.library == {}  # nothing stored on the office sensor


def _file(**over) -> dict:
    content = make_template_file(
        site="hq", door="front", person="bob", name="Bob", value="bob.00ff",
        model="r307", template=finger_template("bob"),
    ).model_dump()  # fmt: skip
    content.update(over)
    return content


def test_round_trip_owner_only_and_no_overwrite(tmp_path: Path):
    path = tmp_path / "bob.json"
    write_template_file(path, parse_template_file(json.dumps(_file())))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    back = read_template_file(path)
    assert back.template_bytes() == finger_template("bob") and back.model == "r307"
    assert back.value == "bob.00ff" and back.person == "bob"
    with pytest.raises(FileExistsError):
        write_template_file(path, back)
    # What the office sends on: a valid credential of the MQTT contract, same value and tag.
    msg = CredentialMsg.model_validate(back.as_credential())
    assert (msg.kind, msg.value, msg.person, msg.label) == (
        "finger",
        "bob.00ff",
        "bob",
        "model=r307",
    )
    assert base64.b64decode(msg.data) == finger_template("bob")


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"template": "not base64!"}, "base64"),
        ({"template": base64.b64encode(b"x" * (MAX_UPLOAD + 1)).decode()}, "template"),
        ({"model": "r 307"}, "model"),
        ({"person": ""}, "person"),
        ({"extra": 1}, "extra"),
        ({"type": "card"}, "type"),
        ({"v": 2}, "v"),
    ],
)
def test_bad_files_name_the_problem(over: dict, message: str):
    with pytest.raises(TemplateFileError, match=message):
        parse_template_file(json.dumps(_file(**over)))


def test_missing_unreadable_and_nested_files(tmp_path: Path):
    with pytest.raises(TemplateFileError, match="No such file"):
        read_template_file(tmp_path / "missing.json")
    with pytest.raises(TemplateFileError):
        parse_template_file("[" * 50_000)
    with pytest.raises(TemplateFileError, match="larger"):
        parse_template_file(b" " * 70_000)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_cleanly(data: bytes):
    with contextlib.suppress(TemplateFileError):
        assert parse_template_file(data).template_bytes()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@given(st.sampled_from(sorted(_file())), JSON)
def test_any_field_replaced_by_any_json_parses_or_fails_cleanly(field: str, value: object):
    content = _file(**{field: value})
    try:
        parsed = parse_template_file(json.dumps(content))
    except TemplateFileError:
        return
    assert parsed.template_bytes()
