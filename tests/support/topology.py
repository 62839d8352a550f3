"""The production topology of ``docker/compose.yaml`` as real processes on loopback.

PostgreSQL, ``redis-server`` and ``chroma run`` (started with :mod:`tests.support.servers`),
two ``assistant serve`` replicas and two ``assistant worker`` processes, all in one temporary
folder, with the environment compose gives them (``ASSISTANT_DATABASE_URL``,
``ASSISTANT_CHROMA_URL``, ``ASSISTANT_REDIS_URL``, ``ASSISTANT_ADMIN_KEY``, provider
``extractive``). Any one process can be killed with SIGKILL (:meth:`Topology.kill`), stopped
gracefully (:meth:`Topology.stop`) and started again on the same port and data
(:meth:`Topology.start`); a started API is waited for until ``/readyz`` answers 200, a worker
until it logs that it takes jobs.

Everything is stopped when the context manager exits, and at interpreter exit if it never
did (a failing test, an interrupted benchmark)::

    with running_topology() as topology:
        with topology.admin_client() as admin:   # the next API replica, round robin
            admin.post("/api/assistants", json={"name": "docs"})
        topology.kill("worker-0")
        topology.start("worker-0")

Services are named ``postgres``, ``redis``, ``chroma``, ``api-0``, ``api-1``, ``worker-0`` and
``worker-1``. With ``ASSISTANT_TEST_POSTGRES_URL`` set, a fresh database on that server is
used instead of a cluster of our own, and ``postgres`` cannot be stopped or killed.
"""

from __future__ import annotations

import atexit
import itertools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.servers import (
    POSTGRES_SUPERUSER,
    free_loopback_port,
    init_postgres,
    run_postgres,
    start_chroma,
    start_redis,
    stop,
    stop_postgres,
    temporary_postgres_database,
)

__all__ = ["READY_SECONDS", "Service", "Topology", "running_topology"]

READY_SECONDS = 180.0
"""How long an API or worker may take to be ready (imports torch and loads the encoder; the
machine may be shared)."""

# Variables of the process running the tests that must not leak into the topology's processes.
_FOREIGN_PREFIXES = ("ASSISTANT_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_")
_WORKER_READY_LINE = b"worker started"


@dataclass
class Service:
    """One process of the topology: how it is started, and the running one (if any)."""

    name: str
    port: int | None
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_offset: int = 0
    """Where the running process's part of the log begins (the log keeps every run)."""

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None


