"""Ed25519 signatures on everything the central office sends a door.

The wire form of a signed message is a JSON object with three strings::

    {"body": "<the message as JSON text>", "sig": "<base64 Ed25519 signature of body>",
     "key": "<key id>"}

The signature covers the exact bytes of ``body`` (UTF-8), so neither side has to agree on a
canonical JSON form; the door parses ``body`` only after the signature verifies. The door
holds only the public key: a stolen door cannot forge commands for the others.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from edgegate.errors import EdgegateError

# Larger payloads are refused before any JSON parsing (a snapshot chunk is far below this).
MAX_PAYLOAD = 16 * 1024 * 1024


class RejectedMessage(EdgegateError, ValueError):
    """A message the door refuses. ``reason`` is a short counter name (docs/mqtt.md)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: first 8 bytes of its SHA-256, hex."""
    return hashlib.sha256(public_bytes(key)).hexdigest()[:16]


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_text(key: Ed25519PublicKey) -> str:
    """The public key as one base64 line: what goes into a door's config or credential."""
    return _b64(public_bytes(key))


def load_private(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key from its base64 line (``public_text``) or a PEM block."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("public key is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


class Signer:
    """The central office's side: turns a message dict into a signed payload."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id(key.public_key())

    def sign_raw(self, data: bytes) -> bytes:
        """The bare signature of ``data`` (visitor passes, ``visitor_pass.py``)."""
        return self._key.sign(data)

    def sign(self, message: dict[str, Any]) -> bytes:
        body = json.dumps(message, separators=(",", ":"), sort_keys=True)
        sig = self._key.sign(body.encode())
        return json.dumps({"body": body, "sig": _b64(sig), "key": self.key_id}).encode()


class Verifier:
    """The door's side: checks a signed payload and returns the message dict inside.

    Raises ``RejectedMessage`` with reason ``too_large``, ``malformed``, ``unsigned``,
    ``unknown_key`` or ``bad_signature``; the message body is never parsed before its
    signature is checked.
    """

    def __init__(self, keys: list[Ed25519PublicKey]) -> None:
        if not keys:
            raise ValueError("at least one public key is needed")
        # More than one key lets the central office roll its key without a flag day.
        self._keys = {key_id(k): k for k in keys}

    def verify(self, payload: bytes) -> dict[str, Any]:
        if len(payload) > MAX_PAYLOAD:
            raise RejectedMessage("too_large", f"{len(payload)} bytes")
        try:
            outer = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RejectedMessage("malformed", f"not JSON: {exc}") from None
        if not isinstance(outer, dict):
            raise RejectedMessage("malformed", "not a JSON object")
        body, sig, kid = outer.get("body"), outer.get("sig"), outer.get("key")
        if sig is None or kid is None:
            raise RejectedMessage("unsigned", "no sig/key")
        if not (isinstance(body, str) and isinstance(sig, str) and isinstance(kid, str)):
            raise RejectedMessage("malformed", "body, sig and key must be strings")
        key = self._keys.get(kid)
        if key is None:
            raise RejectedMessage("unknown_key", f"key {kid[:32]!r} is not trusted here")
        try:
            key.verify(base64.b64decode(sig, validate=True), body.encode())
        except (binascii.Error, InvalidSignature, ValueError):
            raise RejectedMessage("bad_signature", "signature does not verify") from None
        try:
            message = json.loads(body)
        except json.JSONDecodeError as exc:
            raise RejectedMessage("malformed", f"signed body is not JSON: {exc}") from None
        if not isinstance(message, dict):
            raise RejectedMessage("malformed", "signed body is not a JSON object")
        return message
