"""The visitors' tables (docs/visitors.md): visits, zone approvals, passes, the desk's card
pool, the register, the notices to hosts, the hosts' addresses, one-time links and the
register's cursor.

They used to be created by ``metadata.create_all`` when the visitors' service started; a
store of that time has them already, as this revision creates them (the same declarations),
so a table that exists is left as it is. Written out column by column, not taken from the
live metadata: a revision must keep meaning what it meant when it was written.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _visit_fk() -> sa.Column:
    return sa.Column(
        "visit_id", sa.String(40), sa.ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )


def tables() -> dict[str, list[sa.Column]]:
    """Fresh columns on each call: a Column belongs to one Table, and a process may migrate
    several stores (the tests do)."""
    return {
        "visits": [
            sa.Column("id", sa.String(40), primary_key=True),
            sa.Column("visitor_name", sa.String(200), nullable=False),
            sa.Column("company", sa.String(200), nullable=False),
            sa.Column("category", sa.String(20), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("host", sa.String(128), nullable=False, index=True),
            sa.Column("department", sa.String(200), nullable=False),
            sa.Column("contact", sa.String(200)),
            sa.Column("expected_arrival", sa.Float, nullable=False, index=True),
            sa.Column("expected_departure", sa.Float, nullable=False),
            sa.Column("zones", sa.JSON, nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("decided_by", sa.String(200)),
            sa.Column("decided_at", sa.Float),
            sa.Column("arrived_at", sa.Float),
            sa.Column("left_at", sa.Float),
            sa.Column("signed_off_by", sa.String(200)),
            sa.Column("signed_off_at", sa.Float),
            sa.Column("created_by", sa.String(200), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("anonymised_at", sa.Float),
        ],
        "visit_zone_approvals": [
            sa.Column(
                "visit_id",
                sa.String(40),
                sa.ForeignKey("visits.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("zone", sa.String(40), primary_key=True),
            sa.Column("approved_by", sa.String(200), nullable=False),
            sa.Column("role", sa.String(20), nullable=False),
            sa.Column("approved_at", sa.Float, nullable=False),
        ],
        "visit_passes": [
            sa.Column("id", sa.String(40), primary_key=True),
            _visit_fk(),
            sa.Column("kind", sa.String(8), nullable=False),
            sa.Column("card", sa.String(32)),
            sa.Column("single", sa.Boolean, nullable=False),
            sa.Column("not_before", sa.Float, nullable=False),
            sa.Column("not_after", sa.Float, nullable=False),
            sa.Column("issued_by", sa.String(200), nullable=False),
            sa.Column("issued_at", sa.Float, nullable=False),
            sa.Column("returned_at", sa.Float),
            sa.Column("revoked_at", sa.Float),
            sa.Column("disabled_at", sa.Float),
        ],
        "visitor_cards": [
            sa.Column("card", sa.String(32), primary_key=True),
            sa.Column("label", sa.String(200), nullable=False),
        ],
        "visit_movements": [
            sa.Column("event_id", sa.String(64), primary_key=True),
            _visit_fk(),
            sa.Column("door", sa.String(64), nullable=False),
            sa.Column("direction", sa.String(4), nullable=False),
            sa.Column("granted", sa.Boolean, nullable=False),
            sa.Column("reason", sa.String(40)),
            sa.Column("ts", sa.Float, nullable=False),
        ],
        "visit_notices": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            _visit_fk(),
            sa.Column("host", sa.String(128), nullable=False),
            sa.Column("kind", sa.String(20), nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("link", sa.String(400)),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("delivered_at", sa.Float),
        ],
        "visit_host_contacts": [
            sa.Column("person", sa.String(128), primary_key=True),
            sa.Column("email", sa.String(200), nullable=False),
        ],
        "visit_links": [
            sa.Column("token_hash", sa.String(64), primary_key=True),
            _visit_fk(),
            sa.Column("purpose", sa.String(20), nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("expires_at", sa.Float, nullable=False),
            sa.Column("used_at", sa.Float),
        ],
        "visit_register_cursor": [
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("last_n", sa.Integer, nullable=False),
        ],
    }


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns in tables().items():  # visits first: the others refer to it
        if name not in existing:  # else made by create_all before this revision, the same
            # The column indexes come with the table, named by the metadata's convention.
            op.create_table(name, *columns)


def downgrade() -> None:
    for name in reversed(list(tables())):
        op.drop_table(name)
