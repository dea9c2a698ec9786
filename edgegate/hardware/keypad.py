"""Keys to PINs, for any reader with a keypad (Wiegand 4/8-bit keys, OSDP keypad data).

Pure: time is passed in. Digits collect until '#' submits them or no key comes for
``key_timeout`` seconds (the caller's timer calls ``expired``); '*' clears what was typed.
A PIN longer than ``max_digits`` cannot be one: it is dropped whole and counted.
"""

from __future__ import annotations


class PinAssembler:
    def __init__(self, key_timeout: float = 5.0, max_digits: int = 12) -> None:
        self.key_timeout = key_timeout
        self.max_digits = max_digits
        self.too_long = 0
        self.cleared = 0
        self._digits: list[str] = []
        self._last = 0.0

    @property
    def deadline(self) -> float | None:
        """When the typed digits will be submitted for lack of another key, if any."""
        return self._last + self.key_timeout if self._digits else None

    def key(self, key: str, now: float) -> str | None:
        """Take one key ('0'-'9', '*', '#'); return a completed PIN or None."""
        self._last = now
        if key == "*":
            if self._digits:
                self.cleared += 1
            self._digits.clear()
            return None
        if key == "#":
            return self._submit()
        if not key.isdigit() or len(key) != 1:
            return None
        self._digits.append(key)
        if len(self._digits) > self.max_digits:
            self.too_long += 1
            self._digits.clear()
        return None

    def expired(self, now: float) -> str | None:
        """The PIN typed so far when the key timeout has run out, else None."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return None
        return self._submit()

    def _submit(self) -> str | None:
        digits, self._digits = self._digits, []
        return "".join(digits) or None
