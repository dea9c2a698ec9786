"""People a door enrolled on its own, offered to the office for review (docs/central.md)."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, String, Table, Text

from edgegate.central.schema import metadata

# One row per door: the latest offer, and what an operator decided about it.
local_offers = Table(
    "local_offers",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("door", String(64), primary_key=True),
    Column("received", Float, nullable=False),
    Column("total", Integer, nullable=False),
    Column("people", Text, nullable=False),  # JSON list of PersonMsg
    Column("credentials", Text, nullable=False),  # JSON list of CredentialMsg (cards)
    # pending: waiting for an operator; imported / discarded: the office may replace the
    # door's local set (its snapshots then carry replace_local).
    Column("status", String(16), nullable=False),
    Column("decided", Float),
    Column("decided_by", String(200), nullable=False, server_default=""),
)
