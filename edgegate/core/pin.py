"""Keypad PINs in the decision: card+PIN and the duress PIN. Pure (hashing is CPU, no IO).

A PIN is stored only as a salted PBKDF2-HMAC-SHA256 hash. Four to six digits are a small
space, so the hash is no defence against someone holding a copy of the store for long
(10^6 guesses); it keeps PINs out of sight in backups, logs and `edgegate cards list`, and
the store itself is protected by file permissions. The cost is paid once per entry, in a
worker thread (hashlib releases the GIL), never on the event loop.

Duress: a person under threat enters a duress PIN instead of their own. The door opens
exactly as for the right PIN (same relay, LEDs, beeps and the same access_granted event) and
a separate ``duress`` event raises the silent alarm. Two schemes (``[pin] duress``):
``enrolled`` -- a second PIN each person chooses (`edgegate enroll pin --duress`), the
default, since a typo can never become an alarm; ``last_digit_plus_one`` -- the person's own
PIN with its last digit plus one (9 -> 0), nothing extra to remember under stress.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import replace
from enum import StrEnum

from edgegate.core.decision import Decision, Reason

ITERATIONS = 120_000
_ALGO = "pbkdf2_sha256"


class PinResult(StrEnum):
    OK = "ok"
    DURESS = "duress"
    WRONG = "wrong"
    TIMEOUT = "timeout"
    NOT_ENROLLED = "not_enrolled"


class DuressScheme(StrEnum):
    OFF = "off"
    ENROLLED = "enrolled"
    LAST_DIGIT_PLUS_ONE = "last_digit_plus_one"


def valid_pin(pin: str) -> bool:
    return pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    if not valid_pin(pin):
        raise ValueError("a PIN is 4 to 12 digits")
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"{_ALGO}${iterations}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, encoded: str) -> bool:
    try:
        algo, iterations, salt, digest = encoded.split("$")
        if algo != _ALGO:
            return False
        got = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False  # a damaged hash never matches
    return hmac.compare_digest(got.hex(), digest)


def plus_one(pin: str) -> str:
    """The duress variant of ``pin`` under ``last_digit_plus_one``."""
    return pin[:-1] + str((int(pin[-1]) + 1) % 10)


def _minus_one(pin: str) -> str:
    return pin[:-1] + str((int(pin[-1]) - 1) % 10)


def check_pin(
    entered: str,
    pin_hash: str | None,
    duress_hash: str | None,
    scheme: DuressScheme = DuressScheme.ENROLLED,
) -> PinResult:
    """What an entered PIN is for a person with these stored hashes."""
    if pin_hash is None:
        return PinResult.NOT_ENROLLED
    if not valid_pin(entered):
        return PinResult.WRONG
    if verify_pin(entered, pin_hash):
        return PinResult.OK
    if scheme is DuressScheme.ENROLLED and duress_hash and verify_pin(entered, duress_hash):
        return PinResult.DURESS
    if scheme is DuressScheme.LAST_DIGIT_PLUS_ONE and verify_pin(_minus_one(entered), pin_hash):
        return PinResult.DURESS
    return PinResult.WRONG


_DENIALS = {
    PinResult.WRONG: Reason.WRONG_PIN,
    PinResult.TIMEOUT: Reason.PIN_TIMEOUT,
    PinResult.NOT_ENROLLED: Reason.NO_PIN,
}


def apply_pin(decision: Decision, result: PinResult) -> Decision:
    """The card's decision once the PIN step is known. A card already refused stays refused
    for its own reason; a duress PIN grants like the right one (the alarm is separate)."""
    reason = _DENIALS.get(result)
    if not decision.granted or reason is None:
        return decision
    return replace(decision, granted=False, reason=reason, flags=())


def raises_duress(decision: Decision, result: PinResult | None) -> bool:
    return result is PinResult.DURESS and decision.granted