@dataclass
class Topology:
    """The running topology: its services, the API replicas' URLs and the admin key."""

    root: Path
    admin_key: str
    database_url: str
    redis_url: str
    chroma_url: str
    environment: dict[str, str]
    services: dict[str, Service] = field(default_factory=dict)
    _replica: Iterator[int] = field(default_factory=itertools.count)
    _postgres_data: Path | None = None

    @property
    def data_dir(self) -> Path:
        """The data dir every API and worker shares (uploaded files wait there)."""
        return self.root / "data"

    @property
    def api_names(self) -> list[str]:
        """The API replicas' service names."""
        return [name for name in self.services if name.startswith("api-")]

    @property
    def worker_names(self) -> list[str]:
        """The workers' service names."""
        return [name for name in self.services if name.startswith("worker-")]

    def api_url(self, name: str) -> str:
        """The base URL of API replica ``name``."""
        return f"http://127.0.0.1:{self.services[name].port}"

    def next_api(self) -> str:
        """The base URL of the next API replica, in turns (a load balancer's round robin)."""
        names = self.api_names
        return self.api_url(names[next(self._replica) % len(names)])

    def admin_client(self, url: str | None = None, timeout: float = 60.0) -> httpx.Client:
        """An HTTP client with the admin key, on ``url`` or the next replica."""
        return httpx.Client(
            base_url=url or self.next_api(),
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=timeout,
        )

    def log(self, name: str, lines: int = 40) -> str:
        """The last ``lines`` lines of service ``name``'s log (all its runs)."""
        text = self.services[name].log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # --- faults --------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL service ``name`` and reap it: no chance to finish or clean up anything."""
        service = self._manageable(name)
        if service.process is not None:
            if service.process.poll() is None:
                service.process.kill()
            service.process.wait(timeout=30)
        service.process = None

    def stop(self, name: str) -> None:
        """Stop service ``name`` the way its supervisor would (SIGTERM; PostgreSQL's fast
        shutdown) and wait for it to exit."""
        service = self._manageable(name)
        if service.process is not None:
            if name == "postgres":
                stop_postgres(service.process)
            else:
                stop(service.process)
        service.process = None

    def start(self, name: str) -> None:
        """Start service ``name`` (again) on its port and data, and wait until it is ready."""
        service = self._manageable(name)
        if service.running:
            raise RuntimeError(f"{name} is already running")
        self._launch(service)
        self._wait_ready(service)

    def restart(self, name: str, *, kill: bool = True) -> None:
        """Kill (or, with ``kill`` False, stop) service ``name`` and start it again."""
        if kill:
            self.kill(name)
        else:
            self.stop(name)
        self.start(name)

    def close(self) -> None:
        """Stop every process, apps first and the stores last (safe to call twice)."""
        for name in reversed(list(self.services)):
            service = self.services[name]
            if service.process is None:
                continue
            try:
                if name == "postgres":
                    stop_postgres(service.process)
                else:
                    # Fault tests leave nothing to drain: a quick end beats a graceful one.
                    service.process.kill()
                    service.process.wait(timeout=30)
            finally:
                service.process = None

    # --- starting ------------------------------------------------------------------------

    def _manageable(self, name: str) -> Service:
        if name == "postgres" and self._postgres_data is None:
            raise RuntimeError(
                "PostgreSQL is the shared ASSISTANT_TEST_POSTGRES_URL server here; unset it to "
                "let the topology run (and restart) a cluster of its own"
            )
        return self.services[name]

    def _launch(self, service: Service) -> None:
        """Start ``service``'s process; stores are waited for here, apps by ``_wait_ready``."""
        name, port = service.name, service.port
        assert port is not None or name.startswith("worker-")
        if name == "postgres":
            assert self._postgres_data is not None and port is not None
            service.process = run_postgres(port, self._postgres_data, service.log_path)
        elif name == "redis":
            assert port is not None
            service.process = start_redis(port, service.log_path)
        elif name == "chroma":
            assert port is not None
            service.process = start_chroma(port, self.root / "chroma", service.log_path)
        else:
            # -v: the apps' warnings (a 503 and its reason, a job put back) reach the log.
            command = [sys.executable, "-m", "assistant", "-v"]
            if name.startswith("api-"):
                command += ["serve", "--host", "127.0.0.1", "--port", str(port)]
                command += ["--log-level", "warning"]
            else:
                command += ["worker"]
            with service.log_path.open("ab") as log:
                service.log_offset = log.tell()
                # The temporary folder as working directory: no .env of the checkout is read.
                service.process = subprocess.Popen(
                    command,
                    cwd=self.root,
                    env=self.environment,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    def _wait_ready(self, service: Service) -> None:
        """Wait until an API answers ``/readyz`` with 200, or a worker logs its start."""
        if not service.name.startswith(("api-", "worker-")):
            return
        assert service.process is not None
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited ({service.process.returncode}):\n"
                    f"{self.log(service.name)}"
                )
            if service.name.startswith("api-"):
                try:
                    url = f"{self.api_url(service.name)}/readyz"
                    if httpx.get(url, timeout=5).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            else:
                with service.log_path.open("rb") as log:
                    log.seek(service.log_offset)
                    if _WORKER_READY_LINE in log.read():
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{service.name} was not ready in time:\n{self.log(service.name)}"
                )
            time.sleep(0.2)


