"""Fixtures of the HTTP API tests: ``create_app`` served by a real uvicorn in a thread.

- ``api_server``: one server per test module (SQLite and embedded Chroma in a temporary data
  dir, the session's encoder, the ``admin_key``); ``api_client`` / ``admin_client`` talk to it.
- ``make_api_server``: servers on other settings (another database, no admin key, Redis), one
  per call, stopped after the test.
- ``harbor``: the help centre in ``examples/help-centre/site`` ingested into an assistant named
  ``harbor`` on ``api_server``, once per module.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from assistant.api import create_app
from assistant.api.visitors import VisitorTokens, load_secret
from assistant.assistants import AssistantConfig, BrandConfig
from assistant.core import Assistant
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings

HELP_CENTRE_PAGES = sorted(
    (Path(__file__).resolve().parents[2] / "examples" / "help-centre" / "site").glob("*.html")
)

# Where the help centre's pages are published: visitors' links to them start here.
HARBOR_SITE = "https://help.harbor.example/"


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yields its base URL.

    The socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing and listening.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # log_config=None: leave the test run's logging alone.
    config = uvicorn.Config(app, log_level="warning", log_config=None, ws="none", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start; see the log above")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


def unique_name(stem: str = "bot") -> str:
    """A fresh assistant name, so tests sharing a server never collide."""
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@dataclass
class ApiServer:
    """A running API: its base URL, the app and the ``Assistant`` behind it."""

    url: str
    app: FastAPI
    core: Assistant
    admin_key: str | None

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        """A client of this server sending ``key`` as bearer token (none: no header)."""
        sent = dict(headers)
        if key is not None:
            sent["Authorization"] = f"Bearer {key}"
        return httpx.Client(base_url=self.url, headers=sent, timeout=30)

    def admin(self) -> httpx.Client:
        """A client with the admin key (no key when the server runs without one)."""
        return self.client(self.admin_key)

    def create_assistant(self, name: str | None = None, **config: Any) -> str:
        """Create an assistant through the API (``config`` by section); returns its name."""
        name = name or unique_name()
        with self.admin() as client:
            response = client.post("/api/assistants", json={"name": name, "config": config})
        assert response.status_code == 201, response.text
        return name

    def visitor_token(self, name: str) -> str:
        """A widget visitor token of assistant ``name``, signed as the server signs them."""
        secret = load_secret(self.app.state.settings, self.core.database)
        return VisitorTokens(secret).issue(name)[1]

    def create_key(self, name: str, kind: str = "secret") -> str:
        """Make a key for assistant ``name`` through the API; returns the key."""
        with self.admin() as client:
            response = client.post(f"/api/assistants/{name}/keys", json={"kind": kind})
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


def _start(
    stack: ExitStack,
    data_dir: Path,
    encoder: TransformerEncoder,
    admin_key: str | None,
    overrides: dict[str, Any],
) -> ApiServer:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        admin_key=SecretStr(admin_key) if admin_key is not None else None,
        **overrides,
    )
    core = Assistant(settings, encoder=encoder)
    stack.callback(core.close)
    app = create_app(settings, core=core)
    url = stack.enter_context(serving(app))
    return ApiServer(url, app, core, admin_key)


@pytest.fixture(scope="session")
def admin_key() -> str:
    """The admin key of the test servers."""
    return "test-admin-" + secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, encoder: TransformerEncoder, admin_key: str
) -> Iterator[ApiServer]:
    """One server per module: SQLite and embedded Chroma in a fresh data dir."""
    with ExitStack() as stack:
        yield _start(stack, tmp_path_factory.mktemp("api") / "data", encoder, admin_key, {})


@pytest.fixture
def make_api_server(
    tmp_path: Path, encoder: TransformerEncoder, admin_key: str
) -> Iterator[Callable[..., ApiServer]]:
    """Start servers on other settings: ``make_api_server(database_url=..., admin_key=None)``."""
    with ExitStack() as stack:
        count = 0

        def build(**overrides: Any) -> ApiServer:
            nonlocal count
            count += 1
            key = overrides.pop("admin_key", admin_key)
            return _start(stack, tmp_path / f"data-{count}", encoder, key, overrides)

        yield build


@pytest.fixture
def api_client(api_server: ApiServer) -> Iterator[httpx.Client]:
    """A client of ``api_server`` that sends no key."""
    with api_server.client() as client:
        yield client


@pytest.fixture
def admin_client(api_server: ApiServer) -> Iterator[httpx.Client]:
    """A client of ``api_server`` that sends the admin key."""
    with api_server.admin() as client:
        yield client


@pytest.fixture(scope="module")
def harbor(api_server: ApiServer) -> str:
    """The help centre ingested into assistant ``harbor`` on ``api_server``; its name."""
    core = api_server.core
    report = core.ingest([str(path) for path in HELP_CENTRE_PAGES], kb="harbor")
    assert not report.failures, report.failures
    core.registry.put(
        "harbor",
        AssistantConfig(
            brand=BrandConfig(
                display_name="Harbor Help",
                company="Harbor",
                # The pages are ingested from disk; visitors get links under the site instead.
                public_base_url=HARBOR_SITE,  # type: ignore[arg-type]
            )
        ),
    )
    return "harbor"
