"""The [mqtt] connection settings: secrets from files and systemd credentials, backoff, and a
real TLS broker with a client certificate and a password, over MQTT 3.1.1 and 5."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import random
import socket
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edgegate.config.models import MqttConfig
from edgegate.contract import signing
from edgegate.mqtt import client as pc
from edgegate.sim.broker import Broker
from edgegate.sync.link import MqttLink
from tests.sync.central import Central


def test_password_from_file_or_systemd_credential(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert pc.read_password(MqttConfig()) is None
    f = tmp_path / "pw"
    f.write_text("s3cret\n")
    assert pc.read_password(MqttConfig(password_file=f)) == "s3cret"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt-password").write_text("from-systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert pc.read_password(MqttConfig()) == "from-systemd"
    with pytest.raises(pc.MqttSetupError, match="password_file"):
        pc.read_password(MqttConfig(password_file=tmp_path / "missing"))


def test_central_keys_from_config_file_and_credential(tmp_path: Path, monkeypatch):
    keys = [signing.generate().public_key() for _ in range(3)]
    texts = [signing.public_text(k) for k in keys]
    f = tmp_path / "keys"
    f.write_text(texts[1] + "\n\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "central-public-key").write_text(texts[2])
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    got = pc.central_keys(MqttConfig(central_public_keys=[texts[0]], central_public_key_file=f))
    assert [signing.key_id(k) for k in got] == [signing.key_id(k) for k in keys]
    f.write_text("AAAA\n")
    with pytest.raises(pc.MqttSetupError, match="32 bytes"):
        pc.central_keys(MqttConfig(central_public_key_file=f))


def test_backoff_doubles_with_jitter_up_to_the_cap():
    d = pc.Backoff(0.5, 4.0).delays(random.Random(1))
    got = [d.next() for _ in range(6)]
    caps = [0.5, 1, 2, 4, 4, 4]
    assert all(c / 2 <= g <= c for g, c in zip(got, caps, strict=True))
    assert len({round(g, 6) for g in got}) == 6  # jittered, not a fixed ladder
    d.reset()
    assert d.next() <= 0.5


def _cert(subject: str, issuer_key, key, issuer: x509.Name | None, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key) -> tuple[Path, Path]:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path.with_suffix(".pem"), path.with_suffix(".key")


@pytest.mark.broker
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_tls_client_certificate_and_password(tmp_path: Path, protocol: str):
    ca_key, srv_key, cli_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _cert("edgegate test CA", ca_key, ca_key, None, True)
    ca_pem, _ = _write(tmp_path / "ca", ca, ca_key)
    srv_pem, srv_key_pem = _write(
        tmp_path / "server", _cert("broker", ca_key, srv_key, ca.subject, False), srv_key
    )
    cli_pem, cli_key_pem = _write(
        tmp_path / "door", _cert("door", ca_key, cli_key, ca.subject, False), cli_key
    )
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwd), "door", "pw1"], check=True)
    (tmp_path / "pw").write_text("pw1\n")
    extra = (
        f"cafile {ca_pem}\ncertfile {srv_pem}\nkeyfile {srv_key_pem}\n"
        f"require_certificate true\npassword_file {passwd}\nallow_anonymous false\n"
    )

    async def scenario(broker: Broker, cfg: MqttConfig) -> list[tuple[str, bytes]]:
        got: list[tuple[str, bytes]] = []
        link = MqttLink(
            cfg, "tls-door", will_topic="edgegate/t/d/availability", subscriptions=[("t/in", 1)]
        )
        link.on_message(lambda t, p: got.append((t, p)))
        link.start()
        await asyncio.wait_for(link.connected.wait(), 10)
        await asyncio.wait_for(link.publish("t/in", b"hello", qos=1), 5)
        await asyncio.sleep(0.2)
        await link.stop()
        return got

    with Broker(extra_config=extra) as broker:
        good = MqttConfig(
            host="127.0.0.1",
            port=broker.port,
            protocol=protocol,
            ca_file=ca_pem,
            cert_file=cli_pem,
            key_file=cli_key_pem,
            username="door",
            password_file=tmp_path / "pw",
        )
        assert asyncio.run(scenario(broker, good)) == [("t/in", b"hello")]
        # A wrong password is refused and the link keeps retrying, never connecting.
        (tmp_path / "bad").write_text("nope")
        bad = good.model_copy(update={"password_file": tmp_path / "bad"})

        async def refused() -> str | None:
            link = MqttLink(bad, "tls-bad")
            link.start()
            await asyncio.sleep(1.0)
            assert not link.connected.is_set()
            error = link.last_error
            await link.stop()
            return error

        assert "refused" in (asyncio.run(refused()) or "")


@pytest.mark.broker
def test_last_will_says_offline_when_the_connection_dies(broker: Broker):
    central = Central(broker, site="t", door="d")
    cfg = MqttConfig(host=broker.host, port=broker.port, keepalive=5, backoff_min_seconds=5)

    async def scenario() -> None:
        link = MqttLink(cfg, "will-door", will_topic="edgegate/t/d/availability")
        link.start()
        await asyncio.wait_for(link.connected.wait(), 5)
        await link.publish("edgegate/t/d/availability", b"online", retain=True)
        # The network drops the door: no DISCONNECT reaches the broker.
        link.client.socket().shutdown(socket.SHUT_RDWR)
        for _ in range(100):
            if central.messages("edgegate/t/d/availability")[-1:] == [b"offline"]:
                break
            await asyncio.sleep(0.05)
        await link.stop()

    try:
        asyncio.run(scenario())
        assert central.messages("edgegate/t/d/availability")[-2:] == [b"online", b"offline"]
    finally:
        central.close()


def test_config_refuses_bad_keys_and_backoff(tmp_path: Path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not base64"):
        MqttConfig(central_public_keys=["!!"])
    with pytest.raises(ValidationError, match="backoff_max_seconds"):
        MqttConfig(backoff_min_seconds=5, backoff_max_seconds=1)
    key = signing.public_text(signing.generate().public_key())
    assert MqttConfig(central_public_keys=[key]).central_public_keys == [key]


@pytest.mark.broker
def test_client_for_loop_start_users_reconnects_by_itself(broker: Broker):
    """What the central office can reuse: build_client(auto_reconnect=True) + loop_start."""
    import threading

    cfg = MqttConfig(host=broker.host, port=broker.port, protocol="3.1.1", backoff_max_seconds=1)
    client = pc.build_client(cfg, "office", auto_reconnect=True)
    connects = threading.Semaphore(0)
    client.on_connect = lambda *a: connects.release()
    pc.connect_async(client, cfg)
    client.loop_start()
    try:
        assert connects.acquire(timeout=5)
        broker.stop(kill=True)
        broker.start()
        assert connects.acquire(timeout=10)
        client.publish("t/x", b"1", qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
