"""``edgegate enroll finger``: enrolment on the door's own fingerprint sensor.

The sensor's serial port is opened exclusively, so enrolment runs while the daemon is stopped
(or on a second sensor at a desk); the credential it writes is read by the daemon on its next
lookup, no restart needed.
"""

from __future__ import annotations

import argparse
import asyncio

from edgegate.cli import enroll_face
from edgegate.cli.common import CliError, add_config_arg, load_config, open_store
from edgegate.store import credentials as creds
from edgegate.store.db import transaction


def register(kinds: argparse._SubParsersAction) -> None:
    finger = kinds.add_parser("finger", help="enrol a finger on the door's sensor")
    add_config_arg(finger)
    finger.add_argument("--person", required=True, help="person id")
    finger.add_argument("--name", default=None, help="person's display name")
    finger.add_argument("--slot", type=int, default=None, help="sensor slot (default: first free)")
    finger.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for touches")
    finger.set_defaults(func=cmd_enroll_finger)
    enroll_face.register(kinds)


async def _enroll(fp, slot: int | None, timeout: float) -> tuple[int, bytes]:
    from edgegate.hardware.fingerprint.reader import enroll, export_template
    from edgegate.hardware.fingerprint.sensor import FingerprintSensor

    sensor = FingerprintSensor(
        fp.port, baudrate=fp.baudrate, address=fp.address, password=fp.password
    )
    await sensor.open()
    try:
        await sensor.handshake()
        slot = await enroll(sensor, slot, prompt=lambda s: print(s, flush=True), timeout=timeout)
        template = await export_template(sensor, slot)
    finally:
        sensor.close()
    return slot, template


def cmd_enroll_finger(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    fp = config.fingerprint
    if fp is None:
        raise CliError(f"{args.config}: no [fingerprint] section: no sensor configured")
    from edgegate.hardware.fingerprint.errors import FingerprintError

    try:
        slot, template = asyncio.run(_enroll(fp, args.slot, args.timeout))
    except (FingerprintError, OSError) as exc:
        raise CliError(f"fingerprint enrolment failed: {exc}") from None
    conn = open_store(config)
    with transaction(conn):
        existing = conn.execute("SELECT name FROM people WHERE id = ?", (args.person,)).fetchone()
        if existing is None or args.name is not None:
            creds.upsert_person(conn, creds.Person(args.person, args.name or ""))
        # The template is kept so the central office can push it to other doors; it is tagged
        # with the sensor family because templates are not portable between families.
        creds.add_credential(
            conn, "finger", str(slot), args.person, label=f"model={fp.model}", data=template
        )
    print(f"enrolled finger of {args.person} in slot {slot} ({len(template)}-byte template)")
    return 0
