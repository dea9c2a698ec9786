"""Doctor checks of the machine itself: store, GPIO pins, clock."""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import sqlite3
import subprocess
from pathlib import Path

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from edgegate.config.file_trust import file_problems
from edgegate.config.models import Config
from edgegate.doctor import Check, fail, ok, warn
from edgegate.hardware.gpio import make_pin_factory
from edgegate.hardware.inputs import INPUT_NAMES
from edgegate.store import sealed
from edgegate.store.db import SCHEMA_VERSION
from edgegate.store.identity import StoreVanished, check_before_open

OUTPUT_NAMES = ("lock", "green_led", "red_led", "buzzer")
# What an input's state means, (active, inactive), in a technician's words. Active is the pin
# pulled low for a normally-open input, the contact open for a normally-closed one.
INPUT_STATES = {
    "door_contact": ("door closed", "door open"),
    "exit_button": ("pressed", "not pressed"),
    "fire_alarm": ("FIRE ALARM ACTIVE", "no alarm"),
    "obstruction": ("obstructed", "clear"),
}

# Inputs whose cut wire must read as active (life safety), and what a cut reads as otherwise.
FAIL_SAFE_INPUTS = {"fire_alarm": "no alarm", "obstruction": "clear"}


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_file_trust(config_path: Path, config: Config) -> list[Check]:
    """The permissions ``run`` refuses to start with (fail) or flags (warn), each with the
    command that fixes it."""
    problems = file_problems(config_path, config)
    if not problems:
        return [ok("permissions", "trust and secret files are writable only by their owner")]
    checks = []
    for p in problems:
        why = (
            "; the door refuses to start: whoever can write it can add a key and sign unlocks"
            if p.fatal
            else ""
        )
        checks.append((fail if p.fatal else warn)("permissions", p.line() + why))
    return checks


