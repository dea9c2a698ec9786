"""Visitor QR passes: a compact token signed with the office's Ed25519 key (docs/visitors.md).

A door verifies a pass with the office's public key alone, with no lookup and no network::

    EG1.<base32 of body + signature, no padding>

Base32 (A-Z, 2-7) plus the prefix are all in the QR code's alphanumeric mode (5.5 bits a
character instead of 8), and a serial scanner types them as they are: ~190 characters fit a
version-7 code at error correction L (45 modules), large enough for a door camera at arm's
length. ``body`` is binary and strict (``_pack``): flags (bit 0: single entry), not-before and
not-after (uint32 UNIX seconds, big endian), then the pass id, the visit id and each zone as a
length byte and ASCII ``[A-Za-z0-9_-]``, the zones after a count byte. The signature (64
bytes) covers ``DOMAIN + body``: the domain prefix means no other thing the office signs
(commands, credential updates) can ever be taken for a pass, nor a pass for one of them. No
key id is carried: the door tries each key it trusts (one, or two during a key roll-over).

``parse_pass`` never raises anything but ``PassRejected`` and returns a pass only when the
signature verifies and the body decodes exactly, to its last byte; whether the pass opens a
door (window, zone, revocation, single-entry use) is the decision core's to say
(``edgegate/core/visitor_pass.py``).
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgegate.contract.signing import Signer
from edgegate.errors import EdgegateError

PREFIX = "EG1."
DOMAIN = b"edgegate-visitor-pass-v1\n"
# A version-10 QR code holds ~400 alphanumeric characters; a token is ~190. Longer: not ours.
MAX_TOKEN = 600
SIG_BYTES = 64
MAX_ZONES = 16
_ID = re.compile(rb"[A-Za-z0-9_-]{1,40}")
_HEAD = struct.Struct(">BII")  # flags, not-before, not-after
_SINGLE = 0x01


class PassRejected(EdgegateError, ValueError):
    """A token that is not a valid pass of a trusted office. ``reason``: ``malformed`` (not
    a pass at all) or ``forged`` (a pass whose signature does not verify)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PassToken:
    """What a verified pass says. Times are UNIX seconds; ``zones`` empty: no zone at all."""

    pass_id: str
    visit_id: str
    zones: tuple[str, ...]
    not_before: int
    not_after: int
    single: bool

    def body(self) -> bytes:
        """The binary body; ValueError for a pass a door would refuse (never signed)."""
        if len(self.zones) > MAX_ZONES:
            raise ValueError(f"at most {MAX_ZONES} zones")
        if not (0 <= self.not_before < 2**32 and 0 <= self.not_after < 2**32):
            raise ValueError("not-before and not-after are uint32 UNIX seconds")
        out = bytearray(_HEAD.pack(_SINGLE if self.single else 0, self.not_before, self.not_after))
        for text in (self.pass_id, self.visit_id):
            out += _field(text)
        out.append(len(self.zones))
        for zone in self.zones:
            out += _field(zone)
        return bytes(out)


def _field(text: str) -> bytes:
    raw = text.encode("ascii", "replace")
    if not _ID.fullmatch(raw):
        raise ValueError(f"{text!r}: ids and zones are 1-40 of A-Z a-z 0-9 _ -")
    return bytes([len(raw)]) + raw


class _Body:
    """Reads the body front to back; any shortfall or surplus is ``malformed``."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise PassRejected("malformed", "signed body ends early")
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk

    def text(self) -> str:
        raw = self.take(self.take(1)[0])
        if not _ID.fullmatch(raw):
            raise PassRejected("malformed", "an id or zone with characters a pass never has")
        return raw.decode("ascii")


def _unpack(data: bytes) -> PassToken:
    body = _Body(data)
    flags, not_before, not_after = _HEAD.unpack(body.take(_HEAD.size))
    if flags & ~_SINGLE:
        raise PassRejected("malformed", "unknown flags")
    pass_id, visit_id = body.text(), body.text()
    count = body.take(1)[0]
    if count > MAX_ZONES:
        raise PassRejected("malformed", "too many zones")
    zones = tuple(body.text() for _ in range(count))
    if body.at != len(data):
        raise PassRejected("malformed", "bytes after the last zone")
    return PassToken(pass_id, visit_id, zones, not_before, not_after, bool(flags & _SINGLE))


def encode_pass(signer: Signer, token: PassToken) -> str:
    """The token text the office prints or sends (the QR code's content)."""
    body = token.body()
    raw = body + signer.sign_raw(DOMAIN + body)
    return PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=")


def parse_pass(text: str, keys: Sequence[Ed25519PublicKey]) -> PassToken:
    """The pass in ``text`` if a trusted key signed it; PassRejected otherwise (any input)."""
    if not isinstance(text, str) or len(text) > MAX_TOKEN:
        raise PassRejected("malformed", "not a pass token (too long or not text)")
    text = text.strip()
    if not text.startswith(PREFIX):
        raise PassRejected("malformed", "not a pass token (no EG1 prefix)")
    b32 = text[len(PREFIX) :]
    try:
        # Padding is left off on the wire; a length no base32 text can have is refused.
        raw = base64.b32decode(b32 + "=" * (-len(b32) % 8))
    except (binascii.Error, ValueError):
        raise PassRejected("malformed", "not base32") from None
    if len(raw) <= SIG_BYTES + _HEAD.size:
        raise PassRejected("malformed", "too short for a pass")
    body, sig = raw[:-SIG_BYTES], raw[-SIG_BYTES:]
    if not keys:
        raise PassRejected("forged", "this door trusts no office key")
    for key in keys:
        try:
            key.verify(sig, DOMAIN + body)
            break
        except InvalidSignature:
            continue
    else:
        raise PassRejected("forged", "signature does not verify")
    # Signed by the office: a body that does not decode is an office bug, never a grant.
    return _unpack(body)
