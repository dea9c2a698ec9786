"""One canonical form for a Wiegand-format card, whatever reader reported it.

A GPIO Wiegand reader decodes the frame and reports its data bits (facility then number,
parity stripped): 6 hex digits for 26-bit H10301, 8 for 34-bit. An OSDP reader reporting the
same card as raw bits sends the whole frame, parity included (26 bits = 7 hex digits). Both
must name the same credential, so a raw frame of 26 or 34 bits whose parity checks is reduced
to its data bits here; anything else (other lengths, bad parity: not a Wiegand card) is left
as read. Pure: no IO, used by the OSDP codec, the store's card normaliser and its migration.
"""

from __future__ import annotations

# frame bits -> data bits (facility + number)
WIEGAND_FRAMES = {26: 24, 34: 32}


def wiegand_data(bits: int, frame: int) -> int | None:
    """The data bits of a ``bits``-bit Wiegand frame (MSB first, parity at both ends), or
    None when it is not one (length, size or parity)."""
    data_bits = WIEGAND_FRAMES.get(bits)
    if data_bits is None or not 0 <= frame < 1 << bits:
        return None
    data = (frame >> 1) & ((1 << data_bits) - 1)
    half = data_bits // 2
    first, last = frame >> (bits - 1), frame & 1
    high, low = data >> half, data & ((1 << half) - 1)
    # Even parity over the leading bit and the first half; odd over the second half and the
    # trailing bit.
    if (first + high.bit_count()) % 2 != 0 or (low.bit_count() + last) % 2 != 1:
        return None
    return data


def data_hex(bits: int, data: int) -> str:
    return f"{data:0{WIEGAND_FRAMES[bits] // 4}X}"


def canonical_card(value: str) -> str:
    """A card value (uppercase hex) in canonical form: a 26-bit (7 digits) or 34-bit
    (9 digits) raw Wiegand frame with good parity becomes its data bits; else unchanged."""
    for bits in WIEGAND_FRAMES:
        if len(value) == (bits + 3) // 4:
            try:
                data = wiegand_data(bits, int(value, 16))
            except ValueError:
                return value
            if data is not None:
                return data_hex(bits, data)
    return value
