"""``edgegate enroll finger``: enrolment on the door's own fingerprint sensor.

The sensor's serial port is opened exclusively, so enrolment runs while the daemon is stopped
(or on a second sensor at a desk); the credential it writes is read by the daemon on its next
lookup, no restart needed.

The credential gets a site-wide value (``<person>.<16 hex>``) so the template can be sent to
other doors; this door's slot is recorded in ``finger_slots``; the template is sealed at rest.
``--export FILE`` also writes the template file the central office imports to distribute it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgegate.cli import enroll_face
from edgegate.cli.common import CliError, add_config_arg, load_config, open_store
from edgegate.store import credentials as creds
from edgegate.store.db import transaction

if TYPE_CHECKING:
    from edgegate.config.models import Config, FingerprintConfig
    from edgegate.hardware.fingerprint.sensor import FingerprintSensor


def register(kinds: argparse._SubParsersAction) -> None:
    finger = kinds.add_parser("finger", help="enrol a finger on the door's sensor")
    add_config_arg(finger)
    finger.add_argument("--person", required=True, help="person id")
    finger.add_argument("--name", default=None, help="person's display name")
    finger.add_argument("--slot", type=int, default=None, help="sensor slot (default: first free)")
    finger.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for touches")
    finger.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the template file (0600) for the central office to import and "
        "send to the other doors",
    )
    finger.set_defaults(func=cmd_enroll_finger)
    enroll_face.register(kinds)


@contextlib.asynccontextmanager
async def open_sensor(fp: FingerprintConfig) -> AsyncIterator[FingerprintSensor]:
    """The configured sensor, opened and verified (VfyPwd + ReadSysPara), closed after."""
    from edgegate.hardware.fingerprint.sensor import FingerprintSensor

    sensor = FingerprintSensor(
        fp.port, baudrate=fp.baudrate, address=fp.address, password=fp.password
    )
    await sensor.open()
    try:
        await sensor.handshake()
        yield sensor
    finally:
        sensor.close()


async def _enroll(fp: FingerprintConfig, slot: int | None, timeout: float) -> tuple[int, bytes]:
    from edgegate.hardware.fingerprint.reader import enroll, export_template

    async with open_sensor(fp) as sensor:
        slot = await enroll(sensor, slot, prompt=_say, timeout=timeout)
        return slot, await export_template(sensor, slot)


async def capture_for_office(
    fp: FingerprintConfig, timeout: float = 60.0, prompt: Callable[[str], None] | None = None
) -> tuple[bytes, str]:
    """For `edgegate central people add-credential --kind finger` on the office PC: capture a
    finger on the desk sensor configured as ``fp`` and return (template, model); nothing is
    stored in the sensor. The caller sends it as a finger credential (value from
    ``finger_slots.new_finger_value``, label ``model=<model>``)."""
    from edgegate.hardware.fingerprint.reader import capture_template

    async with open_sensor(fp) as sensor:
        return await capture_template(sensor, fp.model, prompt or _say, timeout=timeout)


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_enroll_finger(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    fp = config.fingerprint
    if fp is None:
        raise CliError(f"{args.config}: no [fingerprint] section: no sensor configured")
    if args.export is not None and args.export.exists():
        raise CliError(f"{args.export} exists; not overwriting a template file")
    if args.export is not None and not re.match(r"^[A-Za-z0-9_.@:-]{1,128}$", args.person):
        raise CliError(f"person id {args.person!r} cannot be sent to the central office", 2)
    from edgegate.hardware.fingerprint.errors import FingerprintError
    from edgegate.store.finger_slots import new_finger_value, put_finger
    from edgegate.store.sealed import SealError, load_key

    try:
        key = load_key(config.storage.path, config.storage.key_file)
    except SealError as exc:
        raise CliError(f"cannot seal the template: {exc}") from None
    try:
        slot, template = asyncio.run(_enroll(fp, args.slot, args.timeout))
    except (FingerprintError, OSError) as exc:
        raise CliError(f"fingerprint enrolment failed: {exc}") from None
    value = new_finger_value(args.person)
    conn = open_store(config)
    with transaction(conn):
        existing = conn.execute("SELECT name FROM people WHERE id = ?", (args.person,)).fetchone()
        if existing is None or args.name is not None:
            creds.upsert_person(conn, creds.Person(args.person, args.name or ""))
        # Tagged with the sensor family: templates are not portable between families.
        put_finger(conn, key, args.person, value, fp.model, template, slot=slot)
    print(f"enrolled finger of {args.person} in slot {slot} as {value} ({len(template)} bytes)")
    if args.export is not None:
        _export(args, config, value, template)
    return 0


def _export(args: argparse.Namespace, config: Config, value: str, template: bytes) -> None:
    from edgegate.hardware.fingerprint.template_file import (
        make_template_file,
        write_template_file,
    )

    assert config.fingerprint is not None
    content = make_template_file(
        site=config.door.site,
        door=config.door.id,
        person=args.person,
        name=args.name or "",
        value=value,
        model=config.fingerprint.model,
        template=template,
    )
    try:
        write_template_file(args.export, content)
    except OSError as exc:
        raise CliError(f"enrolled, but the template file was not written: {exc}") from None
    print(f"template file for the central office: {args.export} (delete it once imported)")
