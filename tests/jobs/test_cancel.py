"""Cancelling jobs and jobs that end for good: a cancelled job never runs (again) and keeps
what it ingested; a job whose documents broke a limit is finished, not retried."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assistant.core import Assistant
from assistant.database.engine import Database, database_url
from assistant.errors import ConflictError, NotFoundError
from assistant.jobs.queue import InProcessQueue
from assistant.jobs.runner import run_job, upload_dir
from assistant.jobs.store import JobRecord, JobSpec, JobStore
from tests.jobs.test_queue import SlowSite, chunk_count, wait_until, write_pages
from tests.support.servers import free_loopback_port


@pytest.fixture
def web_assistant(make_assistant: Callable[..., Assistant]) -> Assistant:
    """An assistant allowed to fetch from loopback sites."""
    return make_assistant(fetch_allow_hosts=("127.0.0.1",))


def test_a_running_job_stops_at_its_next_document_and_keeps_what_it_ingested(
    web_assistant: Assistant, tmp_path: Path
) -> None:
    names = write_pages(tmp_path / "site", 12)
    store = JobStore(web_assistant.database)
    ended: list[JobRecord | None] = []
    with SlowSite(tmp_path / "site", delay=0.4) as site:
        job = store.create("docs", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
        runner = threading.Thread(target=lambda: ended.append(run_job(web_assistant, job.id)))
        runner.start()
        wait_until(lambda: store.find(job.id), lambda j: j.progress_done >= 2, 60)
        cancelled = store.cancel("docs", job.id)
        assert cancelled.status == "cancelled" and cancelled.finished_at is not None
        runner.join(timeout=30)
        assert not runner.is_alive()
    [record] = ended
    assert record is not None and record.status == "cancelled"
    assert 2 <= record.progress_done < len(names)
    kept = chunk_count(web_assistant, "docs")
    assert kept > 0  # what was ingested before the cancel stays
    assert run_job(web_assistant, job.id) is None  # never resumed
    assert store.get("docs", job.id).attempts == 1
    assert job.id not in {j.id for j in store.unfinished()}


def test_a_cancelled_queued_job_never_starts_and_its_files_are_removed(
    make_assistant: Callable[..., Assistant],
) -> None:
    assistant = make_assistant()
    store = JobStore(assistant.database)
    job_id = "c" * 32
    folder = upload_dir(assistant.settings.data_dir, job_id)
    folder.mkdir(parents=True)
    (folder / "faq.md").write_text("# Refunds\n\nPaid within 14 days.\n", encoding="utf-8")
    store.create("docs", "upload", JobSpec(files=("faq.md",)), job_id=job_id)
    assert store.cancel("docs", job_id).status == "cancelled"
    assert run_job(assistant, job_id) is None
    record = store.get("docs", job_id)
    assert (record.status, record.attempts, record.started_at) == ("cancelled", 0, None)
    assert not folder.exists()


def test_only_an_unfinished_job_of_the_assistant_can_be_cancelled(
    make_assistant: Callable[..., Assistant],
) -> None:
    assistant = make_assistant()
    store = JobStore(assistant.database)
    job = store.create("docs", "resync", JobSpec())
    with pytest.raises(NotFoundError):
        store.cancel("other", job.id)
    with pytest.raises(NotFoundError):
        store.cancel("docs", "no-such-job")
    store.cancel("docs", job.id)
    with pytest.raises(ConflictError):
        store.cancel("docs", job.id)
    finished = store.create("docs", "resync", JobSpec())
    store.fail(finished.id, "broken")
    with pytest.raises(ConflictError):
        store.cancel("docs", finished.id)
    assert store.get("docs", finished.id).status == "failed"


def _upload_job(assistant: Assistant, job_id: str, files: dict[str, str]) -> str:
    folder = upload_dir(assistant.settings.data_dir, job_id)
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    JobStore(assistant.database).create(
        "docs", "upload", JobSpec(files=tuple(files)), job_id=job_id
    )
    return job_id


async def test_documents_over_a_limit_end_the_job_for_good(
    make_assistant: Callable[..., Assistant],
) -> None:
    assistant = make_assistant(max_file_bytes=200)
    store = JobStore(assistant.database)
    big = "# Big\n\n" + "too large for the limit. " * 40
    small = "# Refunds\n\nRefunds are paid within 14 days.\n"
    mixed = _upload_job(assistant, "a" * 32, {"big.md": big, "faq.md": small})
    only_big = _upload_job(assistant, "b" * 32, {"big.md": big})
    first = run_job(assistant, mixed)
    second = run_job(assistant, only_big)
    assert first is not None and first.status == "succeeded" and first.report is not None
    assert [o.status for o in first.report.outcomes if o.url.endswith("big.md")] == ["failed"]
    assert second is not None and second.status == "failed"
    assert second.error is not None and "200-byte limit" in second.error
    # A restart puts back neither job, and running them again does nothing.
    queue = InProcessQueue(assistant)
    try:
        assert await queue.recover() == 0
    finally:
        await queue.close()
    for job_id in (mixed, only_big):
        assert run_job(assistant, job_id) is None
        assert store.get("docs", job_id).attempts == 1


@pytest.mark.integration
@pytest.mark.slow
def test_serve_stops_quickly_on_sigterm_and_leaves_its_running_job_resumable(
    tmp_path: Path,
) -> None:
    names = write_pages(tmp_path / "site", 20, paragraphs=1)
    data_dir = tmp_path / "data"
    store = JobStore(Database.open(database_url(None, data_dir)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_DATA_DIR=str(data_dir), ASSISTANT_FETCH_ALLOW_HOSTS="127.0.0.1")
    port = free_loopback_port()
    log_path = tmp_path / "serve.log"
    with SlowSite(tmp_path / "site", delay=0.5) as site:
        # Left unfinished "by an earlier process": the server resumes it when it starts.
        job = store.create("docs", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "assistant", "serve", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: store.find(job.id), lambda j: j.progress_done >= 2, 120)
            # An idle keep-alive connection must not hold the shutdown up either.
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                assert client.get("/healthz").status_code == 200
                started = time.monotonic()
                server.send_signal(signal.SIGTERM)
                code = server.wait(timeout=30)
                took = time.monotonic() - started
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=30)
    log_text = log_path.read_text(errors="replace")
    # uvicorn re-raises the signal once it has shut down cleanly, so the exit is by SIGTERM.
    assert code in (0, -signal.SIGTERM), log_text
    assert "Application shutdown complete" in log_text
    assert took < 8, log_text
    stopped = store.get("docs", job.id)
    assert (stopped.status, stopped.attempts) == ("queued", 0), log_text
    assert stopped.progress_done < len(names)
