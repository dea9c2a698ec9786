"""Several writers into one archive, one cursor reader: the reader sees every event exactly
once. On PostgreSQL two writers draw ``n`` from one sequence; without the archive's writer
lock a transaction holding a lower ``n`` could commit after a reader moved past it (this
test, with the lock taken out of ``archive_rows``, loses events within a few rounds)."""

from __future__ import annotations

import random
import threading
import time

from sqlalchemy import Engine

from edgegate.central import archive
from edgegate.central.engine import make_engine

WRITERS = 3
BATCHES = 25
PER_BATCH = 8


def _writer(url: str, w: int, errors: list[BaseException]) -> None:
    rng = random.Random(w)
    engine = make_engine(url, immediate=True)
    try:
        for b in range(BATCHES):
            rows = [
                archive.event_row(
                    "hq",
                    f"door{w}",
                    {
                        "id": f"w{w}-b{b}-{i}",
                        "seq": b * PER_BATCH + i + 1,
                        "ts": "2026-12-02T10:00:00Z",
                        "type": "access_granted",
                    },
                    time.time(),
                )
                for i in range(PER_BATCH)
            ]
            with engine.begin() as conn:
                archive.archive_rows(conn, rows)
                # A slow commit (a loaded machine, a synchronous replica): the window in
                # which another writer's higher n could become visible first.
                time.sleep(rng.uniform(0, 0.01))
    except BaseException as exc:
        errors.append(exc)
    finally:
        engine.dispose()


def _read_all(engine: Engine, stop: threading.Event, seen: list[str]) -> None:
    """A cursor reader as alarms and the visitors' register read: up to the top it sees."""
    cursor = 0
    while True:
        done = stop.is_set()  # decided before the read: the last round sees everything
        with engine.connect() as conn:
            top = archive.last_n(conn)
            rows = [e for e in archive.query_events(conn, after=cursor) if e["n"] <= top]
        seen.extend(e["id"] for e in rows)
        cursor = top
        if done:
            return
        time.sleep(0.001)


def test_cursor_reader_sees_every_event_once_with_several_writers(office_db: str) -> None:
    engine = make_engine(office_db, immediate=True)
    from edgegate.central import migrate

    migrate.upgrade(engine)
    errors: list[BaseException] = []
    seen: list[str] = []
    stop = threading.Event()
    reader = threading.Thread(target=_read_all, args=(engine, stop, seen))
    reader.start()
    writers = [
        threading.Thread(target=_writer, args=(office_db, w, errors)) for w in range(WRITERS)
    ]
    for t in writers:
        t.start()
    for t in writers:
        t.join(120)
    stop.set()
    reader.join(30)
    engine.dispose()
    assert not errors, errors
    expected = {
        f"w{w}-b{b}-{i}" for w in range(WRITERS) for b in range(BATCHES) for i in range(PER_BATCH)
    }
    assert len(seen) == len(set(seen)), "an event was read twice"
    assert set(seen) == expected, f"{len(expected - set(seen))} events skipped by the reader"
