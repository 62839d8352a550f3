"""Opening the application database and bringing its schema up to date.

``Database.open(url)`` connects, runs the Alembic migrations to the newest revision (under an
advisory lock on PostgreSQL, so API replicas starting together migrate once) and hands out
sessions. SQLite gets foreign keys switched on and WAL journaling, so readers never block the
writer of a turn.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from assistant.errors import ConfigError, DatabaseError

__all__ = ["MIGRATIONS_DIR", "Database", "database_url", "is_duplicate_key"]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK_ID = 0x61737369


def database_url(url: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL to use: ``url`` as configured, else a SQLite file in ``data_dir``.

    ``postgresql://`` and ``postgres://`` URLs are given the psycopg 3 driver, the one installed.
    """
    if not url:
        return f"sqlite:///{data_dir / 'assistant.sqlite3'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported as such, never echoed
        return "<unparsable URL>"


class Database:
    """An engine and a session factory over one application database.

    >>> database = Database.open("sqlite:///assistant-data/assistant.sqlite3")  # doctest: +SKIP
    >>> with database.session() as session:  # doctest: +SKIP
    ...     session.add(ConversationRow(assistant="docs"))
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Database:
        """Connect to ``url`` and (by default) migrate its schema to the newest revision.

        Raises:
            ConfigError: the URL is malformed or names a driver that is not installed.
            DatabaseError: the database cannot be reached or migrated.
        """
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ConfigError(
                "ASSISTANT_DATABASE_URL is not a database URL; use e.g. "
                "postgresql://user:password@host/dbname or sqlite:///path/file.sqlite3"
            ) from exc
        # orjson for the JSON columns: a turn stores its sources and the trace of every
        # candidate, written on every turn; non-string keys become strings as json's do.
        options: dict[str, Any] = {
            "pool_pre_ping": True,
            "json_serializer": _json_text,
            "json_deserializer": orjson.loads,
        }
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # One connection per thread is SQLAlchemy's default pool for files; the API calls
            # the database from worker threads, so connections must be shareable across them.
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        try:
            engine = create_engine(url, **options)
        except (ImportError, SQLAlchemyError) as exc:
            raise ConfigError(
                f"cannot use database {_redacted(url)}: {exc.__class__.__name__}: {exc}"
            ) from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        database_ = cls(engine)
        if migrate:
            database_.migrate()
        return database_

    def migrate(self) -> None:
        """Apply every Alembic migration not applied yet (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        try:
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"the application database {_redacted(str(self.engine.url))} cannot be reached "
                f"or migrated: {exc.__class__.__name__}; check ASSISTANT_DATABASE_URL"
            ) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error.

        Raises:
            DatabaseError: the database failed; nothing of the session was committed.
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise DatabaseError(
                f"the application database failed: {exc.__class__.__name__}"
            ) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> None:
        """Run a trivial query; raises ``DatabaseError`` if the database does not answer."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"the application database does not answer: {exc.__class__.__name__}"
            ) from exc

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def is_duplicate_key(exc: DatabaseError) -> bool:
    """Whether ``Database.session`` failed because a row with the same key was there first
    (the driver's integrity error, which the session wraps): a lost race to insert, which
    callers that insert idempotently may treat as done."""
    return isinstance(exc.__cause__, IntegrityError)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
