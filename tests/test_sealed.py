"""Biometric data at rest: sealing, key creation and tamper detection."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegate.store import sealed


def test_key_created_once_with_owner_only_mode(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    db = tmp_path / "door.db"
    key = sealed.load_key(db)
    assert len(key) == sealed.KEY_BYTES
    path = tmp_path / "store.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sealed.load_key(db) == key  # read back, not regenerated


def test_systemd_credential_preferred(tmp_path: Path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "store-key").write_bytes(b"k" * 32)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert sealed.load_key(tmp_path / "db" / "door.db") == b"k" * 32
    assert not (tmp_path / "db" / "store.key").exists()


def test_explicit_key_file_must_exist_and_be_32_bytes(tmp_path: Path):
    with pytest.raises(sealed.SealError, match="does not exist"):
        sealed.load_key(tmp_path / "door.db", tmp_path / "missing.key")
    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 5)
    with pytest.raises(sealed.SealError, match="32 bytes"):
        sealed.load_key(tmp_path / "door.db", short)


def test_wrong_key_tamper_and_moved_blob_rejected():
    key = b"a" * 32
    blob = sealed.seal(key, "finger", "3", b"template")
    assert sealed.unseal(key, "finger", "3", blob) == b"template"
    with pytest.raises(sealed.SealError, match="wrong store key"):
        sealed.unseal(b"b" * 32, "finger", "3", blob)
    with pytest.raises(sealed.SealError):
        sealed.unseal(key, "finger", "4", blob)  # moved onto another credential
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(sealed.SealError):
        sealed.unseal(key, "finger", "3", flipped)
    with pytest.raises(sealed.SealError, match="not sealed"):
        sealed.unseal(key, "finger", "3", b"plain template bytes")


@given(st.binary(max_size=2048), st.text(min_size=1, max_size=20))
def test_round_trip_any_payload(data: bytes, value: str):
    key = bytes(range(32))
    blob = sealed.seal(key, "face", value, data)
    assert sealed.is_sealed(blob)
    assert sealed.unseal(key, "face", value, blob) == data
