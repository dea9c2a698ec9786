"""Biometric data at rest: fingerprint templates and face encodings are sealed with AES-GCM.

A copied ``edgegate.db`` (a stolen SD card, a careless backup) must not give away anyone's
biometrics, so ``credentials.data`` holds ``MAGIC || nonce || ciphertext+tag``. The key is
32 random bytes, looked up in this order:

1. ``[storage] key_file`` when set;
2. the systemd credential ``store-key`` (``$CREDENTIALS_DIRECTORY/store-key``, from
   ``LoadCredential=``/``LoadCredentialEncrypted=``): the recommended setup, the key then lives
   outside the state directory and can be TPM-bound;
3. ``store.key`` beside the database, created 0600 on first use.

The third keeps a fresh door working with no setup; it protects the data against a copy of
the database file alone, not against a copy of the whole state directory (docs/operations.md).
The credential kind and value are bound as associated data, so a sealed blob moved onto
another credential's row does not open.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edgegate.errors import EdgegateError

MAGIC = b"EGS1"
KEY_BYTES = 32
NONCE_BYTES = 12
CREDENTIAL_NAME = "store-key"


class SealError(EdgegateError, ValueError):
    """A sealed blob that cannot be opened: wrong key, tampered, or not sealed at all."""


def key_path(db_path: Path, key_file: Path | None = None) -> Path:
    """Where the store key is (or will be created), by the order in the module docstring."""
    if key_file is not None:
        return key_file
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / CREDENTIAL_NAME).is_file():
        return Path(cred_dir) / CREDENTIAL_NAME
    return db_path.parent / "store.key"


def load_key(db_path: Path, key_file: Path | None = None, *, create: bool = True) -> bytes:
    """Read the store key, creating ``store.key`` beside the database when allowed."""
    path = key_path(db_path, key_file)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        if not create or key_file is not None or path.parent != db_path.parent:
            raise SealError(f"store key {path} does not exist") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        # O_EXCL: two processes creating the key at once must not each write their own.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_key(db_path, key_file, create=False)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        return key
    if len(key) != KEY_BYTES:
        raise SealError(f"store key {path} must be {KEY_BYTES} bytes, not {len(key)}")
    return key


def _aad(kind: str, value: str) -> bytes:
    return f"{kind}\x00{value}".encode()


def seal(key: bytes, kind: str, value: str, plaintext: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(kind, value))


def unseal(key: bytes, kind: str, value: str, blob: bytes) -> bytes:
    if not is_sealed(blob):
        raise SealError(f"{kind} {value}: data is not sealed")
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], _aad(kind, value))
    except InvalidTag:
        raise SealError(f"{kind} {value}: wrong store key or tampered data") from None


def is_sealed(blob: bytes | None) -> bool:
    return blob is not None and len(blob) > len(MAGIC) + NONCE_BYTES and blob.startswith(MAGIC)
