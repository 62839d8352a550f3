"""Fixtures of the widget tests: the API with the help centre (``tests.api.conftest``), host
pages served on another loopback origin, and Debian's chromium driven by Playwright.

Chromium is the system's (``/usr/bin/chromium``); browsers are never downloaded. Without it
(or without Playwright) the browser tests are skipped with the reason.
"""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import admin_key, api_server, harbor, make_api_server  # noqa: F401
from tests.support.servers import free_loopback_port

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The system chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class HostSite:
    """A plain web server on its own loopback port serving the pages a test registers."""

    port: int
    pages: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def origin(self, host: str = "127.0.0.1") -> str:
        """This site's origin under ``host`` (``localhost`` is another origin)."""
        return f"http://{host}:{self.port}"

    def add(self, path: str, body: str, headers: dict[str, str] | None = None) -> str:
        """Serve ``body`` as HTML at ``path``; returns its URL."""
        self.pages[path] = (body, headers or {})
        return self.origin() + path


@pytest.fixture(scope="module")
def host_site() -> Iterator[HostSite]:
    """A host site for the embedding pages, on another port than the API."""
    site = HostSite(free_loopback_port())

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = site.pages.get(self.path.split("?")[0])
            if page is None:
                self.send_error(404)
                return
            body, headers = page
            data = body.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright, one per module."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are kept (``tests/artifacts/``, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
