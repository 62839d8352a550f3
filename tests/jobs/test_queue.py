"""Job queues end to end on real parts: the in-process pool (run, recover after a restart, stop
and put back), ``run_job`` on uploads and failures, and the Redis queue with real ``assistant
worker`` processes, one of them killed with SIGKILL mid-job."""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from assistant.core import Assistant
from assistant.database.engine import Database, database_url
from assistant.jobs.queue import QUEUE_NAME, InProcessQueue, RedisQueue, open_job_queue
from assistant.jobs.runner import UPLOAD_SCHEME, run_job, upload_dir
from assistant.jobs.store import JobRecord, JobSpec, JobStore
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings
from tests.support.servers import free_loopback_port

WORDS = [
    "harbor",
    "sync",
    "invoice",
    "ledger",
    "refund",
    "policy",
    "account",
    "export",
    "schedule",
    "backup",
    "region",
    "latency",
    "widget",
    "billing",
    "seat",
    "plan",
    "archive",
    "webhook",
    "token",
    "audit",
]


class SlowSite:
    """Static pages on a loopback port; every request waits ``delay`` seconds first, so a job
    over many pages takes long enough to be interrupted."""

    def __init__(self, root: Path, delay: float = 0.0) -> None:
        self.root = root
        self.delay = delay
        self.port = free_loopback_port()
        self.requests: list[str] = []
        """The paths asked for, in the order their answers began."""
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(site.root), **kwargs)

            def do_GET(self) -> None:
                time.sleep(site.delay)
                site.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        """The URL of ``path`` on the site."""
        return f"http://127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> SlowSite:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def write_pages(folder: Path, count: int, paragraphs: int = 2) -> list[str]:
    """Write ``count`` distinct HTML pages (about ``paragraphs`` × 60 words each); return
    their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number in range(count):
        body = "".join(
            "<p>"
            + " ".join(
                f"{WORDS[(number * 7 + paragraph * 3 + k) % len(WORDS)]}{(number + k) % 13}"
                for k in range(60)
            )
            + ".</p>"
            for paragraph in range(paragraphs)
        )
        name = f"page-{number}.html"
        (folder / name).write_text(
            f"<html><head><title>Page {number}</title></head>"
            f"<body><main><h1>Page {number}</h1>{body}</main></body></html>",
            encoding="utf-8",
        )
        names.append(name)
    return names


WORKER_WAIT = 180.0
"""Seconds to wait on an ``assistant worker`` process: it loads torch and the encoder before
its first job, which takes far longer on a busy machine (tests run in parallel)."""


def wait_until(
    check: Callable[[], JobRecord | None], done: Callable[[JobRecord], bool], timeout: float
) -> JobRecord:
    """Poll ``check`` until ``done`` holds for its record; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        record = check()
        if record is not None and done(record):
            return record
        if time.monotonic() > deadline:
            pytest.fail(f"timed out; the job is {record}")
        time.sleep(0.2)


def chunk_count(assistant: Assistant, kb: str) -> int:
    return sum(summary.chunks for summary in assistant.sources(kb=kb))


@pytest.fixture
def web_assistant(make_assistant: Callable[..., Assistant]) -> Assistant:
    """An assistant allowed to fetch from loopback sites."""
    return make_assistant(fetch_allow_hosts=("127.0.0.1",))


# --- the in-process queue ----------------------------------------------------------------------