def _environment(
    root: Path, database_url: str, chroma_url: str, redis_url: str, admin_key: str
) -> dict[str, str]:
    """The apps' environment: compose's variables on top of ours, less any stray settings."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(_FOREIGN_PREFIXES)
    }
    environment |= {
        "ASSISTANT_DATA_DIR": str(root / "data"),
        "ASSISTANT_DATABASE_URL": database_url,
        "ASSISTANT_CHROMA_URL": chroma_url,
        "ASSISTANT_REDIS_URL": redis_url,
        "ASSISTANT_ADMIN_KEY": admin_key,
        "ASSISTANT_PROVIDER": "extractive",
        # Test sites are served on loopback, which the fetcher refuses unless told.
        "ASSISTANT_FETCH_ALLOW_HOSTS": "127.0.0.1",
        # A killed worker's job is taken up again after its lease: seconds, not a minute.
        "ASSISTANT_JOB_LEASE_SECONDS": "2",
        # Six processes share the cores: one torch thread each avoids threads spinning.
        "ASSISTANT_TORCH_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        # The repository, so ``python -m assistant`` runs this checkout's code.
        "PYTHONPATH": os.pathsep.join(
            part
            for part in (str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH"))
            if part
        ),
    }
    return environment


@contextmanager
def running_topology(
    *,
    apis: int = 2,
    workers: int = 2,
    environment: Mapping[str, str] | None = None,
) -> Iterator[Topology]:
    """Start the whole topology in a fresh temporary folder; stop it and remove the folder on
    exit. ``environment`` adds to (or overrides) the apps' variables, e.g. a provider's base
    URL or ``ASSISTANT_JOB_LEASE_SECONDS``.

    Raises:
        RuntimeError: a process did not start or get ready (the message holds its log).
    """
    # Not under pytest's temporary folders: as root PostgreSQL runs as the postgres account,
    # which cannot enter those.
    root = Path(tempfile.mkdtemp(prefix="assistant-topology-"))
    root.chmod(0o755)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, True)
        logs = root / "logs"
        logs.mkdir()
        services: list[Service] = []
        postgres_data: Path | None = None
        shared_postgres = os.environ.get("ASSISTANT_TEST_POSTGRES_URL")
        if shared_postgres:
            database_url = stack.enter_context(temporary_postgres_database(shared_postgres))
        else:
            postgres_port = free_loopback_port()
            postgres_data = root / "postgres"
            init_postgres(postgres_data, logs / "postgres.log")
            services.append(Service("postgres", postgres_port, logs / "postgres.log"))
            database_url = (
                f"postgresql+psycopg://{POSTGRES_SUPERUSER}@127.0.0.1:{postgres_port}/postgres"
            )
        redis_port, chroma_port = free_loopback_port(), free_loopback_port()
        services.append(Service("redis", redis_port, logs / "redis.log"))
        services.append(Service("chroma", chroma_port, logs / "chroma.log"))
        services += [
            Service(f"api-{n}", free_loopback_port(), logs / f"api-{n}.log") for n in range(apis)
        ]
        services += [Service(f"worker-{n}", None, logs / f"worker-{n}.log") for n in range(workers)]
        admin_key = secrets.token_urlsafe(24)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        chroma_url = f"http://127.0.0.1:{chroma_port}"
        topology = Topology(
            root=root,
            admin_key=admin_key,
            database_url=database_url,
            redis_url=redis_url,
            chroma_url=chroma_url,
            environment=_environment(root, database_url, chroma_url, redis_url, admin_key)
            | dict(environment or {}),
            services={service.name: service for service in services},
            _postgres_data=postgres_data,
        )
        # Registered before anything starts: an interrupted start leaves no process behind.
        atexit.register(topology.close)
        stack.callback(atexit.unregister, topology.close)
        stack.callback(topology.close)
        for service in services:
            topology._launch(service)
        # The apps load their models in parallel; then each is waited for.
        for service in services:
            topology._wait_ready(service)
        yield topology
