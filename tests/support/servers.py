"""Real servers for tests and benchmarks (redis-server, chroma, PostgreSQL, a static site) on
loopback."""

from __future__ import annotations

import http.server
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

POSTGRES_SUPERUSER = "assistant"
"""The superuser role a cluster made by :func:`start_postgres` is initialised with."""

POSTGRES_SYSTEM_USER = "postgres"
"""The account (made by Debian's postgresql-common) PostgreSQL runs as when we are root."""


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
    # On PATH, else next to the running interpreter (a virtual environment not activated).
    executable = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
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


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (uvicorn's workers under its supervisor); empty when
    ``/proc`` cannot tell."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(child) for child in text.split()]


@contextmanager
def chroma_server(path: Path, log_path: Path) -> Iterator[str]:
    """``chroma run`` on a free loopback port over ``path`` while the block runs; yields its
    URL and stops it afterwards, also when the block fails."""
    port = free_loopback_port()
    process = start_chroma(port, path, log_path)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def find_postgres_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, or None when PostgreSQL is not installed.

    Debian keeps the server binaries off ``PATH`` in ``/usr/lib/postgresql/<version>/bin``; the
    highest version wins. Elsewhere ``pg_config --bindir`` is asked, when it exists.
    """
    debian_dirs = [
        binary.parent
        for binary in Path("/usr/lib/postgresql").glob("*/bin/postgres")
        if binary.parent.parent.name.isdigit()
    ]
    if debian_dirs:
        return max(debian_dirs, key=lambda bin_dir: int(bin_dir.parent.name))
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    configured = subprocess.run(
        [pg_config, "--bindir"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if configured and (Path(configured) / "postgres").exists():
        return Path(configured)
    return None


def start_postgres(port: int, data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Initialise a throwaway PostgreSQL cluster in ``data_dir`` and serve it on 127.0.0.1:``port``.

    The cluster trusts every connection from 127.0.0.1 (and accepts no other), its superuser is
    ``assistant``, its maintenance database is ``postgres``, and durability is switched off for
    speed. ``data_dir`` must be empty or absent. PostgreSQL refuses to run as root, so when we are
    root ``data_dir`` is handed to the ``postgres`` system user and both ``initdb`` and the server
    run as that user; its parent folders must then be searchable by it (a ``tempfile.mkdtemp``
    folder in ``/tmp`` is, once handed over). Stop the returned process with
    :func:`stop_postgres`; :func:`run_postgres` serves the same cluster again after that.

    Raises:
        RuntimeError: PostgreSQL is not installed, or the cluster did not come up (the message
            holds ``log_path``'s text).
    """
    init_postgres(data_dir, log_path)
    return run_postgres(port, data_dir, log_path)


def _postgres_account() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as: the ``postgres`` user when we are root, else None
    (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL will not run as root and there is no {POSTGRES_SYSTEM_USER!r} "
            "account to run it as (apt-get install postgresql creates it)"
        ) from None


def _postgres_bin_dir() -> Path:
    bin_dir = find_postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return bin_dir


def init_postgres(data_dir: Path, log_path: Path) -> None:
    """``initdb`` a cluster in the empty (or absent) ``data_dir`` as :func:`start_postgres`
    describes, trusting loopback TCP connections only."""
    bin_dir = _postgres_bin_dir()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    account = _postgres_account()
    if account is not None:
        os.chown(data_dir, account.pw_uid, account.pw_gid)
    with log_path.open("ab") as log:
        initialised = subprocess.run(
            [
                *(str(bin_dir / "initdb"), "--pgdata", str(data_dir)),
                *("--username", POSTGRES_SUPERUSER, "--auth", "trust"),
                *("--encoding", "UTF8", "--no-locale", "--no-sync", "--no-instructions"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # The postgres account may not be able to enter our working directory.
            cwd=data_dir,
            check=False,
            # None everywhere (subprocess's defaults) when we are not root: run as ourselves.
            user=account.pw_uid if account is not None else None,
            group=account.pw_gid if account is not None else None,
            extra_groups=[] if account is not None else None,
        )
    if initialised.returncode != 0:
        raise RuntimeError(f"initdb failed: {log_path.read_text()}")
    # Only loopback TCP: initdb's default also trusts every local Unix-socket user.
    hba_path = data_dir / "pg_hba.conf"
    hba_path.write_text("host all all 127.0.0.1/32 trust\n", encoding="utf-8")
    if account is not None:
        os.chown(hba_path, account.pw_uid, account.pw_gid)


def run_postgres(port: int, data_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Serve the cluster :func:`init_postgres` made in ``data_dir`` on 127.0.0.1:``port`` and
    wait until it accepts connections (also after a stop: the data stays)."""
    bin_dir = _postgres_bin_dir()
    account = _postgres_account()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        # No Unix socket at all: /var/run/postgresql may be missing or not ours, and a socket
        # path under a deep temporary folder can exceed the 107-byte limit.
        "unix_socket_directories": "",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                *(str(bin_dir / "postgres"), "-D", str(data_dir)),
                *(
                    argument
                    for name, value in settings.items()
                    for argument in ("-c", f"{name}={value}")
                ),
            ],
            # The server may outlive us (.ci/test.sh starts it from a short python -c).
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            user=account.pw_uid if account is not None else None,
            group=account.pw_gid if account is not None else None,
            extra_groups=[] if account is not None else None,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(
                host="127.0.0.1",
                port=port,
                user=POSTGRES_SUPERUSER,
                dbname="postgres",
                connect_timeout=1,
            ):
                return process
        except psycopg.OperationalError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop_postgres(process)
                raise RuntimeError(f"postgres did not start: {log_path.read_text()}") from None
            time.sleep(0.05)


def stop_postgres(process: subprocess.Popen[bytes]) -> None:
    """Stop a server from :func:`start_postgres` with a fast shutdown and reap it.

    SIGINT, not SIGTERM: SIGTERM is PostgreSQL's smart shutdown, which waits for every client to
    disconnect, so one forgotten connection pool would stall the end of a test run.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def temporary_postgres_database(server_url: str) -> Iterator[str]:
    """Create an empty database on the server at ``server_url`` and yield its SQLAlchemy URL.

    ``server_url`` names a database to run ``CREATE DATABASE`` from (``postgres`` usually) as a
    role allowed to; any ``postgresql`` driver name is accepted. The yielded URL uses the
    ``postgresql+psycopg`` driver. On exit the database is dropped ``WITH (FORCE)``, which also
    ends connections the caller left open.

    Example::

        with temporary_postgres_database("postgresql://assistant@127.0.0.1:6392/postgres") as url:
            engine = sqlalchemy.create_engine(url)
    """
    server = make_url(server_url)
    maintenance = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"assistant_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(maintenance, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


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

    ``robots`` is served as ``/robots.txt``; ``port`` None picks a free one. Every answer
    waits ``delay`` seconds first (settable while serving), so a crawl of many pages lasts long
    enough to be interrupted. Use as a context manager.
    """

    def __init__(
        self, root: Path, robots: str = "", port: int | None = None, delay: float = 0.0
    ) -> None:
        self.root = root
        self.delay = delay
        self.robots = robots.encode("utf-8")
        self.port = port or free_loopback_port()
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(site.root), **kwargs)

            def do_GET(self) -> None:
                if site.delay:
                    time.sleep(site.delay)
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