def check_store(config: Config) -> list[Check]:
    path = config.storage.path
    try:
        check_before_open(path)
    except StoreVanished as exc:
        return [fail("store", f"{exc}: {exc.fix}")]
    if not path.exists():
        return [warn("store", f"{path} does not exist yet; the daemon creates it on first start")]
    size = path.stat().st_size + sum(
        p.stat().st_size for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return [fail("store", f"{path} cannot be opened: {exc}")]
    try:
        # The full check reads every page: a few seconds on a large store, fine for doctor.
        result = [r[0] for r in conn.execute("PRAGMA integrity_check(5)")]
        if result != ["ok"]:
            return [fail("store", f"{path} is damaged: {'; '.join(result)} (restore a backup)")]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        counts = {}
        held = None
        if version:
            for table, sql in (
                ("people", "SELECT COUNT(*) FROM people"),
                ("credentials", "SELECT COUNT(*) FROM credentials"),
                ("unsent events", "SELECT COUNT(*) FROM events WHERE sent = 0"),
                ("sealed", "SELECT COUNT(*) FROM credentials WHERE data IS NOT NULL"),
            ):
                counts[table] = conn.execute(sql).fetchone()[0]
            held = conn.execute("SELECT value FROM meta WHERE key = 'local_people_held'").fetchone()
    except sqlite3.DatabaseError as exc:
        return [fail("store", f"{path} is damaged or not a store: {exc} (restore a backup)")]
    finally:
        conn.close()
    out: list[Check] = []
    if version and held:
        out.append(
            warn(
                "local people",
                f"the office's snapshot was refused to keep the people enrolled at this door "
                f"({held[0]}); an operator reviews them at the office: edgegate central doors "
                "import-local DOOR (docs/central.md)",
            )
        )
    sealed_count = counts.pop("sealed", 0)
    detail = ", ".join(f"{n} {k}" for k, n in counts.items())
    if version > SCHEMA_VERSION:
        out.append(fail("store", f"{path} has schema {version}, newer than this edgegate"))
    elif version < SCHEMA_VERSION:
        out.append(warn("store", f"{path} has schema {version}; the daemon migrates it on start"))
    out.append(ok("store", f"{path} passes the integrity check ({human_size(size)}; {detail})"))
    key = sealed.key_path(path, config.storage.key_file)
    try:
        sealed.load_key(path, config.storage.key_file, create=False)
        out.append(ok("store key", f"biometric sealing key {key} is readable"))
    except (sealed.SealError, OSError) as exc:
        if sealed_count:
            msg = f"{exc}: {sealed_count} enrolled finger(s)/face(s) cannot be opened"
            out.append(fail("store key", msg))
        else:
            out.append(
                ok("store key", f"{key} not created yet (made at the first biometric enrolment)")
            )
    return out


def check_gpio(config: Config) -> list[Check]:
    gpio = config.gpio
    try:
        factory = make_pin_factory(gpio.pin_factory)
    except Exception as exc:  # any factory's own error: missing library, not a Pi, no rights
        hint = ""
        if ".lgd-nfy" in str(exc):  # lgpio makes its pipes in the current directory
            hint = " (lgpio needs a writable current directory: cd /tmp and run again)"
        return [fail("gpio", f"pin factory {gpio.pin_factory!r} cannot start: {exc}{hint}")]
    out = [ok("gpio", f"pin factory {gpio.pin_factory!r} works")]
    devices = []
    try:
        for name in (*OUTPUT_NAMES, *INPUT_NAMES):
            pin = getattr(gpio, name, None)
            if pin is None:
                continue
            try:
                if name in OUTPUT_NAMES:
                    # Claimed in the inactive state: the lock stays locked, nothing lights up.
                    active_high = gpio.lock_active_high if name == "lock" else True
                    dev = DigitalOutputDevice(
                        pin, active_high=active_high, initial_value=False, pin_factory=factory
                    )
                    state = "output, off"
                else:
                    dev = DigitalInputDevice(pin, pull_up=True, pin_factory=factory)
                    nc = name in gpio.normally_closed
                    active = bool(dev.is_active) != nc
                    words = INPUT_STATES.get(name, ("active", "inactive"))[0 if active else 1]
                    contact = "normally closed" if nc else "normally open"
                    state = f"input, {contact}, {words}"
                devices.append(dev)
                out.append(ok(f"gpio {name}", f"pin {pin} claimed ({state})"))
                if name in FAIL_SAFE_INPUTS and name not in gpio.normally_closed:
                    out.append(
                        warn(
                            f"gpio {name}",
                            f"wired normally open: a cut wire reads as {FAIL_SAFE_INPUTS[name]}; "
                            f'use a normally-closed contact and normally_closed = ["{name}"] '
                            "(docs/wiring.md)",
                        )
                    )
            except Exception as exc:  # gpiozero raises many types: busy, invalid, no rights
                out.append(fail(f"gpio {name}", f"pin {pin} cannot be used: {exc}"))
    finally:
        for dev in devices:
            dev.close()
        factory.close()  # releases the GPIO chip handle
    return out


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>, up to ``status``; the kernel writes the whole struct,
    # so the padding gives it room (the real size is 208 bytes on 64-bit Linux).
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 512),
    ]


TIME_ERROR = 5  # adjtimex's return when the clock is not synchronised


def adjtimex_synchronised() -> bool | None:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        tx = _Timex()  # modes = 0: read only, allowed without privileges
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


def check_clock() -> list[Check]:
    why = "events carry wrong times and schedules and visitor passes misjudge"
    if shutil.which("timedatectl"):
        proc = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        value = proc.stdout.strip()
        if proc.returncode == 0 and value in ("yes", "no"):
            if value == "yes":
                return [ok("clock", "synchronised by NTP (timedatectl)")]
            return [warn("clock", f"not synchronised (timedatectl): {why}")]
    synced = adjtimex_synchronised()
    if synced is None:
        return [warn("clock", "cannot tell whether the clock is synchronised")]
    if synced:
        return [ok("clock", "the kernel reports the clock synchronised (adjtimex)")]
    return [warn("clock", f"the kernel reports the clock unsynchronised (adjtimex): {why}")]
