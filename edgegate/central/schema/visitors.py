"""Visitors (docs/visitors.md): visits, zone approvals, passes, the desk's card pool, the
on-site register and the notices to hosts. Personal data (name, company, contact) lives in
``visits`` only, so erasing or anonymising a visitor is one row."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)

from edgegate.central.schema import metadata

visits = Table(
    "visits",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("visitor_name", String(200), nullable=False),
    Column("company", String(200), nullable=False, default=""),
    Column("category", String(20), nullable=False),  # important, ordinary, other
    Column("reason", Text, nullable=False, default=""),
    Column("host", String(128), nullable=False, index=True),  # a person of the site
    Column("department", String(200), nullable=False, default=""),
    Column("contact", String(200)),
    Column("expected_arrival", Float, nullable=False, index=True),
    Column("expected_departure", Float, nullable=False),
    Column("zones", JSON, nullable=False),
    # booked -> confirmed | declined; cancelled any time before arrival.
    Column("status", String(20), nullable=False, default="booked"),
    Column("decided_by", String(200)),
    Column("decided_at", Float),
    Column("arrived_at", Float),
    Column("left_at", Float),
    Column("signed_off_by", String(200)),
    Column("signed_off_at", Float),
    Column("created_by", String(200), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("anonymised_at", Float),
)

zone_approvals = Table(
    "visit_zone_approvals",
    metadata,
    Column("visit_id", String(40), ForeignKey("visits.id", ondelete="CASCADE"), primary_key=True),
    Column("zone", String(40), primary_key=True),
    Column("approved_by", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("approved_at", Float, nullable=False),
)

visit_passes = Table(
    "visit_passes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("visit_id", String(40), ForeignKey("visits.id", ondelete="CASCADE"), index=True),
    Column("kind", String(8), nullable=False),  # qr or card
    Column("card", String(32)),  # the pool card, for kind card
    Column("single", Boolean, nullable=False, default=False),
    Column("not_before", Float, nullable=False),
    Column("not_after", Float, nullable=False),
    Column("issued_by", String(200), nullable=False, default=""),
    Column("issued_at", Float, nullable=False),
    Column("returned_at", Float),
    Column("revoked_at", Float),
    Column("disabled_at", Float),  # an unreturned card, disabled at the end of its window
)

visitor_cards = Table(
    "visitor_cards",
    metadata,
    Column("card", String(32), primary_key=True),
    Column("label", String(200), nullable=False, default=""),
)

visit_movements = Table(
    "visit_movements",
    metadata,
    Column("event_id", String(64), primary_key=True),  # the door event: each counted once
    Column("visit_id", String(40), ForeignKey("visits.id", ondelete="CASCADE"), index=True),
    Column("door", String(64), nullable=False),
    Column("direction", String(4), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("reason", String(40)),
    Column("ts", Float, nullable=False),
)

visit_notices = Table(
    "visit_notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("visit_id", String(40), ForeignKey("visits.id", ondelete="CASCADE"), index=True),
    Column("host", String(128), nullable=False),
    Column("kind", String(20), nullable=False),  # confirm_request, arrival
    Column("text", Text, nullable=False),  # "{link}" stands for the one-time link
    # The host's one-time link until the notice is delivered, then cleared: the office keeps
    # only its hash (visit_links), the host's message is the one place it travels.
    Column("link", String(400)),
    Column("created_at", Float, nullable=False),
    # Handed to the office's outbox (webhooks, e-mail), which delivers and retries.
    Column("delivered_at", Float),
)

# Hosts' e-mail addresses for notices: office-only (a door never needs them).
host_contacts = Table(
    "visit_host_contacts",
    metadata,
    Column("person", String(128), primary_key=True),
    Column("email", String(200), nullable=False),
)

# One-time links for the host (confirm or decline, sign off): only the token's SHA-256 is
# kept; the token itself is only ever sent to the host.
visit_links = Table(
    "visit_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("visit_id", String(40), ForeignKey("visits.id", ondelete="CASCADE"), index=True),
    Column("purpose", String(20), nullable=False),  # decide, sign_off
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),
)

# How far the register has read the event archive (``events.n``), one row.
visit_cursor = Table(
    "visit_register_cursor",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_n", Integer, nullable=False),
)
