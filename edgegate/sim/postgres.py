"""A real PostgreSQL cluster in a temp dir on 127.0.0.1 and a free port, for tests and
benchmarks of the office store.

Not a fake: Debian's ``initdb`` and ``postgres`` binaries (``/usr/lib/postgresql/*/bin``).
Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the cluster lives
as long as a test session, so only the speed of the machine's disk would be measured.
PostgreSQL refuses to run as root; as root the cluster runs as the ``postgres`` user the
Debian package creates. ``database()`` makes a fresh, empty database: one cluster per session,
one database per test. Given a ``directory``, the cluster lives there and outlasts the object
(a benchmark's filled store, started again later by another ``Postgres(directory)``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from edgegate.errors import EdgegateError
from edgegate.sim.broker import free_port


class PostgresUnavailable(EdgegateError, RuntimeError):
    """No PostgreSQL server binaries here (scripts/setup.sh test installs ``postgresql``)."""


def find_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if not found:
        on_path = shutil.which("initdb")
        if on_path:
            return Path(on_path).parent
        raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(found[-1]).parent


def _major(path: str) -> int:
    try:
        return int(Path(path).parts[-3])
    except ValueError:
        return 0


class Postgres:
    """``with Postgres() as pg: url = pg.database()``; ``pg.stop()``."""

    USER = "edgegate"

    def __init__(self, directory: Path | None = None) -> None:
        self.bindir = find_bindir()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.kept = directory is not None
        if directory is None:
            self.dir = Path(tempfile.mkdtemp(prefix="edgegate-pg-"))
        else:
            self.dir = directory
            self.dir.mkdir(parents=True, exist_ok=True)
        self.data = self.dir / "data"
        self._proc: subprocess.Popen[bytes] | None = None
        self._runas: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no 'postgres' user to run the server as"
                ) from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._runas = [
                "setpriv",
                f"--reuid={pw.pw_uid}",
                f"--regid={pw.pw_gid}",
                "--clear-groups",
            ]

    def _run(self, *argv: str) -> list[str]:
        return [*self._runas, *argv]

    def start(self) -> Postgres:
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(
                self._run(
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.USER,
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ),
                check=True,
                capture_output=True,
            )
        log = open(self.dir / "postgres.log", "ab")  # noqa: SIM115 - the server's lifetime
        self._proc = subprocess.Popen(
            self._run(
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-k",
                str(self.dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=64MB",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                assert self._proc is not None
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.dir / "postgres.log").read_text(errors="replace")[-2000:]
                    raise PostgresUnavailable(f"postgres did not start:\n{tail}") from None
                time.sleep(0.1)

    def dsn(self, dbname: str) -> str:
        return f"host={self.host} port={self.port} user={self.USER} dbname={dbname}"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{self.USER}@{self.host}:{self.port}/{dbname}"

    def database(
        self, name: str | None = None, template: str | None = None, *, exist_ok: bool = False
    ) -> str:
        """A new database, empty or a copy of ``template`` (a file copy: far faster than
        running the migrations again); its SQLAlchemy URL. ``exist_ok``: the URL of ``name``
        as it is if the cluster has it already (a kept cluster)."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        if exist_ok:
            with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
                found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if found.fetchone():
                    return self.url(name)
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql)
        return self.url(name)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            # SIGQUIT: immediate shutdown; the cluster is thrown away, nothing to checkpoint.
            # A kept cluster gets SIGINT (fast shutdown: a checkpoint, no recovery at the
            # next start).
            self._proc.send_signal(signal.SIGINT if self.kept else signal.SIGQUIT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(120 if self.kept else 10)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def close(self) -> None:
        self.stop()
        if not self.kept:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()
