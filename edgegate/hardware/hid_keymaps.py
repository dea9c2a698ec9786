"""Keyboard layouts for scanners that type as a USB keyboard: Linux key code -> character.

A USB HID scanner sends key *positions* (HID usages, which the kernel reports as the key codes
of ``linux/input-event-codes.h``, a stable ABI); which character a position stands for is the
keyboard layout the host assumes. The scanner is set (by scanning a setup barcode from its
manual) to the layout of the computer it types into; the door must assume the same one.

Supported: ``us`` (US QWERTY, the factory default of nearly every scanner) and ``de`` (German
QWERTZ). Only characters that are ASCII are mapped: a pass token is ASCII, so a key of any
other character (``ß``, a dead key) makes the line unreadable, which the decoder counts.
The digits and ``.``, ``-``, ``+``, ``*``, ``/`` of the numeric keypad are the same in every
layout (some scanners type digits there).
"""

from __future__ import annotations

from typing import Literal

Layout = Literal["us", "de"]
LAYOUTS: tuple[Layout, ...] = ("us", "de")

# Key codes (linux/input-event-codes.h) the decoder handles by name.
KEY_ENTER = 28
KEY_KPENTER = 96
KEY_LEFTSHIFT = 42
KEY_RIGHTSHIFT = 54
SHIFTS = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
ENTERS = frozenset({KEY_ENTER, KEY_KPENTER})
# Ctrl, Alt, AltGr, Meta: a key pressed with one of them held is no character of ours.
OTHER_MODIFIERS = frozenset({29, 97, 56, 100, 125, 126})
# Lock keys: a scanner may toggle them; they type nothing and change nothing here (the grabbed
# device's events never reach the console whose lock state they would change).
LOCKS = frozenset({58, 69, 70})  # Caps Lock, Num Lock, Scroll Lock

# Rows of the main block by their first key code; one character per key, unshifted/shifted.
_US_ROWS: tuple[tuple[int, str, str], ...] = (
    (2, "1234567890-=", "!@#$%^&*()_+"),
    (16, "qwertyuiop[]", "QWERTYUIOP{}"),
    (30, "asdfghjkl;'`", 'ASDFGHJKL:"~'),
    (43, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
    (57, " ", " "),
)
# German QWERTZ; "\0" marks a key whose character is not ASCII (or a dead key): unmapped.
_DE_ROWS: tuple[tuple[int, str, str], ...] = (
    (2, "1234567890\0\0", '!"\0$%&/()=?\0'),
    (16, "qwertzuiop\0+", "QWERTZUIOP\0*"),
    (30, "asdfghjkl\0\0\0", "ASDFGHJKL\0\0\0"),
    (43, "#yxcvbnm,.-", "'YXCVBNM;:_"),
    (57, " ", " "),
    (86, "<", ">"),  # KEY_102ND, the extra key left of Y on ISO keyboards
)
_KEYPAD = {
    71: "7", 72: "8", 73: "9", 74: "-", 75: "4", 76: "5", 77: "6", 78: "+",
    79: "1", 80: "2", 81: "3", 82: "0", 83: ".", 55: "*", 98: "/",
}  # fmt: skip

Keymap = dict[int, tuple[str, str]]


def _build(rows: tuple[tuple[int, str, str], ...]) -> Keymap:
    keys: Keymap = {}
    for first, plain, shifted in rows:
        for i, (lo, hi) in enumerate(zip(plain, shifted, strict=True)):
            if lo != "\0" or hi != "\0":
                keys[first + i] = (lo, hi)
    for code, ch in _KEYPAD.items():
        keys[code] = (ch, ch)
    return keys


KEYMAPS: dict[Layout, Keymap] = {"us": _build(_US_ROWS), "de": _build(_DE_ROWS)}


def char_of(keymap: Keymap, code: int, shift: bool) -> str | None:
    """The ASCII character of ``code`` with or without Shift; None when it types none."""
    pair = keymap.get(code)
    if pair is None:
        return None
    ch = pair[1] if shift else pair[0]
    return None if ch == "\0" else ch


def keys_of(keymap: Keymap, text: str) -> list[tuple[int, bool]]:
    """(key code, shift) per character of ``text``, the main block preferred: what a scanner
    set to this layout sends. ValueError for a character the layout cannot type."""
    reverse: dict[str, tuple[int, bool]] = {}
    for code, (lo, hi) in sorted(keymap.items(), key=lambda kv: kv[0] in _KEYPAD):
        if lo != "\0":
            reverse.setdefault(lo, (code, False))
        if hi != "\0":
            reverse.setdefault(hi, (code, True))
    try:
        return [reverse[ch] for ch in text]
    except KeyError as exc:
        raise ValueError(f"the layout cannot type {exc.args[0]!r}") from None
