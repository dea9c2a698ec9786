"""The SQLite writers' hand-off of one process (central/writer_handoff.py, engine.py): turns in
arrival order, an operator's change first, the turn given back on commit, rollback, exception
and a failed BEGIN, readers never asking, and no waiting for oneself.

Threads wait on conditions (the hand-off's own waiting count, events), never on fixed sleeps.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from edgegate.central.engine import HandoffConnection, make_engine, reading
from edgegate.central.writer_handoff import (
    MAX_INTERACTIVE_RUN,
    TurnQueue,
    WriterHandoff,
    Writes,
    for_file,
)
from tests.central.conftest import wait_until

OP, BG = Writes.INTERACTIVE, Writes.BULK
WAIT = 30.0  # a bound against a hang, never a measure


def until(check: Callable[[], bool]) -> None:
    """Another thread's or process's progress: a condition wait, bounded, never a measure."""
    wait_until(check, WAIT)


# --- the ordering rule ----------------------------------------------------------------------


@dataclass(eq=False)
class Item:
    n: int
    priority: Writes


@given(st.lists(st.sampled_from(list(Writes)), max_size=40))
def test_turn_queue_serves_each_once_in_order_bulk_never_starved(arrivals: list[Writes]) -> None:
    queue: TurnQueue[Item] = TurnQueue()
    items = [Item(n, p) for n, p in enumerate(arrivals)]
    for item in items:
        queue.push(item)
    served = [queue.pop() for _ in items]
    assert queue.pop() is None and len(queue) == 0
    assert sorted(x.n for x in served if x) == list(range(len(items)))  # each exactly once
    for p in Writes:  # arrival order within each priority
        mine = [x.n for x in served if x and x.priority is p]
        assert mine == sorted(mine)
    run = 0
    for x in served:
        assert x is not None
        bulk_left = any(y.priority is BG for y in served[served.index(x) :])
        if x.priority is OP and bulk_left:
            run += 1
            assert run <= MAX_INTERACTIVE_RUN  # a waiting bulk writer is not starved
        else:
            run = 0
    # Without a long interactive run, every interactive waiter goes before every bulk one.
    if arrivals.count(OP) <= MAX_INTERACTIVE_RUN:
        kinds = [x.priority for x in served if x]
        assert kinds == sorted(kinds, key=lambda p: p is BG)


def test_turn_queue_remove_takes_out_one_waiter() -> None:
    queue: TurnQueue[Item] = TurnQueue()
    a, b, c = Item(0, BG), Item(1, BG), Item(2, OP)
    for x in (a, b, c):
        queue.push(x)
    queue.remove(b)
    assert [queue.pop(), queue.pop(), queue.pop()] == [c, a, None]


# --- the hand-off between threads ----------------------------------------------------------


class Writer(threading.Thread):
    """Asks for the turn for an owner of its own, notes when it got it, gives it back."""

    def __init__(self, handoff: WriterHandoff, priority: Writes, order: list[str], name: str):
        super().__init__(name=name, daemon=True)
        self.handoff, self.priority, self.order = handoff, priority, order
        self.got: bool | None = None

    def run(self) -> None:
        self.got = self.handoff.acquire(self, self.priority, WAIT)
        self.order.append(self.name)
        if self.got:
            self.handoff.release(self)


def queue_behind(handoff: WriterHandoff, *specs: tuple[str, Writes]) -> tuple[list[str], list]:
    order: list[str] = []
    writers = []
    for name, priority in specs:  # one at a time: the arrival order is the start order
        w = Writer(handoff, priority, order, name)
        w.start()
        writers.append(w)
        n = len(writers)
        until(lambda n=n: handoff.waiting() == n)
    return order, writers


def test_turns_in_arrival_order_then_the_operator_first() -> None:
    handoff = WriterHandoff("t")
    holder = object()
    assert handoff.acquire(holder, BG, WAIT)
    order, writers = queue_behind(
        handoff, ("bulk1", BG), ("bulk2", BG), ("console1", OP), ("bulk3", BG), ("console2", OP)
    )
    handoff.release(holder)
    for w in writers:
        w.join(WAIT)
    assert order == ["console1", "console2", "bulk1", "bulk2", "bulk3"]
    assert all(w.got for w in writers)
    assert handoff.holder() is None and handoff.counters["handed_over"] == 5
    stats = handoff.stats()
    assert (stats["turns"], stats["interactive_waited"], stats["bulk_waited"]) == (6, 2, 3)
    assert stats["bulk_waited_max_ms"] >= stats["interactive_waited_max_ms"] >= 0


def test_a_waiting_bulk_writer_gets_a_turn_after_a_run_of_interactive_ones() -> None:
    handoff = WriterHandoff("t")
    holder = object()
    assert handoff.acquire(holder, OP, WAIT)
    specs = [("bulk", BG)] + [(f"console{n}", OP) for n in range(MAX_INTERACTIVE_RUN + 2)]
    order, writers = queue_behind(handoff, *specs)
    handoff.release(holder)
    for w in writers:
        w.join(WAIT)
    assert order.index("bulk") == MAX_INTERACTIVE_RUN


def test_no_waiting_for_oneself_and_a_timeout_goes_on_without_the_turn() -> None:
    handoff = WriterHandoff("t")
    first, second = object(), object()
    assert handoff.acquire(first, BG, WAIT)
    # The same thread on a second connection: SQLite's busy timeout decides, as before.
    assert handoff.acquire(second, OP, WAIT) is False
    assert handoff.counters["nested_writer"] == 1
    assert handoff.acquire(first, BG, WAIT) is True  # the holder asking again
    other = Writer(handoff, OP, [], "late")
    other_timeout = 0.01
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(handoff.acquire(other, OP, other_timeout)))
    t.start()
    t.join(WAIT)
    assert got == [False] and handoff.counters["wait_timeout"] == 1
    assert handoff.waiting() == 0 and handoff.holder() is first
    handoff.release(second)  # not the holder: nothing happens
    assert handoff.holder() is first
    handoff.release(first)
    assert handoff.holder() is None


# --- through SQLAlchemy engines on a real SQLite file ------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "office.db"
    engine = make_engine(path, immediate=True)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    engine.dispose()
    yield path


def engines(path: Path, **kw: object) -> tuple[Engine, Engine]:
    """The office's two kinds: the master's (BEGIN IMMEDIATE) and a plain one."""
    return make_engine(path, immediate=True, **kw), make_engine(path, **kw)  # type: ignore[arg-type]


def test_commit_rollback_and_exception_give_the_turn_back(db: Path) -> None:
    master, plain = engines(db)
    handoff = for_file(db)
    assert for_file(str(db)) is handoff  # one per file, whichever engine opened it
    with master.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert isinstance(handoff.holder(), HandoffConnection)
    assert handoff.holder() is None
    with pytest.raises(RuntimeError), master.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
        raise RuntimeError("a bug in the middle of a change")
    assert handoff.holder() is None
    with master.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES (3)"))
        conn.rollback()
    assert handoff.holder() is None
    with pytest.raises(OperationalError), master.begin() as conn:
        conn.execute(text("INSERT INTO nowhere VALUES (1)"))
    assert handoff.holder() is None
    with master.connect() as conn:
        conn.execute(text("INSERT INTO t VALUES (4)"))
        conn.invalidate()  # a broken connection: closed, not rolled back by SQLAlchemy
    assert handoff.holder() is None
    # The plain engine asks at its first write, not at a read.
    with plain.begin() as conn:
        conn.execute(text("SELECT count(*) FROM t")).scalar()
        assert handoff.holder() is None
        conn.execute(text("INSERT INTO t VALUES (5)"))
        assert handoff.holder() is not None
    assert handoff.holder() is None
    with plain.connect() as conn:
        assert conn.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 5]
    master.dispose()
    plain.dispose()


def test_reads_inside_a_write_do_not_wait_and_other_threads_read_meanwhile(db: Path) -> None:
    master, plain = engines(db)
    handoff = for_file(db)
    seen: list[int] = []
    with master.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        with reading(master) as r:  # a nested read on the master's engine
            seen.append(r.execute(text("SELECT count(*) FROM t")).scalar_one())
        with plain.begin() as r:  # and on another engine, in a transaction of its own
            seen.append(r.execute(text("SELECT count(*) FROM t")).scalar_one())

        def read() -> None:
            with reading(master) as r:
                seen.append(r.execute(text("SELECT count(*) FROM t")).scalar_one())

        t = threading.Thread(target=read)
        t.start()
        t.join(WAIT)
        assert not t.is_alive()  # done while this transaction still holds the turn
        assert handoff.waiting() == 0
    assert seen == [0, 0, 0]  # WAL readers see the last commit
    assert handoff.counters["nested_writer"] == 0
    master.dispose()
    plain.dispose()


def test_the_next_writer_begins_only_after_the_commit_returned(db: Path) -> None:
    """The waiter's engine has no busy timeout at all: had it tried SQLite's lock before the
    holder's COMMIT returned, its BEGIN IMMEDIATE would fail at once ("database is
    locked"). Through the hand-off it never meets the lock taken."""
    master, _ = engines(db)
    impatient = make_engine(db, immediate=True, busy_timeout_ms=0, writes=Writes.INTERACTIVE)
    handoff = for_file(db)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            with impatient.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    with master.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (0)"))
        threads = [threading.Thread(target=write, args=(n,)) for n in (1, 2, 3)]
        for n, t in enumerate(threads, 1):
            t.start()
            until(lambda n=n: handoff.waiting() == n)
    for t in threads:
        t.join(WAIT)
    assert errors == []
    with master.connect() as conn:
        assert sorted(conn.execute(text("SELECT n FROM t")).scalars()) == [0, 1, 2, 3]
    for e in (master, impatient):
        e.dispose()


