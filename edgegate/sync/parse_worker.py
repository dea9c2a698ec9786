"""Snapshot chunks are verified and turned into rows in a separate, niced process.

A 100,000-person snapshot is megabytes of JSON: parsing it, validating it and checking its
Ed25519 signature is CPU work that, in a thread, would take the GIL from the event loop for
tens of milliseconds at a time and so delay card decisions. In a worker process it costs the
loop only the unpickling of the finished rows.

The pool uses ``spawn``: forking a process that runs paho's and the store's threads could
copy a held lock into the child.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from edgegate.contract.messages import SnapshotChunk, parse_signed
from edgegate.contract.signing import RejectedMessage, Verifier, parse_public
from edgegate.sync import credentials_apply as ca

_verifier: Verifier | None = None


def _init(keys: list[str]) -> None:
    global _verifier
    # Below the daemon: a busy worker must never slow the decisions.
    os.nice(10)
    _verifier = Verifier([parse_public(k) for k in keys]) if keys else None


def _parse_chunk(payload: bytes, seal_key: bytes | None, now: float) -> tuple[str, Any, Any, Any]:
    """("ok", header chunk without rows, people rows, credential rows) or
    ("rejected", reason, detail, None): exceptions with custom arguments do not pickle."""
    try:
        if _verifier is None:
            raise RejectedMessage("unknown_key", "no central public key configured")
        msg = parse_signed(_verifier, payload, SnapshotChunk)
        people, creds = ca.chunk_rows(msg, seal_key, now)
        header = msg.model_copy(update={"people": [], "credentials": []})
        return "ok", header, people, creds
    except RejectedMessage as exc:
        return "rejected", exc.reason, exc.detail, None


class ChunkParser:
    """``await parser.parse(payload, seal_key, now)`` -> (chunk header, people, credentials)."""

    def __init__(self, key_texts: list[str]) -> None:
        self.key_texts = key_texts
        self._pool: ProcessPoolExecutor | None = None

    async def parse(
        self, payload: bytes, seal_key: bytes | None, now: float
    ) -> tuple[SnapshotChunk, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                # Up to two (chunk k+1 parses while chunk k does; results are used in order),
                # leaving one core to the daemon.
                max_workers=max(1, min(2, (os.cpu_count() or 1) - 1)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init,
                initargs=(self.key_texts,),
            )
        loop = asyncio.get_running_loop()
        status, a, b, c = await loop.run_in_executor(
            self._pool, _parse_chunk, payload, seal_key, now
        )
        if status != "ok":
            raise RejectedMessage(a, b)
        return a, b, c

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
