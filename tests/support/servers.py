"""Real servers for tests and benchmarks (redis-server, chroma, a static site) on loopback."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(port: int, log_path: Path, password: str | None = None) -> subprocess.Popen[bytes]:
    """Start a throwaway redis-server on ``port`` (optionally password-protected), keeping
    nothing on disk, and wait until it answers."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                *(executable, "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                *(("--requirepass", password) if password else ()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = redis.Redis(port=port, password=password, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            client.close()
            return process
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop(process)
                raise RuntimeError(f"redis-server did not start: {log_path.read_text()}") from None
            time.sleep(0.05)


def start_chroma(port: int, path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``chroma run`` on ``port`` with data in ``path`` and wait for its heartbeat."""
    executable = shutil.which("chroma") or str(Path(__file__).parents[2] / ".venv/bin/chroma")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [executable, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=0.5).raise_for_status()
            return process
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop(process)
                raise RuntimeError(f"chroma did not start: {log_path.read_text()}") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server process and reap it."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class StaticSite:
    """A folder served over HTTP on a free loopback port, from a background thread.

    ``robots`` is served as ``/robots.txt``. Use as a context manager.
    """

    def __init__(self, root: Path, robots: str = "") -> None:
        self.root = root
        self.robots = robots.encode("utf-8")
        self.port = free_loopback_port()
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(site.root), **kwargs)

            def do_GET(self) -> None:
                if self.path == "/robots.txt":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(site.robots)))
                    self.end_headers()
                    self.wfile.write(site.robots)
                    return
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # keep test output quiet

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The site's root URL."""
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> StaticSite:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
