"""Visitor QR passes: a compact token signed with the office's Ed25519 key (docs/visitors.md).

A door verifies a pass with the office's public key alone, with no lookup and no network::

    EG1.<base64url body>.<base64url signature>

``body`` is compact JSON with sorted keys: ``p`` pass id, ``v`` visit id, ``z`` zones,
``nb`` not-before and ``na`` not-after (UNIX seconds), ``s`` single entry (true/false). The
signature covers ``DOMAIN + body`` (the raw body bytes): the domain prefix means no other
thing the office signs (commands, credential updates: JSON objects too) can ever be taken
for a pass, nor a pass for one of them. No key id is carried, to keep the code small: the
door tries each key it trusts (one or two during a key roll-over).

``parse_pass`` never raises anything but ``PassRejected`` and returns a pass only when the
signature verifies and the body fits the model exactly; whether the pass opens a door (its
window, zone, revocation, single-entry use) is the decision core's to say
(``edgegate/core/visitor_pass.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from edgegate.contract.signing import Signer
from edgegate.errors import EdgegateError

PREFIX = "EG1."
DOMAIN = b"edgegate-visitor-pass-v1\n"
# A version-10 QR code holds ~270 bytes; a token is ~200. Anything longer is not ours.
MAX_TOKEN = 600
SIG_BYTES = 64

PassId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")]
Zone = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")]


class PassRejected(EdgegateError, ValueError):
    """A token that is not a valid pass of a trusted office. ``reason``: ``malformed`` (not
    a pass at all) or ``forged`` (a pass whose signature does not verify)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    p: PassId
    v: PassId
    z: list[Zone] = Field(max_length=16)
    nb: StrictInt = Field(ge=0, le=2**40)
    na: StrictInt = Field(ge=0, le=2**40)
    s: StrictBool


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
        data = {
            "p": self.pass_id,
            "v": self.visit_id,
            "z": list(self.zones),
            "nb": self.not_before,
            "na": self.not_after,
            "s": self.single,
        }
        _Body.model_validate(data)  # the office never signs what a door would refuse
        return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    if not text or len(text) % 4 == 1:
        raise ValueError("bad base64 length")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_pass(signer: Signer, token: PassToken) -> str:
    """The token text the office prints or sends (the QR code's content)."""
    body = token.body()
    return f"{PREFIX}{_b64e(body)}.{_b64e(signer.sign_raw(DOMAIN + body))}"


def parse_pass(text: str, keys: Sequence[Ed25519PublicKey]) -> PassToken:
    """The pass in ``text`` if a trusted key signed it; PassRejected otherwise (any input)."""
    if not isinstance(text, str) or len(text) > MAX_TOKEN:
        raise PassRejected("malformed", "not a pass token (too long or not text)")
    text = text.strip()
    if not text.startswith(PREFIX):
        raise PassRejected("malformed", "not a pass token (no EG1 prefix)")
    parts = text[len(PREFIX) :].split(".")
    if len(parts) != 2:
        raise PassRejected("malformed", "a pass token has a body and a signature")
    try:
        body, sig = _b64d(parts[0]), _b64d(parts[1])
    except (binascii.Error, ValueError):
        raise PassRejected("malformed", "not base64url") from None
    if len(sig) != SIG_BYTES:
        raise PassRejected("forged", f"signature of {len(sig)} bytes")
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
    # Signed by the office: a body that does not fit is an office bug, still never a grant.
    try:
        data = _Body.model_validate_json(body)
    except ValidationError as exc:
        detail = f"signed body does not fit: {exc.errors()[0]['msg']}"
        raise PassRejected("malformed", detail) from None
    return PassToken(data.p, data.v, tuple(data.z), data.nb, data.na, data.s)
