"""Telling people why: one outcome class per decision, shown the same way on every reader.

A person at a gate needs to know what to do next, not why the system refused them: "see
reception" for a pass that ran out, "not valid at this door" for a zone or a schedule, "try
again" for a poor capture or a wrong PIN, "wait for staff" while staff must come. Reasons
that would help an attacker are folded together: an unknown card, a revoked (lost) card and
a disabled person all read "access denied", so a finder cannot tell whether the card they
hold was ever valid (docs/rules.md, "Telling people why").

Pure: the reason's string in, the class, its text in the configured language, and its LED
and beep pattern for simple readers out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    WELCOME = "welcome"
    DENIED = "denied"  # unknown, revoked, disabled: never told apart at the door
    SEE_RECEPTION = "see_reception"  # the pass or person is outside its validity
    NOT_HERE = "not_here"  # valid, but not at this door or not now
    TRY_AGAIN = "try_again"  # a poor capture, a wrong or missing PIN
    WAIT_STAFF = "wait_staff"  # a locked-out reader, a lockdown, a held exit
    WAIT_SECOND = "wait_second"  # two-person rule: the first person waits for a second


_BY_REASON: dict[str, Outcome] = {
    "granted": Outcome.WELCOME,
    "unknown": Outcome.DENIED,
    "revoked": Outcome.DENIED,
    "person_disabled": Outcome.DENIED,
    "expired": Outcome.SEE_RECEPTION,
    "not_yet_valid": Outcome.SEE_RECEPTION,
    "settlement_required": Outcome.SEE_RECEPTION,
    "offline": Outcome.SEE_RECEPTION,
    "zone": Outcome.NOT_HERE,
    "group": Outcome.NOT_HERE,
    "schedule": Outcome.NOT_HERE,
    "passback": Outcome.NOT_HERE,
    "interlock": Outcome.WAIT_STAFF,
    "low_score": Outcome.TRY_AGAIN,
    "wrong_pin": Outcome.TRY_AGAIN,
    "pin_timeout": Outcome.TRY_AGAIN,
    "no_pin": Outcome.TRY_AGAIN,
    "lockout": Outcome.WAIT_STAFF,
    "lockdown": Outcome.WAIT_STAFF,
    "two_person": Outcome.WAIT_SECOND,
}


def outcome_for(reason: str) -> Outcome:
    """The outcome class of a decision's reason. A reason this table does not know is shown
    as a plain denial: a new rule can never leak its reason by being forgotten here."""
    return _BY_REASON.get(reason, Outcome.DENIED)


# Short enough for a 16-character OSDP reader line.
TEXTS: dict[str, dict[Outcome, str]] = {
    "en": {
        Outcome.WELCOME: "Welcome",
        Outcome.DENIED: "Access denied",
        Outcome.SEE_RECEPTION: "See reception",
        Outcome.NOT_HERE: "Not valid here",
        Outcome.TRY_AGAIN: "Try again",
        Outcome.WAIT_STAFF: "Wait for staff",
        Outcome.WAIT_SECOND: "Second person",
    },
    "fr": {
        Outcome.WELCOME: "Bienvenue",
        Outcome.DENIED: "Acces refuse",
        Outcome.SEE_RECEPTION: "Voir accueil",
        Outcome.NOT_HERE: "Non valide ici",
        Outcome.TRY_AGAIN: "Reessayez",
        Outcome.WAIT_STAFF: "Attendez SVP",
        Outcome.WAIT_SECOND: "2e personne",
    },
    "de": {
        Outcome.WELCOME: "Willkommen",
        Outcome.DENIED: "Kein Zutritt",
        Outcome.SEE_RECEPTION: "Zum Empfang",
        Outcome.NOT_HERE: "Hier ungueltig",
        Outcome.TRY_AGAIN: "Nochmal bitte",
        Outcome.WAIT_STAFF: "Bitte warten",
        Outcome.WAIT_SECOND: "2. Person",
    },
}


def text_for(outcome: Outcome, language: str = "en") -> str:
    """The reader text for ``outcome``; English where the language is not known."""
    return TEXTS.get(language, TEXTS["en"])[outcome]


@dataclass(frozen=True, slots=True)
class Signal:
    """What a simple reader (LED + buzzer) shows: the LED colour, how many beeps of
    ``beep_seconds``, and whether the LED flashes."""

    led: str  # "green", "red" or "amber" (red + green where the reader has both)
    beeps: int
    beep_seconds: float
    flash: bool = False


# docs/rules.md, "Telling people why", has this table in prose: keep them together.
SIGNALS: dict[Outcome, Signal] = {
    Outcome.WELCOME: Signal("green", 1, 0.1),
    Outcome.DENIED: Signal("red", 3, 0.2, flash=True),
    Outcome.SEE_RECEPTION: Signal("red", 1, 0.6),
    Outcome.NOT_HERE: Signal("red", 2, 0.2),
    Outcome.TRY_AGAIN: Signal("amber", 2, 0.05),
    Outcome.WAIT_STAFF: Signal("amber", 1, 0.6, flash=True),
    Outcome.WAIT_SECOND: Signal("amber", 1, 0.1),
}
