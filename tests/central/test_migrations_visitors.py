"""The visitors' tables come from an Alembic revision (0004), not from ``create_all``: the
revisions alone, on an empty store of each engine, make them exactly as the metadata declares
them (Alembic's own comparison); and a store whose visit tables ``create_all`` made before
the revision existed upgrades over them, keeping its rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from edgegate.central import migrate
from edgegate.central.engine import make_engine
from edgegate.central.schema import metadata
from edgegate.central.schema import visitors as schema
from tests.conftest import OFFICE_ENGINES

VISIT_TABLES = {t.name for t in vars(schema).values() if getattr(t, "metadata", None) is metadata}


@pytest.fixture(params=OFFICE_ENGINES)
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    return request.getfixturevalue("postgres_cluster").database()  # empty: no template


def table_of(diff: Any) -> str:
    """The table an Alembic difference is about."""
    if isinstance(diff, list):  # modify_* entries: (op, schema, table, column, ...)
        return str(diff[0][2])
    op, obj = diff[0], diff[1]
    if op.endswith("_table"):
        return str(obj.name)
    if op.endswith(("_index", "_constraint")):
        return str(obj.table.name)
    if op.endswith("_fk"):
        return str(obj.parent.name)
    return str(diff[2])  # add_column / remove_column: (op, schema, table, column)


def test_the_visitor_tables_are_the_migrations_and_match_the_metadata(empty_store: str):
    assert len(VISIT_TABLES) == 9
    engine = make_engine(empty_store)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "heads")  # the revisions, nothing else
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) >= VISIT_TABLES
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, metadata) if table_of(d) in VISIT_TABLES]
    engine.dispose()
    assert diffs == []


def test_a_store_whose_visit_tables_create_all_made_upgrades_over_them(tmp_path: Path):
    engine = make_engine(tmp_path / "central.db")
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0003")  # the revision before theirs
        metadata.create_all(conn)  # what the visitors' service did before revision 0004
        conn.execute(insert(schema.visitor_cards).values(card="0A00000001", label="desk 1"))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.heads()
        assert conn.execute(select(schema.visitor_cards.c.label)).scalar_one() == "desk 1"
    engine.dispose()
