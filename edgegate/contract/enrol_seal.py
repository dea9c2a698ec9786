"""A finger template sealed from a door to the office for one enrolment (``enrol_finger``).

The office makes a one-time X25519 key pair per enrolment and sends the public half in the
signed command (``EnrolFingerArgs.session``), so a door seals only to a key the office chose.
The door makes its own one-time pair, derives an AES-256-GCM key with HKDF-SHA256 over the
X25519 shared secret, and encrypts the template with the enrolment's identity (site, door,
command id, person, sensor family) as associated data: a sealed template replayed for another
person, door or command, or edited on the way, does not open. The office's private half lives
in memory only for the enrolment, so a template captured once cannot be opened again later.

This protects the template on the broker (readable by anyone allowed on the door's topics);
the template is then sealed at rest in the office's master as every biometric is.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from edgegate.contract.messages import SealedTemplate
from edgegate.errors import EdgegateError

INFO = b"edgegate-finger-enrol-v1"


class EnrolSealError(EdgegateError, ValueError):
    """A sealed template that does not open (wrong session, wrong identity, edited)."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def new_session() -> tuple[X25519PrivateKey, str]:
    """The office's one-time key pair: (private key, public key as base64 for the command)."""
    private = X25519PrivateKey.generate()
    return private, _b64(_raw(private.public_key()))


def bound_to(site: str, door: str, cmd_id: str, person: str, model: str) -> bytes:
    """The associated data: what the template is for."""
    return "\n".join((INFO.decode(), site, door, cmd_id, person, model)).encode()


def _key(shared: bytes, door_public: bytes, office_public: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=door_public + office_public, info=INFO
    ).derive(shared)


def seal(session: str, template: bytes, aad: bytes) -> SealedTemplate:
    """Door side: seal ``template`` to the office's ``session`` key (base64)."""
    office_public = base64.b64decode(session, validate=True)
    ephemeral = X25519PrivateKey.generate()
    door_public = _raw(ephemeral.public_key())
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(office_public))
    nonce = os.urandom(12)
    ct = AESGCM(_key(shared, door_public, office_public)).encrypt(nonce, template, aad)
    return SealedTemplate(epk=_b64(door_public), nonce=_b64(nonce), ct=_b64(ct))


def open_sealed(private: X25519PrivateKey, sealed: SealedTemplate, aad: bytes) -> bytes:
    """Office side: the template, or EnrolSealError."""
    try:
        door_public = base64.b64decode(sealed.epk, validate=True)
        shared = private.exchange(X25519PublicKey.from_public_bytes(door_public))
        key = _key(shared, door_public, _raw(private.public_key()))
        return AESGCM(key).decrypt(
            base64.b64decode(sealed.nonce, validate=True),
            base64.b64decode(sealed.ct, validate=True),
            aad,
        )
    except (InvalidTag, ValueError) as exc:
        raise EnrolSealError(f"the sealed template does not open ({type(exc).__name__})") from None
