"""The master: people, credentials, the version log and the command log.

The same columns as the door's store (``edgegate/store/db.py``) so a credential means the same
thing on both sides. ``credentials.data`` holds biometric data sealed at rest
(``edgegate.store.sealed``: AES-GCM, kind and value bound as associated data); the doors get
it unsealed, as base64 in their messages.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
)

from edgegate.central.schema import metadata

people = Table(
    "people",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False, server_default=""),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("valid_from", Double),
    Column("valid_until", Double),
    Column("attrs", Text, nullable=False, server_default="{}"),
    Column("updated_at", Double, nullable=False),
)

credentials = Table(
    "credentials",
    metadata,
    Column("kind", Text, primary_key=True),
    Column("value", Text, primary_key=True),
    Column(
        "person_id",
        Text,
        ForeignKey("people.id", ondelete="CASCADE", name="fk_credentials_person_id_people"),
        nullable=False,
    ),
    Column("enabled", Boolean, nullable=False, server_default="1"),
    Column("valid_from", Double),
    Column("valid_until", Double),
    Column("label", Text, nullable=False, server_default=""),
    Column("data", LargeBinary),
    Column("updated_at", Double, nullable=False),
    Index("credentials_person", "person_id"),
)

# One row per version: its ops (the delta a door a few versions behind is sent again, see
# docs/central.md "catch-up") and when the broker acknowledged it.
versions = Table(
    "versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("base", Integer, nullable=False),
    Column("issued", Text, nullable=False),
    Column("n_ops", Integer, nullable=False),
    Column("ops", Text, nullable=False),
    Column("published", Double),
)

commands = Table(
    "commands",
    metadata,
    Column("id", Text, primary_key=True),
    Column("door", Text, nullable=False),
    Column("cmd", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("published", Double),
    Column("issued", Double),  # when recorded: the order of `recent_commands`
)
