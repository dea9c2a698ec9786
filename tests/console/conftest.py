"""Console fixtures: the real app on a real office store (SQLite in a temp dir), operators of
every role, and a client signed in as one of them (through the real sign-in form)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edgegate.central.config import load_central
from edgegate.central.services import ROLES, Actor, Office, open_office, operators
from edgegate.central.web.app import create_app
from edgegate.central.web.hub import Hub

PASSWORD = "correct horse battery"
ADMIN = Actor("test", "cli")


def write_config(tmp_path: Path, mqtt_port: int = 1, http_port: int | None = None) -> Path:
    lines = [
        "[central]",
        'site = "hq"',
        f'key_file = "{tmp_path / "central.key"}"',
        f'db = "{tmp_path / "central.db"}"',
        "publish_timeout_seconds = 2",
        "",
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {mqtt_port}",
    ]
    if http_port is not None:
        lines += ["", "[http]", 'listen = "127.0.0.1"', f"port = {http_port}"]
    path = tmp_path / "central.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def _operators_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An office store with one operator per role (named after the role), made once: argon2
    is slow on purpose, and every test copies this file instead of hashing again."""
    where = tmp_path_factory.mktemp("operators")
    office = open_office(load_central(write_config(where)))
    for role in ROLES:
        operators.add(office.engine, ADMIN, role, role, PASSWORD)
    office.close()
    return where / "central.db"


@pytest.fixture
def office(tmp_path: Path, _operators_db: Path) -> Office:
    shutil.copy(_operators_db, tmp_path / "central.db")
    return open_office(load_central(write_config(tmp_path)))


@pytest.fixture
def app(office: Office):  # type: ignore[no-untyped-def]
    return create_app(office, Hub())


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    form = client.get("/signin")
    r = client.post(
        "/signin",
        data={"username": name, "password": password, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


@pytest.fixture
def client_as(app) -> Iterator[Callable[[str], TestClient]]:  # type: ignore[no-untyped-def]
    made: list[TestClient] = []

    def make(role: str | None) -> TestClient:
        c = TestClient(app)
        c.__enter__()
        made.append(c)
        return sign_in(c, role) if role else c

    yield make
    for c in made:
        c.__exit__(None, None, None)


def page_csrf(client: TestClient, path: str = "/doors") -> str:
    return csrf_of(client.get(path).text)


@pytest.fixture
def served(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app behind a real uvicorn on a free port (streams such as SSE need a real server)."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    server.force_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def site(tmp_path: Path, broker):  # type: ignore[no-untyped-def]
    """A small real site (tests/console/site.py) with an admin ``boss`` and a viewer
    ``watcher``, for the browser tests."""
    from tests.console.site import Site

    s = Site(tmp_path, broker, {"boss": "admin", "watcher": "viewer"})
    try:
        yield s
    finally:
        s.close()
