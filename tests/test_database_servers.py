"""The database fixtures: every test gets its own fresh, empty SQLite or PostgreSQL database."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, inspect, select
from sqlalchemy.engine import make_url

from tests.support.servers import temporary_postgres_database

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(200), nullable=False),
)


def table_names(url: str) -> list[str]:
    """The tables of the database at ``url``."""
    engine = create_engine(url)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_table_round_trips_rows(database_url: str, request: pytest.FixtureRequest) -> None:
    engine = create_engine(database_url)
    try:
        assert engine.dialect.name == request.node.callspec.params["database_url"]
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(notes.insert(), [{"text": "first"}, {"text": "zweite Notiz"}])
        with engine.connect() as connection:
            texts = connection.execute(select(notes.c.text).order_by(notes.c.id)).scalars().all()
        assert texts == ["first", "zweite Notiz"]
    finally:
        engine.dispose()


def test_postgresql_urls_use_the_psycopg_driver(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        assert url.get_driver_name() == "psycopg"
    else:
        assert url.database is not None and url.database.endswith("app.sqlite3")


@pytest.mark.parametrize("attempt", ["first", "second"])
def test_every_test_starts_with_an_empty_database(database_url: str, attempt: str) -> None:
    # Both attempts leave the same table behind; the second would see the first's if the
    # fixture handed out a shared or reused database.
    assert table_names(database_url) == [], attempt
    engine = create_engine(database_url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()
    assert table_names(database_url) == ["notes"]


@pytest.mark.integration
def test_postgresql_databases_side_by_side_are_separate_and_dropped(postgres_url: str) -> None:
    with (
        temporary_postgres_database(postgres_url) as first_url,
        temporary_postgres_database(postgres_url) as second_url,
    ):
        assert first_url != second_url
        first_engine = create_engine(first_url)
        metadata.create_all(first_engine)
        # A connection still open at exit must not stop the drop (WITH (FORCE)).
        open_connection = first_engine.connect()
        assert table_names(second_url) == []
        assert table_names(first_url) == ["notes"]
    names = [make_url(first_url).database, make_url(second_url).database]
    maintenance = make_url(postgres_url).set(drivername="postgresql")
    with psycopg.connect(maintenance.render_as_string(hide_password=False)) as connection:
        remaining = connection.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s)", [names]
        ).fetchall()
    assert remaining == []
    open_connection.invalidate()
    first_engine.dispose()