async def test_the_in_process_queue_runs_a_job_to_its_end(
    web_assistant: Assistant, tmp_path: Path
) -> None:
    names = write_pages(tmp_path / "site", 2)
    store = JobStore(web_assistant.database)
    queue = open_job_queue(web_assistant)
    assert isinstance(queue, InProcessQueue)
    with SlowSite(tmp_path / "site") as site:
        job = store.create("docs", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
        await queue.enqueue(job.id)
        await queue.enqueue(job.id)  # twice: still one run
        finished = await asyncio.to_thread(
            wait_until, lambda: store.find(job.id), lambda j: j.finished, 60
        )
    await queue.close()
    assert finished.status == "succeeded", finished.error
    assert finished.attempts == 1
    assert finished.report is not None and finished.report.count("added") == 2
    assert (finished.progress_done, finished.progress_total) == (2, 2)
    assert chunk_count(web_assistant, "docs") == finished.report.chunks_embedded > 0


async def test_jobs_left_unfinished_by_a_previous_process_run_after_a_restart(
    web_assistant: Assistant, tmp_path: Path
) -> None:
    names = write_pages(tmp_path / "site", 2)
    store = JobStore(web_assistant.database)
    with SlowSite(tmp_path / "site") as site:
        queued = store.create("docs", "url", JobSpec(sources=(site.url(names[0]),)))
        running = store.create("docs", "url", JobSpec(sources=(site.url(names[1]),)))
        # The previous process claimed this one and died before finishing it.
        store.mark_running(running.id, max_attempts=3)
        queue = InProcessQueue(web_assistant)
        assert await queue.recover() == 2
        for job_id in (queued.id, running.id):
            await asyncio.to_thread(
                wait_until, functools.partial(store.find, job_id), lambda j: j.finished, 60
            )
    await queue.close()
    assert store.get("docs", queued.id).status == "succeeded"
    again = store.get("docs", running.id)
    assert (again.status, again.attempts) == ("succeeded", 2)
    assert len(web_assistant.sources(kb="docs")) == 2


@pytest.mark.slow
async def test_closing_the_queue_stops_a_running_job_and_puts_it_back(
    web_assistant: Assistant, tmp_path: Path
) -> None:
    names = write_pages(tmp_path / "site", 12, paragraphs=1)
    store = JobStore(web_assistant.database)
    with SlowSite(tmp_path / "site", delay=0.3) as site:
        job = store.create("docs", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
        queue = InProcessQueue(web_assistant)
        await queue.enqueue(job.id)
        await asyncio.to_thread(
            wait_until, lambda: store.find(job.id), lambda j: j.progress_done >= 2, 60
        )
        await queue.close()
        stopped = store.get("docs", job.id)
        assert (stopped.status, stopped.attempts) == ("queued", 0)
        assert 0 < len(web_assistant.sources(kb="docs")) < len(names)
        site.delay = 0.0
        restarted = InProcessQueue(web_assistant)
        await restarted.recover()
        finished = await asyncio.to_thread(
            wait_until, lambda: store.find(job.id), lambda j: j.finished, 60
        )
        await restarted.close()
    assert finished.status == "succeeded" and finished.attempts == 1
    assert finished.report is not None
    assert finished.report.count("unchanged") >= 1
    assert finished.report.count("added") + finished.report.count("unchanged") == len(names)


# --- run_job -----------------------------------------------------------------------------------


def test_an_upload_job_stores_files_under_stable_names_and_removes_them(
    make_assistant: Callable[..., Assistant],
) -> None:
    assistant = make_assistant()
    store = JobStore(assistant.database)

    def upload(text: str) -> JobRecord:
        job_id = "f" * 31 + str(len(store.list_jobs("docs")))
        folder = upload_dir(assistant.settings.data_dir, job_id)
        folder.mkdir(parents=True)
        (folder / "faq.md").write_text(text, encoding="utf-8")
        store.create("docs", "upload", JobSpec(files=("faq.md",)), job_id=job_id)
        record = run_job(assistant, job_id)
        assert record is not None
        assert not folder.exists()
        return record

    first = upload("# Refunds\n\nRefunds are paid within 14 days of a request.\n")
    assert first.status == "succeeded" and first.report is not None
    assert [o.url for o in first.report.outcomes] == [UPLOAD_SCHEME + "faq.md"]
    second = upload("# Refunds\n\nRefunds are paid within 30 days of a request.\n")
    assert second.report is not None and second.report.outcomes[0].status == "updated"
    [source] = assistant.sources(kb="docs")
    assert (source.source, source.documents) == (UPLOAD_SCHEME + "faq.md", 1)
    assert "30 days" in assistant.search("refund delay", kb="docs", k=1).hits[0].text


def test_a_job_that_ingests_nothing_fails_with_the_reason(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    # No loopback exemption: the address guard refuses the local site.
    assistant = make_assistant()
    names = write_pages(tmp_path / "site", 1)
    store = JobStore(assistant.database)
    with SlowSite(tmp_path / "site") as site:
        job = store.create("docs", "url", JobSpec(sources=(site.url(names[0]),)))
        record = run_job(assistant, job.id)
    assert record is not None and record.status == "failed"
    assert record.error is not None and "nothing could be ingested" in record.error
    assert record.report is not None
    assert record.report.outcomes[0].error_type == "BlockedURLError"


def test_a_finished_job_is_not_run_again(web_assistant: Assistant, tmp_path: Path) -> None:
    names = write_pages(tmp_path / "site", 1)
    store = JobStore(web_assistant.database)
    with SlowSite(tmp_path / "site") as site:
        job = store.create("docs", "url", JobSpec(sources=(site.url(names[0]),)))
        assert run_job(web_assistant, job.id) is not None
        assert run_job(web_assistant, job.id) is None
    assert store.get("docs", job.id).attempts == 1


# --- the Redis queue and `assistant worker` ----------------------------------------------------


class Workers:
    """Starts ``assistant worker`` processes on one data dir and Redis; stops them all."""

    def __init__(self, data_dir: Path, redis_url: str, logs: Path) -> None:
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        self.env.update(
            ASSISTANT_DATA_DIR=str(data_dir),
            ASSISTANT_REDIS_URL=redis_url,
            ASSISTANT_FETCH_ALLOW_HOSTS="127.0.0.1",
            ASSISTANT_JOB_LEASE_SECONDS="2",
        )

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant", "worker"],
            env=self.env,
            cwd=self.logs,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        return process

    def log(self, number: int) -> str:
        return (self.logs / f"worker-{number}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture
def workers(tmp_path: Path, private_redis_url: str) -> Iterator[Workers]:
    started = Workers(tmp_path / "data", private_redis_url, tmp_path)
    yield started
    started.stop_all()


def test_the_worker_command_needs_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "worker"],
        env={**env, "ASSISTANT_DATA_DIR": str(tmp_path / "data")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "ASSISTANT_REDIS_URL" in result.stderr and "Traceback" not in result.stderr


def _store(data_dir: Path) -> JobStore:
    return JobStore(Database.open(database_url(None, data_dir)))


@pytest.mark.integration
@pytest.mark.slow
async def test_workers_run_a_job_from_the_redis_queue_once_and_stop_cleanly(
    workers: Workers, private_redis_url: str, tmp_path: Path
) -> None:
    # The job outlasts the 2-second lease several times: the renewed lease keeps the second
    # worker from starting it too.
    names = write_pages(tmp_path / "site", 8, paragraphs=1)
    store = _store(tmp_path / "data")
    with SlowSite(tmp_path / "site", delay=0.6) as site:
        job = store.create("docs", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
        queue = RedisQueue(Database.open(database_url(None, tmp_path / "data")), private_redis_url)
        await queue.enqueue(job.id)
        await queue.close()
        started = [workers.start(), workers.start()]
        finished = await asyncio.to_thread(
            wait_until, lambda: store.find(job.id), lambda j: j.finished, WORKER_WAIT
        )
    logs = workers.log(0) + workers.log(1)
    assert finished.status == "succeeded", logs
    assert finished.attempts == 1, logs
    assert finished.report is not None and finished.report.count("added") == len(names)
    assert finished.finished_at is not None and finished.started_at is not None
    assert (finished.finished_at - finished.started_at).total_seconds() > 4
    for worker in started:
        worker.send_signal(signal.SIGTERM)
    assert [worker.wait(timeout=30) for worker in started] == [0, 0], logs


@pytest.mark.integration
@pytest.mark.slow
async def test_a_worker_stopped_with_sigterm_puts_its_running_job_back(
    workers: Workers, private_redis_url: str, tmp_path: Path
) -> None:
    names = write_pages(tmp_path / "site", 6, paragraphs=1)
    store = _store(tmp_path / "data")
    with SlowSite(tmp_path / "site", delay=0.3) as site:
        job = store.create("docs", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
        queue = RedisQueue(Database.open(database_url(None, tmp_path / "data")), private_redis_url)
        await queue.enqueue(job.id)
        await queue.close()
        first = workers.start()
        await asyncio.to_thread(
            wait_until, lambda: store.find(job.id), lambda j: j.progress_done >= 2, WORKER_WAIT
        )
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0, workers.log(0)
        stopped = store.get("docs", job.id)
        assert (stopped.status, stopped.attempts) == ("queued", 0), workers.log(0)
        with redis.Redis.from_url(private_redis_url) as client:
            assert client.zcard(QUEUE_NAME) == 1
        site.delay = 0.0
        workers.start()
        finished = await asyncio.to_thread(
            wait_until, lambda: store.find(job.id), lambda j: j.finished, WORKER_WAIT
        )
    assert (finished.status, finished.attempts) == ("succeeded", 1), workers.log(1)


@pytest.mark.integration
@pytest.mark.slow
async def test_a_job_of_a_killed_worker_is_finished_by_the_next_without_lost_or_extra_chunks(
    workers: Workers,
    private_redis_url: str,
    tmp_path: Path,
    encoder: TransformerEncoder,
) -> None:
    names = write_pages(tmp_path / "site", 12, paragraphs=1)
    store = _store(tmp_path / "data")
    with SlowSite(tmp_path / "site", delay=0.25) as site:
        spec = JobSpec(sources=tuple(site.url(n) for n in names))
        job = store.create("docs", "url", spec)
        queue = RedisQueue(Database.open(database_url(None, tmp_path / "data")), private_redis_url)
        await queue.enqueue(job.id)
        await queue.close()
        first = workers.start()
        await asyncio.to_thread(
            wait_until, lambda: store.find(job.id), lambda j: j.progress_done >= 4, WORKER_WAIT
        )
        first.kill()  # SIGKILL: no chance to put the job back
        first.wait(timeout=30)
        interrupted = store.get("docs", job.id)
        assert (interrupted.status, interrupted.attempts) == ("running", 1)
        site.delay = 0.05
        workers.start()
        finished = await asyncio.to_thread(
            wait_until, lambda: store.find(job.id), lambda j: j.finished, WORKER_WAIT
        )
        assert finished.status == "succeeded", workers.log(1)
        workers.stop_all()
        # A clean run of the same job, in a process of its own data.
        site.delay = 0.0
        clean = Assistant(
            Settings(  # type: ignore[call-arg]
                _env_file=None, data_dir=tmp_path / "clean", fetch_allow_hosts=("127.0.0.1",)
            ),
            encoder=encoder,
        )
        clean_job = JobStore(clean.database).create("docs", "url", spec)
        clean_record = run_job(clean, clean_job.id)
    assert clean_record is not None and clean_record.status == "succeeded"
    assert finished.attempts == 2
    assert finished.report is not None
    # What the killed worker stored was skipped, not embedded again.
    assert finished.report.count("unchanged") >= 3
    assert finished.report.count("added") + finished.report.count("unchanged") == len(names)
    resumed = Assistant(
        Settings(_env_file=None, data_dir=tmp_path / "data"),  # type: ignore[call-arg]
        encoder=encoder,
    )
    try:
        assert chunk_count(resumed, "docs") == chunk_count(clean, "docs") > 0
        assert len(resumed.documents(kb="docs")) == len(names)
        stored_ids = [cid for state in resumed.documents(kb="docs") for cid in state.chunk_ids]
        assert len(stored_ids) == len(set(stored_ids))
    finally:
        resumed.close()
        clean.close()
