"""Doctor's broker check over TLS, against a real mosquitto TLS listener.

``[mqtt]`` has no TLS keys on this branch yet (the sync layer adds them); doctor reads them with
``getattr``, so the check is driven here with a stand-in for the config's ``mqtt`` section that
has those attributes. The broker, the certificates and the handshakes are real.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgegate.doctor.broker import check_broker
from edgegate.sim.broker import Broker, BrokerUnavailable


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(directory: Path, cn: str) -> tuple[Path, Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{cn}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(directory: Path, ca_key: Any, ca_cert: x509.Certificate) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    # World-readable: a throwaway test key that mosquitto's own user must be able to read.
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def door(broker: Broker, **mqtt: Any) -> Any:
    return SimpleNamespace(mqtt=SimpleNamespace(host=broker.host, port=broker.port, **mqtt))


@pytest.fixture
def tls_dir() -> Iterator[Path]:
    """Certificates where mosquitto can read them: run as root it drops to its own user
    before loading them, and pytest's tmp_path is private to root."""
    directory = Path(tempfile.mkdtemp(prefix="edgegate-tls-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.broker
def test_tls_broker_checked_with_the_right_and_a_wrong_ca(tls_dir: Path) -> None:
    tmp_path = tls_dir
    ca_path, ca_key, ca_cert = make_ca(tmp_path, "site-ca")
    other_ca, _, _ = make_ca(tmp_path, "other-ca")
    cert, key = make_server_cert(tmp_path, ca_key, ca_cert)
    try:
        broker = Broker(extra_config=f"cafile {ca_path}\ncertfile {cert}\nkeyfile {key}\n")
    except BrokerUnavailable as exc:
        pytest.fail(f"{exc}: run ./scripts/setup.sh test")
    with broker:
        good = check_broker(door(broker, tls=True, ca_file=ca_path))  # type: ignore[arg-type]
        assert [c.status for c in good] == ["ok", "ok"], good
        assert "(TLS)" in good[1].message
        wrong = check_broker(door(broker, tls=True, ca_file=other_ca))  # type: ignore[arg-type]
        assert wrong[-1].status == "fail" and wrong[-1].part == "broker tls"
        assert "certificate" in wrong[-1].message.lower()
        # Plain MQTT to a TLS port: TCP works, the broker never answers CONNECT in MQTT.
        plain = check_broker(door(broker), timeout=2)  # type: ignore[arg-type]
        assert plain[0].status == "ok" and plain[-1].status == "fail"
