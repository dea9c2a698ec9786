"""Card+PIN and the duress PIN end to end: a Wiegand reader with a keypad (simulated wires),
the real Daemon, mock pins and SQLite; plus the pure PIN core and the CLI."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edgegate.cli.main import main
from edgegate.core.decision import Decision, Reason
from edgegate.core.pin import (
    DuressScheme,
    PinResult,
    apply_pin,
    check_pin,
    hash_pin,
    plus_one,
    raises_duress,
    verify_pin,
)
from edgegate.hardware.wiegand.formats import card_value
from edgegate.sim.wiegand import SimulatedWiegand
from edgegate.store.credentials import list_credentials
from edgegate.store.db import open_db, transaction
from edgegate.store.pins import pin_hashes, set_pin
from tests.conftest import EDGEGATE, REPO
from tests.readers.conftest import decision, door_config, wiegand
from tests.rules.conftest import enrol, run, running_door

ALICE_CARD = card_value(26, 12, 3456)
BOB_CARD = card_value(26, 12, 3457)
ALICE_PIN, ALICE_DURESS = "1357", "2468"


def pin_config(tmp_path: Path, name: str, pin: dict[str, Any], **rules: Any) -> Any:
    return door_config(
        tmp_path,
        wiegand(name, hold_off_seconds=0),
        pin={"require": True, "timeout_seconds": 0.5, **pin},
        rules=rules,
    )


def enrol_people(db: Path) -> None:
    enrol(db, "alice", ALICE_CARD)
    enrol(db, "bob", BOB_CARD)  # bob has no PIN
    conn = open_db(db, synchronous="NORMAL")
    with transaction(conn):
        set_pin(conn, "alice", hash_pin(ALICE_PIN))
        set_pin(conn, "alice", hash_pin(ALICE_DURESS), duress=True)
    conn.close()


def test_card_then_pin_grants_wrong_pin_and_timeout_deny(tmp_path: Path):
    async def scenario():
        with SimulatedWiegand("kp") as wires:
            cfg = pin_config(tmp_path, "kp", {})
            enrol_people(cfg.storage.path)
            async with running_door(cfg, {}, edge_sources={"kp": wires}) as d:
                wires.card(26, 12, 3456)
                assert await d.quiet(0.2) == []  # waiting for the PIN, nothing journaled
                assert d.door.pins.waiting() == {"kp": "alice"} and d.locked
                wires.keys(ALICE_PIN + "#")
                ev = await decision(d)
                assert ev.type == "access_granted" and ev.payload["person"] == "alice"
                assert ev.payload["pin"] == "ok" and ev.payload["credential"] == ALICE_CARD
                assert not d.locked
                assert d.door.pins.waiting() == {}
                # Wrong PIN: denied with its reason; the digits are journaled nowhere.
                await d.tick(5)
                wires.card(26, 12, 3456)
                await d.quiet(0.1)
                wires.keys("9999#")
                ev = await decision(d)
                assert ev.type == "access_denied" and ev.payload["reason"] == "wrong_pin"
                assert "9999" not in str(ev.payload)
                # No PIN within timeout_seconds.
                wires.card(26, 12, 3456)
                ev = await decision(d)
                assert ev.payload["reason"] == "pin_timeout" and ev.payload["pin"] == "timeout"
                # A person with no PIN cannot pass a card+PIN door.
                wires.card(26, 12, 3457)
                await d.quiet(0.1)
                wires.keys("1234#")
                ev = await decision(d)
                assert ev.payload["reason"] == "no_pin" and ev.payload["person"] == "bob"
                # An unknown card is refused at once, no PIN asked.
                wires.card(26, 99, 1)
                ev = await decision(d)
                assert ev.payload["reason"] == "unknown" and "pin" not in ev.payload
                assert d.door.pins.waiting() == {}

    run(scenario())


def test_wrong_pins_count_toward_lockout_and_pin_alone_is_refused(tmp_path: Path):
    async def scenario():
        with SimulatedWiegand("kp2") as wires:
            cfg = pin_config(tmp_path, "kp2", {}, lockout_attempts=3, lockout_window_seconds=60)
            enrol_people(cfg.storage.path)
            async with running_door(cfg, {}, edge_sources={"kp2": wires}) as d:
                wires.keys("1357#")  # no card: refused, counted
                ev = await decision(d)
                assert ev.payload["kind"] == "pin" and ev.payload["reason"] == "unknown"
                assert ev.payload["detail"] == "pin_without_card" and "1357" not in str(ev.payload)
                for pin in ("0000", "1111"):
                    wires.card(26, 12, 3456)
                    await d.quiet(0.1)
                    wires.keys(pin + "#")
                    assert (await decision(d)).payload["reason"] == "wrong_pin"
                ev = await d.wait_for("lockout")
                assert ev.payload["reader"] == "kp2"
                wires.card(26, 12, 3456)  # even the right card and PIN wait out the lockout
                ev = await decision(d)
                assert ev.payload["reason"] == "lockout"

    run(scenario())


async def _grant_outputs(d: Any, wires: SimulatedWiegand, pin: str) -> tuple[list, list]:
    changes: list[tuple[str, bool]] = []
    d.daemon.outputs.add_listener(lambda name, on: changes.append((name, on)))
    wires.card(26, 12, 3456)
    await d.quiet(0.1)
    wires.keys(pin + "#")
    ev = await decision(d)
    await d.quiet(0.3)  # beep and LED timers run out
    d.daemon.outputs._listeners.pop()
    return [ev, *[e for e in d.seen if e.type == "duress"]], changes


def test_duress_pin_opens_like_the_right_one_and_journals_duress(tmp_path: Path):
    async def scenario():
        with SimulatedWiegand("kp3") as wires:
            cfg = pin_config(tmp_path, "kp3", {})
            enrol_people(cfg.storage.path)
            async with running_door(cfg, {}, edge_sources={"kp3": wires}) as d:
                (normal, *none), normal_outputs = await _grant_outputs(d, wires, ALICE_PIN)
                assert none == []
                await d.tick(5)  # relocked
                d.seen.clear()
                (granted, *duress), duress_outputs = await _grant_outputs(d, wires, ALICE_DURESS)
                assert granted.type == "access_granted" and granted.payload["pin"] == "ok"
                # The granted event is the same as a normal one; the alarm is its own event.
                assert set(granted.payload) == set(normal.payload)
                assert [e.type for e in duress] == ["duress"]
                assert duress[0].payload["person"] == "alice"
                assert duress[0].payload["reader"] == "kp3"
                assert duress[0].seq == granted.seq + 1
                # Nothing at the door differs: relay, LEDs and buzzer do the same things.
                assert duress_outputs == normal_outputs
                assert ("lock", True) in duress_outputs

    run(scenario())


def test_last_digit_plus_one_scheme(tmp_path: Path):
    async def scenario():
        with SimulatedWiegand("kp4") as wires:
            cfg = pin_config(tmp_path, "kp4", {"duress": "last_digit_plus_one"})
            enrol_people(cfg.storage.path)
            async with running_door(cfg, {}, edge_sources={"kp4": wires}) as d:
                wires.card(26, 12, 3456)
                await d.quiet(0.1)
                wires.keys(plus_one(ALICE_PIN) + "#")
                assert (await decision(d)).type == "access_granted"
                assert (await d.wait_for("duress")).payload["person"] == "alice"
                # The separately enrolled duress PIN means nothing under this scheme.
                await d.tick(5)
                wires.card(26, 12, 3456)
                await d.quiet(0.1)
                wires.keys(ALICE_DURESS + "#")
                assert (await decision(d)).payload["reason"] == "wrong_pin"

    run(scenario())


def test_pin_mode_only_on_the_listed_readers(tmp_path: Path):
    async def scenario():
        with SimulatedWiegand("kp5") as wires:
            cfg = pin_config(tmp_path, "kp5", {"readers": ["another"]})
            enrol_people(cfg.storage.path)
            async with running_door(cfg, {}, edge_sources={"kp5": wires}) as d:
                wires.card(26, 12, 3456)
                ev = await decision(d)
                assert ev.type == "access_granted" and "pin" not in ev.payload

    run(scenario())


# -- the pure core ------------------------------------------------------------------------------
FAST = 1000  # iterations for the unit tests; the store uses the default


def test_check_pin_results():
    own, duress = hash_pin("4321", iterations=FAST), hash_pin("8765", iterations=FAST)
    assert check_pin("4321", own, duress) is PinResult.OK
    assert check_pin("8765", own, duress) is PinResult.DURESS
    assert check_pin("8765", own, duress, DuressScheme.OFF) is PinResult.WRONG
    assert check_pin("4322", own, None, DuressScheme.LAST_DIGIT_PLUS_ONE) is PinResult.DURESS
    assert check_pin("4322", own, None) is PinResult.WRONG
    assert check_pin("4321", None, None) is PinResult.NOT_ENROLLED
    assert check_pin("12", own, duress) is PinResult.WRONG
    assert plus_one("1239") == "1230"


def test_apply_pin():
    granted = Decision(True, Reason.GRANTED, "p")
    refused = Decision(False, Reason.REVOKED, "p")
    assert apply_pin(granted, PinResult.OK) == granted
    assert apply_pin(granted, PinResult.DURESS) == granted
    assert apply_pin(granted, PinResult.WRONG).reason is Reason.WRONG_PIN
    assert apply_pin(granted, PinResult.TIMEOUT).reason is Reason.PIN_TIMEOUT
    assert apply_pin(granted, PinResult.NOT_ENROLLED).reason is Reason.NO_PIN
    assert apply_pin(refused, PinResult.OK) == refused  # the card's own reason wins
    assert raises_duress(granted, PinResult.DURESS)
    assert not raises_duress(refused, PinResult.DURESS)


@given(st.from_regex(r"[0-9]{4,12}", fullmatch=True), st.text(max_size=40))
@settings(max_examples=50, deadline=None)
def test_hash_round_trip_and_garbage_never_verifies(pin: str, garbage: str):
    encoded = hash_pin(pin, iterations=FAST)
    assert verify_pin(pin, encoded)
    assert not verify_pin(plus_one(pin), encoded)
    assert pin not in encoded.split("$")[2:]
    assert not verify_pin(pin, garbage)  # a damaged stored hash never raises or matches


def test_cli_enroll_pin_and_wiegand_card(
    tmp_path: Path, subprocess_env: dict[str, str], monkeypatch: Any, capsys: Any
):
    cfg = tmp_path / "edgegate.toml"
    cfg.write_text(
        f'[door]\nsite = "t"\nid = "d"\n[gpio]\npin_factory = "mock"\n'
        f'[storage]\npath = "{tmp_path / "door.db"}"\n'
    )

    def cli(*args: str, stdin: str = "") -> int:
        # In-process for speed; the console script itself is run once below.
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        return main([*args, "--config", str(cfg)])

    assert cli("enroll", "card", "--person", "alice", "--wiegand", "26:123:45678") == 0
    assert "7BB26E" in capsys.readouterr().out
    assert cli("enroll", "card", "--person", "x", "--wiegand", "26:999:1") == 2
    assert cli("enroll", "pin", "--person", "alice", stdin="12\n") == 2
    assert cli("enroll", "pin", "--person", "nobody", stdin="1234\n") == 1
    out = subprocess.run(
        [*EDGEGATE, "enroll", "pin", "--person", "alice", "--config", str(cfg)],
        input="2580\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        env=subprocess_env,
    )
    assert out.returncode == 0, out.stderr
    capsys.readouterr()
    assert cli("enroll", "pin", "--person", "alice", "--duress", stdin="2580\n") == 2
    assert "differ" in capsys.readouterr().err
    assert cli("enroll", "pin", "--person", "alice", "--duress", stdin="0852\n") == 0
    conn = open_db(tmp_path / "door.db", synchronous="NORMAL")
    own, duress = pin_hashes(conn, "alice")
    rows = {(r["kind"], r["value"]) for r in list_credentials(conn, "alice")}
    conn.close()
    assert rows == {("card", "7BB26E"), ("pin", "alice"), ("pin", "alice:duress")}
    assert own and duress and "2580" not in own
    assert check_pin("2580", own, duress) is PinResult.OK
    assert check_pin("0852", own, duress) is PinResult.DURESS
