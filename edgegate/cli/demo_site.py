"""``edgegate demo --site``: a whole site on this machine, what ``./scripts/setup.sh demo`` runs.

A real mosquitto, the office (``central serve`` with its console on localhost, a real
process), and three doors (daemons in this process on gpiozero mock pins, readers simulated on
pseudo-terminals): ``front`` (RDM6300 cards), ``lab`` (cards and a fingerprint sensor) and
``garage`` (cards and a door contact). They produce traffic: known and unknown cards, a lost
card, a forced door at the garage and a request for staff at the lab (three unknown fingers).
It prints the console's address and a demo sign-in and runs until Ctrl-C (or ``--seconds``),
then stops everything and removes its temporary directory. A face camera is not simulated
here (the face pipeline's demo is ``edgegate enroll face`` with the test photos).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import httpx
from gpiozero.pins.mock import MockFactory

from edgegate import logging_setup
from edgegate.central.config import load_central
from edgegate.central.services import Actor, credentials, open_office, operators
from edgegate.config import Config, parse
from edgegate.contract import signing
from edgegate.daemon.app import Daemon
from edgegate.sim.broker import Broker
from edgegate.sim.fingerprint import FingerprintSimulator, finger_template
from edgegate.sim.rdm6300 import Rdm6300Simulator

SITE = "demo"
CONTACT = 5
PEOPLE = {
    "alice": ("Alice Martin", "0F00BC614E"),
    "bob": ("Bob Okafor", "1A2B3C4D5E"),
    "carol": ("Carol Jensen", "0E0E0E0E0E"),
    "dave": ("Dave Lost-Card", "4400DEAD01"),
}
UNKNOWN = "7700112233"
SETUP = Actor("demo-setup", "cli")


def _free(port: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))  # 0, or a port taken: any free one
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def office_config(work: Path, broker: Broker, port: int, site: str = SITE) -> Path:
    """An office's central.toml in ``work`` with its console on 127.0.0.1:``port`` (the demo's
    and the console benchmarks')."""
    path = work / "central.toml"
    path.write_text(
        f"""[central]
site = "{site}"
key_file = "{work / "central.key"}"
db = "{work / "central.db"}"

[mqtt]
host = "{broker.host}"
port = {broker.port}

[http]
listen = "127.0.0.1"
port = {port}

[logging]
level = "warning"
"""
    )
    return path


def _door(
    work: Path,
    name: str,
    broker: Broker,
    key: str,
    cards: str,
    fp: str | None = None,
    contact: bool = False,
) -> Config:
    raw: dict = {
        "door": {"site": SITE, "id": name, "unlock_seconds": 2},
        "gpio": {
            "pin_factory": "mock",
            "lock": 17,
            "green_led": 27,
            "red_led": 22,
            "buzzer": 23,
            **({"door_contact": CONTACT} if contact else {}),
        },
        "readers": [{"type": "rdm6300", "port": cards, "name": "entry", "hold_off_seconds": 0}],
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "central_public_keys": [key],
            "telemetry_seconds": 5,
        },
        "storage": {"path": str(work / name / "door.db")},
        "daemon": {"watchdog": False},
        "logging": {"level": "warning"},
    }
    if fp:
        raw["fingerprint"] = {"port": fp, "poll_interval": 0.05, "assist_after": 3}
    (work / name).mkdir()
    return parse(raw, work / name / "edgegate.toml")


