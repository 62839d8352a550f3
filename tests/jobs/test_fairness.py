"""Fair turns between assistants: the scheduler alone (jobs made of steps, no ingestion), then
the in-process queue and a real ``assistant worker`` process on the Redis queue, both on real
ingestion of a slow local site, and the time and memory bounds that end a job for good."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.database.engine import Database, database_url
from assistant.jobs.fairness import FairScheduler, Turn
from assistant.jobs.queue import InProcessQueue, RedisQueue
from assistant.jobs.runner import run_job
from assistant.jobs.store import JobRecord, JobSpec, JobStore
from tests.jobs import test_queue
from tests.jobs.test_queue import WORKER_WAIT, SlowSite, Workers, wait_until, write_pages

# The ``assistant worker`` processes of the queue tests.
workers = test_queue.workers


class Journal:
    """Records which job did which step, in the order the steps ran."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.lock = threading.Lock()

    def job(self, name: str, steps: int, step_seconds: float = 0.01) -> Callable[[Turn], str]:
        """A job of ``steps`` documents, each recorded then handed over like ingestion does."""

        def work(turn: Turn) -> str:
            for number in range(steps):
                time.sleep(step_seconds)
                with self.lock:
                    self.steps.append(f"{name}{number}")
                if not turn.between_documents():
                    return "stopped"
            return "done"

        return work


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=16)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def _wait(*futures: Future[str]) -> list[str]:
    return [future.result(timeout=30) for future in futures]


def test_a_running_job_hands_its_slot_to_another_assistant_between_documents(
    executor: ThreadPoolExecutor,
) -> None:
    journal = Journal()
    scheduler = FairScheduler(slots=1, launch=executor.submit)
    gate = threading.Event()

    def first_step_waits(turn: Turn) -> str:
        gate.wait(10)  # B is submitted while A is inside its first document
        return journal.job("a", 6)(turn)

    big = scheduler.submit("A", first_step_waits)
    small = scheduler.submit("B", journal.job("b", 1))
    gate.set()
    assert _wait(big, small) == ["done", "done"]
    # B ran right after A's first document, not after A's six.
    assert journal.steps.index("b0") == 1, journal.steps


def test_assistants_take_turns_round_robin_and_each_keeps_its_own_order(
    executor: ThreadPoolExecutor,
) -> None:
    journal = Journal()
    scheduler = FairScheduler(slots=1, launch=executor.submit)
    gate = threading.Event()

    def held(work: Callable[[Turn], str]) -> Callable[[Turn], str]:
        def run(turn: Turn) -> str:
            gate.wait(10)
            return work(turn)

        return run

    futures = [
        scheduler.submit("A", held(journal.job("a", 3))),
        scheduler.submit("A", journal.job("A", 1)),  # A's second job waits for its first
        scheduler.submit("B", journal.job("b", 3)),
        scheduler.submit("C", journal.job("c", 2)),
    ]
    gate.set()
    assert _wait(*futures) == ["done"] * 4
    assert journal.steps == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "A0"]


def test_without_preemption_a_started_job_keeps_its_slot_to_its_end(
    executor: ThreadPoolExecutor,
) -> None:
    journal = Journal()
    scheduler = FairScheduler(slots=1, launch=executor.submit, preempt=False)
    gate = threading.Event()

    def first_step_waits(turn: Turn) -> str:
        gate.wait(10)
        return journal.job("a", 4)(turn)

    futures = [scheduler.submit("A", first_step_waits), scheduler.submit("B", journal.job("b", 1))]
    gate.set()
    _wait(*futures)
    assert journal.steps == ["a0", "a1", "a2", "a3", "b0"]


