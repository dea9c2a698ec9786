"""Erasing one person (services/erasure.py) on a filled office store: how long the erasure
takes with N people in the master and the version log and E events in the archive.

    python bench/erase.py --people 20000 --events 100000 [--db URL]

The archive search is a scan of the payloads (the person may be named as staff or partner,
not only in the indexed person column), so the time grows with the archive; the version log
is parsed whole (every op, to follow who held which credential).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegate.central import archive, store
from edgegate.central.config import CentralConfig
from edgegate.central.services import Actor, erasure, open_office
from edgegate.contract import messages as m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--db", help="a PostgreSQL URL (default: an SQLite file in a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "central.db")
        central = {
            "site": "hq",
            "key_file": str(Path(tmp) / "k"),
            "db": db,
            "erasure_ledger": str(Path(tmp) / "erasures.jsonl"),
        }
        if "://" in db:
            key = Path(tmp) / "store.key"
            key.write_bytes(os.urandom(32))
            central["store_key_file"] = str(key)
        cfg = CentralConfig.model_validate(
            {"central": central, "mqtt": {"host": "127.0.0.1", "port": 1}}
        )
        office = open_office(cfg)
        n, e = args.people, args.events
        ops: list[m.Op] = []
        for i in range(n):
            person = m.PersonMsg(id=f"p{i}", name=f"Person {i}")
            ops.append(m.PutPerson(op="put_person", person=person))
            card = m.CredentialMsg(kind="card", value=f"{i:010X}", person=f"p{i}")
            ops.append(m.PutCredential(op="put_credential", credential=card))
        with office.master().begin() as conn:
            store.commit_ops(conn, ops, max_ops=2000)
        evs = [
            {"id": f"e{j}", "seq": j + 1, "ts": "2026-12-01T10:00:00Z",
             "type": "access_granted", "kind": "card", "credential": f"{j % n:010X}",
             "person": f"p{j % n}"}
            for j in range(e)
        ]  # fmt: skip
        with office.master().begin() as conn:
            for k in range(0, e, 5000):
                archive.archive_events(conn, "hq", "front", evs[k : k + 5000], time.time())
        t = time.perf_counter()
        erasure.plan(office, "p7")
        preview = time.perf_counter() - t
        t = time.perf_counter()
        done = erasure.erase(office, Actor("bench", "cli"), "p7", "bench")
        took = time.perf_counter() - t
        office.close()
    print(
        f"{platform.node()} {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}; "
        f"{'postgresql' if '://' in db else 'sqlite'}: {n} people ({2 * n} ops in "
        f"{(2 * n + 1999) // 2000} versions), {e} events: preview {preview:.2f} s, "
        f"erase {took:.2f} s, "
        f"{done.plan.events} events anonymised, {done.history} old version(s) rewritten"
    )


if __name__ == "__main__":
    main()