def test_another_process_still_meets_the_busy_timeout_and_the_turn_comes_back(db: Path) -> None:
    """Another process (here a raw connection, as the CLI's would be) holds SQLite's lock:
    BEGIN IMMEDIATE fails after the busy timeout, and the failed begin gives the turn back
    (no COMMIT or ROLLBACK will come)."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    master = make_engine(db, immediate=True, busy_timeout_ms=20)
    handoff = for_file(db)
    with pytest.raises(OperationalError, match="locked"), master.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert handoff.holder() is None
    other.execute("ROLLBACK")
    other.close()
    with master.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    assert handoff.holder() is None
    master.dispose()


def test_only_sqlite_engines_take_turns(office_db: str) -> None:
    engine = make_engine(office_db)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, HandoffConnection) is ("://" not in office_db)
    engine.dispose()


class Interrupted(Exception):
    """What a signal handler raises out of a waiting writer (as Ctrl-C's KeyboardInterrupt)."""


def test_a_writer_interrupted_while_queued_leaves_no_ticket_behind() -> None:
    """A real signal interrupts the main thread's wait for the turn. Had its ticket stayed
    queued, the holder's release would hand the turn to nobody and the next writer would
    wait out its whole timeout and go on without the turn (acquire returns False)."""
    import os
    import signal

    handoff = WriterHandoff("interrupted")
    holder, waiter, later = object(), object(), object()
    took = threading.Event()
    release = threading.Event()

    def hold() -> None:
        assert handoff.acquire(holder, BG, WAIT)
        took.set()
        release.wait(WAIT)
        handoff.release(holder)

    def interrupt(_signum: int, _frame: object) -> None:
        raise Interrupted

    thread = threading.Thread(target=hold)
    thread.start()
    took.wait(WAIT)
    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
        timer.start()
        with pytest.raises(Interrupted):
            handoff.acquire(waiter, OP, WAIT)  # the main thread: where signals land
        timer.join()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    release.set()
    thread.join(WAIT)
    assert handoff.acquire(later, OP, 5.0) is True
    handoff.release(later)
