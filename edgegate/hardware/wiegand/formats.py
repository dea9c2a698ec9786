"""What a Wiegand frame means: a 26-bit (H10301) or 34-bit card, or a keypad key.

26-bit H10301: P FFFFFFFF NNNNNNNNNNNNNNNN P -- the first bit is even parity over bits 1-12,
the last bit odd parity over bits 13-24; facility code 8 bits, card number 16 bits.
34-bit (H10306 layout): P then 16 bits facility, 16 bits number, P -- even parity over bits
1-16, odd parity over bits 17-32.

The credential value of a card is its data bits (facility then number, no parity) as
uppercase hex: 6 digits for 26-bit, 8 for 34-bit. That is what `edgegate enroll card --card`
takes (or `--wiegand 26:FC:CN`), and it matches how a Wiegand output of a 125 kHz reader
carries an EM4100 card's low bits: a card enrolled by its printed 32-bit number matches the
same card read through a 34-bit reader.

Keypads send one burst per key. 4-bit: the key's value, MSB first (0-9, 10 = '*', 11 = '#').
8-bit: the complement of the value in the high nibble, the value in the low one, so a corrupt
key is detected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from edgegate.store.credentials import CredentialError

KEYS = "0123456789*#"


class FrameError(StrEnum):
    BAD_PARITY = "bad_parity"
    BAD_LENGTH = "bad_length"
    BAD_KEY = "bad_key"


@dataclass(frozen=True, slots=True)
class Card:
    bits: int
    facility: int
    number: int

    @property
    def value(self) -> str:
        return card_value(self.bits, self.facility, self.number)


@dataclass(frozen=True, slots=True)
class Key:
    key: str


# bits -> (facility bits, number bits)
LAYOUTS = {26: (8, 16), 34: (16, 16)}


def card_value(bits: int, facility: int, number: int) -> str:
    fc_bits, cn_bits = LAYOUTS[bits]
    if not (0 <= facility < 1 << fc_bits and 0 <= number < 1 << cn_bits):
        raise ValueError(f"facility {facility} / number {number} do not fit a {bits}-bit card")
    data = (facility << cn_bits) | number
    return f"{data:0{(fc_bits + cn_bits) // 4}X}"


def _to_int(bits: Sequence[int]) -> int:
    value = 0
    for b in bits:
        value = (value << 1) | b
    return value


def _bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def encode_card(bits: int, facility: int, number: int) -> list[int]:
    """The frame a reader sends for this card, parity bits included."""
    fc_bits, cn_bits = LAYOUTS[bits]
    data = _bits(int(card_value(bits, facility, number), 16), fc_bits + cn_bits)
    half = len(data) // 2
    even = sum(data[:half]) % 2
    odd = 1 - sum(data[half:]) % 2
    return [even, *data, odd]


def encode_key(key: str, bits: int = 4) -> list[int]:
    value = KEYS.index(key)
    if bits == 4:
        return _bits(value, 4)
    return _bits(((~value & 0xF) << 4) | value, 8)


def decode(frame: Sequence[int], formats: Sequence[int] = (26, 34)) -> Card | Key | FrameError:
    n = len(frame)
    if n == 4:
        value = _to_int(frame)
        return Key(KEYS[value]) if value < len(KEYS) else FrameError.BAD_KEY
    if n == 8:
        value = _to_int(frame)
        low, high = value & 0xF, value >> 4
        if high != (~low & 0xF) or low >= len(KEYS):
            return FrameError.BAD_KEY
        return Key(KEYS[low])
    if n not in LAYOUTS or n not in formats:
        return FrameError.BAD_LENGTH
    data = frame[1:-1]
    half = len(data) // 2
    if (frame[0] + sum(data[:half])) % 2 != 0 or (sum(data[half:]) + frame[-1]) % 2 != 1:
        return FrameError.BAD_PARITY
    fc_bits = LAYOUTS[n][0]
    return Card(n, _to_int(data[:fc_bits]), _to_int(data[fc_bits:]))


def wiegand_to_uid(text: str) -> str:
    """``BITS:FC:CN`` (e.g. ``26:123:45678``) as a Wiegand reader reports the card: its data
    bits, facility then number, in hex (``card_value``). Enrolment input, hence
    ``CredentialError`` (the store's) for anything else."""
    try:
        bits, facility, number = (int(p) for p in text.split(":"))
        return card_value(bits, facility, number)
    except (ValueError, KeyError):
        raise CredentialError(
            f"Wiegand card {text!r} is not BITS:FC:CN with BITS 26 or 34 and FC/CN in range"
        ) from None
