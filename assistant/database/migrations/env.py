"""Alembic environment: migrations run on the connection ``Database.migrate`` passes in, or on
``ASSISTANT_DATABASE_URL`` when the ``alembic`` command is used by hand."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import context
from sqlalchemy import Connection, create_engine

from assistant.database.engine import database_url
from assistant.database.models import Base


def _run(connection: Connection) -> None:
    # Batch mode lets later migrations alter columns on SQLite, which has no ALTER COLUMN.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    url = database_url(
        os.environ.get("ASSISTANT_DATABASE_URL"),
        Path(os.environ.get("ASSISTANT_DATA_DIR", "assistant-data")),
    )
    with create_engine(url).begin() as connection:
        _run(connection)