def test_per_assistant_limit_and_slots_bound_what_runs_at_once(
    executor: ThreadPoolExecutor,
) -> None:
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()
    scheduler = FairScheduler(slots=3, per_assistant=2, launch=executor.submit)

    def job(assistant: str) -> Callable[[Turn], str]:
        def work(turn: Turn) -> str:
            for _ in range(3):
                with lock:
                    running[assistant] = running.get(assistant, 0) + 1
                    peak[assistant] = max(peak.get(assistant, 0), running[assistant])
                    peak["all"] = max(peak.get("all", 0), sum(running.values()))
                time.sleep(0.02)
                with lock:
                    running[assistant] -= 1
                turn.between_documents()
            return "done"

        return work

    futures = [scheduler.submit(name, job(name)) for name in "AAAABBBC"]
    assert _wait(*futures) == ["done"] * 8
    assert peak["A"] <= 2 and peak["B"] <= 2 and peak["all"] <= 3


def test_close_cancels_jobs_not_started_and_a_paused_job_stops_with_its_event(
    executor: ThreadPoolExecutor,
) -> None:
    stop = threading.Event()
    scheduler = FairScheduler(slots=1, launch=executor.submit)
    inside = threading.Event()
    release = threading.Event()
    handed_over: list[bool] = []

    def long_job(turn: Turn) -> str:
        inside.set()
        release.wait(10)
        handed_over.append(turn.between_documents())
        return "stopped" if not handed_over[-1] else "went on"

    b_started = threading.Event()
    b_release = threading.Event()

    def blocking_job(turn: Turn) -> str:
        b_started.set()
        b_release.wait(10)
        return "done"

    first = scheduler.submit("A", long_job, stop=stop)
    assert inside.wait(10)
    second = scheduler.submit("B", blocking_job, stop=stop)
    third = scheduler.submit("C", blocking_job, stop=stop)
    assert scheduler.withdraw(third) and third.cancelled()
    release.set()  # A pauses for B, which blocks until stop
    assert b_started.wait(10)
    assert scheduler.waiting() == 1  # A, paused
    scheduler.close()
    stop.set()  # A stops while it waits; B holds the slot all along
    assert first.result(timeout=10) == "stopped"
    b_release.set()
    assert second.result(timeout=10) == "done"
    assert handed_over == [False]
    assert scheduler.submit("D", blocking_job).cancelled()


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def web_assistant(make_assistant: Callable[..., Assistant]) -> Assistant:
    return make_assistant(fetch_allow_hosts=("127.0.0.1",))


@pytest.mark.integration
async def test_a_long_ingest_of_one_assistant_delays_another_by_about_one_document(
    web_assistant: Assistant, tmp_path: Path
) -> None:
    names = write_pages(tmp_path / "site", 9, paragraphs=1)
    _write_beta_page(tmp_path / "site")
    queue = InProcessQueue(web_assistant)  # one slot: ASSISTANT_JOB_CONCURRENCY=1
    try:
        with SlowSite(tmp_path / "site", delay=0.3) as site:
            run = await _one_page_within_a_crawl(
                JobStore(web_assistant.database), queue, site, names
            )
    finally:
        await queue.close()
    small_done, big_done, requests, pages_before = run
    assert small_done.status == "succeeded"
    # Between B's arrival and B's page, A fetched the page it was on and perhaps the next.
    pages_between = _pages_in(requests[: requests.index("/beta.html")]) - pages_before
    assert pages_between <= 2, requests
    assert _pages_in(requests) < len(names)  # B did not wait for A's end
    assert big_done.status == "succeeded" and big_done.attempts == 1
    assert big_done.report is not None and big_done.report.count("added") == len(names)


@pytest.mark.integration
@pytest.mark.slow  # the worker process loads the model first
async def test_a_worker_process_runs_another_assistants_one_page_ingest_within_a_crawl(
    workers: Workers, private_redis_url: str, tmp_path: Path
) -> None:
    names = write_pages(tmp_path / "site", 15, paragraphs=1)
    _write_beta_page(tmp_path / "site")
    database = Database.open(database_url(None, tmp_path / "data"))
    queue = RedisQueue(database, private_redis_url)
    try:
        with SlowSite(tmp_path / "site", delay=0.2) as site:
            # One process, one slot (ASSISTANT_JOB_CONCURRENCY=1), started once A is queued.
            run = await _one_page_within_a_crawl(
                JobStore(database), queue, site, names, started=workers.start
            )
    finally:
        await queue.close()
    small_done, big_done, requests, pages_before = run
    log = workers.log(0)
    assert small_done.status == "succeeded", log
    # The worker looks at the queue every half second; meanwhile A goes on page by page.
    # Then A hands its slot over at its next document: a few pages at most, not the crawl.
    pages_between = _pages_in(requests[: requests.index("/beta.html")]) - pages_before
    assert pages_between <= 4, requests
    assert _pages_in(requests) < len(names), requests
    assert big_done.status == "succeeded" and big_done.attempts == 1, log
    assert big_done.report is not None and big_done.report.count("added") == len(names)
    # Nothing was fetched twice: A resumed where it had stopped.
    assert sorted(site.requests) == sorted({*site.requests}), site.requests