async def run_site(work: Path, port: int, seconds: float | None, speed: float) -> int:
    out = sys.stdout
    (work / "broker").mkdir()
    broker = Broker(workdir=work / "broker")
    broker.start()
    stack = contextlib.AsyncExitStack()
    serve: subprocess.Popen[bytes] | None = None
    try:
        stack.callback(broker.stop)
        key = signing.generate()
        (work / "central.key").write_bytes(signing.private_pem(key))
        os.chmod(work / "central.key", 0o600)
        public = signing.public_text(key.public_key())
        http_port = _free(port)
        cfg_path = office_config(work, broker, http_port)
        config = load_central(cfg_path)
        office = open_office(config)
        password = secrets.token_urlsafe(9)
        operators.add(office.engine, SETUP, "demo", "admin", password)
        for pid, (name, uid) in PEOPLE.items():
            credentials.save_person(office, SETUP, pid, name=name, groups=["staff"], cards=[uid])
        credentials.set_card_enabled(office, SETUP, PEOPLE["dave"][1], False, "lost")
        office.engine.dispose()
        tpl = work / "bob.tpl"
        tpl.write_bytes(finger_template("bob-thumb"))
        from edgegate.cli.main import main

        with (
            contextlib.redirect_stdout(open(os.devnull, "w")),
            contextlib.redirect_stderr(open(os.devnull, "w")),
        ):
            main(
                [
                    "central",
                    "people",
                    "add-credential",
                    "bob",
                    "--kind",
                    "finger",
                    "--data-file",
                    str(tpl),
                    "--label",
                    "model=r307",
                    "--config",
                    str(cfg_path),
                ]
            )
        log = (work / "office.log").open("wb")
        serve = subprocess.Popen(
            [sys.executable, "-m", "edgegate", "central", "serve", "--config", str(cfg_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            # Stopped by us (SIGTERM below) after the doors, not by the terminal's Ctrl-C.
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{http_port}/"
        deadline = time.monotonic() + 60
        while True:
            if serve.poll() is not None:
                print("the office did not start; its log:", file=sys.stderr)
                print((work / "office.log").read_text(), file=sys.stderr)
                return 1
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "signin", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                return 1
            await asyncio.sleep(0.2)

        readers: dict[str, Rdm6300Simulator] = {}
        factories: dict[str, MockFactory] = {}
        fp = stack.enter_context(FingerprintSimulator())
        for name in ("front", "lab", "garage"):
            sim = stack.enter_context(Rdm6300Simulator())
            readers[name] = sim
            cfg = _door(
                work,
                name,
                broker,
                public,
                sim.port,
                fp.port if name == "lab" else None,
                contact=name == "garage",
            )
            factories[name] = MockFactory()
            daemon = Daemon(cfg, pin_factory=factories[name])
            await daemon.start()
            stack.push_async_callback(daemon.stop)
        factories["garage"].pin(CONTACT).drive_low()  # the garage door stands closed

        print(
            f"""
edgegate site demo
  console:  {url}
  sign in:  demo / {password}   (admin)
  broker:   mqtt://{broker.host}:{broker.port}   doors: front, lab, garage
  traffic:  cards at every door, a lost card, a forced garage door, staff called at the lab
  Ctrl-C stops everything and removes {work}
""",
            file=out,
            flush=True,
        )

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        if seconds is not None:
            loop.call_later(seconds, stop.set)
        await _traffic(stop, readers, factories, fp, speed, out)
        return 0
    finally:
        if serve is not None and serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(15)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait(5)
        await stack.aclose()


async def _traffic(
    stop: asyncio.Event,
    readers: dict[str, Rdm6300Simulator],
    factories: dict[str, MockFactory],
    fp: FingerprintSimulator,
    speed: float,
    out: TextIO,
) -> None:
    rnd = random.Random(7)
    step = 0

    async def pause(s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), s / speed)
        return stop.is_set()

    if await pause(3):  # let the doors take their snapshots
        return
    while not stop.is_set():
        step += 1
        door = rnd.choice(list(readers))
        if step % 17 == 5:
            print("  garage: door forced open", file=out, flush=True)
            factories["garage"].pin(CONTACT).drive_high()
            if await pause(3):
                return
            factories["garage"].pin(CONTACT).drive_low()
        elif step % 23 == 9:
            print("  lab: three unknown fingers, staff called", file=out, flush=True)
            for _ in range(3):
                fp.place_finger("stranger")
                if await pause(1):
                    return
                fp.lift_finger()
                if await pause(0.5):
                    return
        elif step % 7 == 3:
            fp.place_finger("bob-thumb")
            if await pause(1):
                return
            fp.lift_finger()
        else:
            uid = rnd.choices(
                [c for _n, c in PEOPLE.values()] + [UNKNOWN], weights=[5, 4, 3, 1, 1]
            )[0]
            readers[door].tap(uid)
        if await pause(rnd.uniform(1.0, 2.5)):
            return


def cmd_site(args) -> int:  # type: ignore[no-untyped-def]
    logging_setup.configure("warning", "console", to_stdout=True)
    work = Path(tempfile.mkdtemp(prefix="edgegate-site-"))
    try:
        return asyncio.run(run_site(work, args.port, args.seconds, max(args.speed, 0.01)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        print(f"stopped; removed {work}", flush=True)
