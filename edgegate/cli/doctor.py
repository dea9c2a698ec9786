"""``edgegate doctor --config PATH``: every configured part, checked, in plain words.

Exit 0 when nothing failed (warnings allowed), 1 when something failed, 2 when the config
itself is invalid (as ``check-config``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from edgegate.cli.common import add_config_arg
from edgegate.config import ConfigError, load
from edgegate.doctor import Check, Status, fail, ok
from edgegate.doctor.broker import check_broker, check_homeassistant
from edgegate.doctor.devices import check_camera, check_serial_devices
from edgegate.doctor.face import check_face
from edgegate.doctor.local import check_clock, check_file_trust, check_gpio, check_store

MARK = {Status.OK: "ok  ", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def register(sub: argparse._SubParsersAction) -> None:
    doctor = sub.add_parser("doctor", help="check every configured part and say what is wrong")
    add_config_arg(doctor)
    doctor.add_argument(
        "--listen",
        type=float,
        default=2.0,
        help="seconds to listen to each card reader (default 2; hold a card meanwhile)",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)


def run_checks(args: argparse.Namespace) -> tuple[list[Check], int]:
    try:
        config = load(args.config)
    except ConfigError as exc:
        return [fail("config", line) for line in exc.problems], 2
    checks = [
        ok(
            "config",
            f"{args.config} is valid (site {config.door.site}, door {config.door.id}, "
            f"{len(config.readers)} card reader(s))",
        )
    ]
    checks += check_file_trust(args.config, config)
    checks += check_store(config)
    checks += asyncio.run(check_serial_devices(config, args.listen))
    checks += check_camera(config)
    checks += check_face(config)
    checks += check_gpio(config)
    checks += check_broker(config)
    checks += check_homeassistant(config)
    checks += check_clock()
    failed = any(c.status is Status.FAIL for c in checks)
    return checks, 1 if failed else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    checks, code = run_checks(args)
    if args.json:
        print(json.dumps({"checks": [c.as_dict() for c in checks], "exit": code}, indent=1))
        return code
    width = max(len(c.part) for c in checks)
    for c in checks:
        print(f"{MARK[c.status]}  {c.part:<{width}}  {c.message}")
    counts = {s: sum(c.status is s for c in checks) for s in Status}
    verdict = "all good" if code == 0 else "something is wrong (see FAIL above)"
    print(
        f"\n{counts[Status.OK]} ok, {counts[Status.WARN]} warning(s), "
        f"{counts[Status.FAIL]} failure(s): {verdict}",
        file=sys.stdout,
    )
    return code