async def _one_page_within_a_crawl(
    store: JobStore,
    queue: InProcessQueue | RedisQueue,
    site: SlowSite,
    names: list[str],
    started: Callable[[], object] = lambda: None,
) -> tuple[JobRecord, JobRecord, list[str], int]:
    """Queue A's crawl of ``names``; once A has two pages, B's one page. Returns B's and A's
    finished jobs, the site's requests when B finished, and A's pages fetched before B came."""
    big = store.create("alpha", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
    await queue.enqueue(big.id)
    started()
    await asyncio.to_thread(wait_until, lambda: store.find(big.id), _did(2), WORKER_WAIT)
    small = store.create("beta", "url", JobSpec(sources=(site.url("beta.html"),)))
    pages_before = _pages(site)
    await queue.enqueue(small.id)
    small_done = await asyncio.to_thread(wait_until, lambda: store.find(small.id), _finished, 60)
    requests = list(site.requests)
    big_done = await asyncio.to_thread(wait_until, lambda: store.find(big.id), _finished, 120)
    return small_done, big_done, requests, pages_before


def _write_beta_page(folder: Path) -> None:
    (folder / "beta.html").write_text(
        "<html><head><title>Beta</title></head><body><main><h1>Beta</h1>"
        "<p>Beta refunds are paid within fourteen days of the request.</p></main></body></html>",
        encoding="utf-8",
    )


def _did(count: int) -> Callable[[JobRecord], bool]:
    return lambda job: job.progress_done >= count


def _finished(job: JobRecord) -> bool:
    return job.finished


def _pages(site: SlowSite) -> int:
    return _pages_in(list(site.requests))


def _pages_in(requests: list[str]) -> int:
    return sum(1 for path in requests if path.startswith("/page-"))


def test_a_job_past_its_time_bound_fails_for_good_and_is_not_retried(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    assistant = make_assistant(fetch_allow_hosts=("127.0.0.1",), job_max_seconds=0.5)
    names = write_pages(tmp_path / "site", 8, paragraphs=1)
    store = JobStore(assistant.database)
    with SlowSite(tmp_path / "site", delay=0.3) as site:
        job = store.create("docs", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
        record = run_job(assistant, job.id)
    assert record is not None and record.status == "failed"
    assert record.error is not None and "ASSISTANT_JOB_MAX_SECONDS" in record.error
    assert 1 <= record.progress_done < len(names)
    _assert_never_runs_again(assistant, job.id)


def test_a_job_past_its_memory_bound_fails_for_good_and_is_not_retried(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    # Any Python process with a model loaded holds far more than 1 MB.
    assistant = make_assistant(fetch_allow_hosts=("127.0.0.1",), job_max_memory_mb=1)
    names = write_pages(tmp_path / "site", 3, paragraphs=1)
    store = JobStore(assistant.database)
    with SlowSite(tmp_path / "site") as site:
        job = store.create("docs", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
        record = run_job(assistant, job.id)
    assert record is not None and record.status == "failed"
    assert record.error is not None and "ASSISTANT_JOB_MAX_MEMORY_MB" in record.error
    assert record.progress_done == 1
    _assert_never_runs_again(assistant, job.id)


def _assert_never_runs_again(assistant: Assistant, job_id: str) -> None:
    store = JobStore(assistant.database)
    assert job_id not in {job.id for job in store.unfinished()}
    assert run_job(assistant, job_id) is None
    assert store.find(job_id) is not None
    assert store.get("docs", job_id).attempts == 1
