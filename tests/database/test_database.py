"""The application database on SQLite and PostgreSQL: migrations, sessions, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from assistant.database import ConversationRow, Database, database_url
from assistant.database.engine import is_duplicate_key
from assistant.database.models import Base
from assistant.errors import ConfigError, DatabaseError
from tests.support.servers import free_loopback_port


def test_migrations_create_every_table_and_match_the_models(database_url: str) -> None:
    database = Database.open(database_url)
    try:
        tables = set(inspect(database.engine).get_table_names())
        assert {"assistants", "conversations", "turns", "feedback", "api_keys", "jobs"} <= tables
        assert "alembic_version" in tables
        with database.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        # A model changed without a migration shows up here.
        assert differences == []
    finally:
        database.close()


def test_opening_twice_migrates_once_and_keeps_the_data(database_url: str) -> None:
    first = Database.open(database_url)
    with first.session() as session:
        session.add(ConversationRow(id="c1", assistant="docs"))
    first.close()
    second = Database.open(database_url)
    try:
        with second.session() as session:
            assert session.scalars(select(ConversationRow.id)).all() == ["c1"]
    finally:
        second.close()


def test_a_failed_session_commits_nothing(database_url: str) -> None:
    database = Database.open(database_url)
    try:
        with pytest.raises(RuntimeError), database.session() as session:
            session.add(ConversationRow(id="c2", assistant="docs"))
            session.flush()
            raise RuntimeError("boom")
        with pytest.raises(DatabaseError), database.session() as session:
            # The same primary key twice violates a constraint: a typed error, nothing kept.
            session.add(ConversationRow(id="c3", assistant="docs"))
            session.flush()
            session.add(ConversationRow(id="c3", assistant="docs"))
            session.flush()
        with database.session() as session:
            assert session.scalars(select(ConversationRow.id)).all() == []
    finally:
        database.close()


def test_a_lost_race_to_insert_is_told_apart_from_other_failures(database_url: str) -> None:
    """Idempotent inserts (the widget's signing key, Slack event ids, analytics slots) give way
    when a row with their key is already there, and only then."""
    database = Database.open(database_url)
    try:
        with database.session() as session:
            session.add(ConversationRow(id="taken", assistant="docs"))
        with pytest.raises(DatabaseError) as duplicate, database.session() as session:
            session.add(ConversationRow(id="taken", assistant="docs"))
        assert is_duplicate_key(duplicate.value)
        with pytest.raises(DatabaseError) as other, database.session() as session:
            session.execute(select(ConversationRow.id).where(text("no_such_column = 1")))
        assert not is_duplicate_key(other.value)
    finally:
        database.close()


def test_the_default_url_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    assert database_url(None, tmp_path) == f"sqlite:///{tmp_path / 'assistant.sqlite3'}"
    assert database_url("postgresql://u:p@db/app", tmp_path) == "postgresql+psycopg://u:p@db/app"
    assert database_url("postgres://u@db/app", tmp_path) == "postgresql+psycopg://u@db/app"


@pytest.mark.integration
def test_an_unreachable_database_is_a_typed_error_without_the_password() -> None:
    port = free_loopback_port()
    url = f"postgresql+psycopg://app:s3cret-password@127.0.0.1:{port}/app?connect_timeout=2"
    with pytest.raises(DatabaseError) as caught:
        Database.open(url)
    assert "s3cret-password" not in str(caught.value)
    assert "ASSISTANT_DATABASE_URL" in str(caught.value)


def test_a_malformed_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ASSISTANT_DATABASE_URL"):
        Database.open("not a url at all")
