"""Job queues: how a job's id reaches a process that runs it.

- ``InProcessQueue`` (the embedded default, no ASSISTANT_REDIS_URL): threads of the API
  process, given turns by a ``FairScheduler`` (ASSISTANT_JOB_CONCURRENCY jobs at once, one
  assistant's jobs one at a time, round robin between assistants, handed over between
  documents). On start it puts back every job a previous process left ``queued`` or
  ``running``; on close, running jobs stop at their next document and go back to ``queued``.
  It is meant for one API process; several replicas need the Redis queue.
- ``RedisQueue`` (ASSISTANT_REDIS_URL set): jobs go to an arq queue in Redis and ``assistant
  worker`` processes run them (see ``assistant.jobs.worker`` for how a killed worker's job is
  retried). The job's id is arq's job id, so putting a job on the queue twice runs it once.

Either way the job row in the database is the record; the queue only carries ids, so losing
Redis loses no job: ``recover`` puts the unfinished ones back.

::

    queue = open_job_queue(core)
    await queue.recover()
    await queue.enqueue(job.id)
    ...
    await queue.close()
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from redis.exceptions import RedisError

from assistant.core import Assistant
from assistant.database.engine import Database
from assistant.jobs.fairness import FairScheduler
from assistant.jobs.runner import retry_delay, run_job
from assistant.jobs.store import JobRecord, JobStore

__all__ = [
    "FUNCTION_NAME",
    "QUEUE_NAME",
    "InProcessQueue",
    "JobQueue",
    "RedisQueue",
    "open_job_queue",
]

logger = logging.getLogger(__name__)

QUEUE_NAME = "assistant:ingest"
"""The arq queue (a Redis sorted set) that ingestion jobs wait in."""

FUNCTION_NAME = "ingest_job"
"""The worker function that runs one job, by its id."""


@runtime_checkable
class JobQueue(Protocol):
    """Carries job ids to whatever runs them."""

    async def enqueue(self, job_id: str) -> None:
        """Have job ``job_id`` (already stored, ``queued``) run soon."""
        ...

    async def recover(self) -> int:
        """Put back every unfinished job; returns how many (safe to call at any time)."""
        ...

    async def close(self) -> None:
        """Release the queue's threads or connections."""
        ...


class InProcessQueue:
    """Runs jobs on threads of this process, in fair turns between assistants."""

    def __init__(
        self, core: Assistant, *, workers: int | None = None, preempt: bool = True
    ) -> None:
        self._core = core
        self._store = JobStore(core.database)
        self._stop = threading.Event()
        slots = workers or core.settings.job_concurrency
        # Started jobs (running, or paused between documents) hold a thread each; jobs that
        # wait for their first turn hold none.
        self._executor = ThreadPoolExecutor(
            max_workers=8 * slots, thread_name_prefix="assistant-job"
        )
        self.scheduler = FairScheduler(
            slots=slots,
            per_assistant=core.settings.job_concurrency_per_assistant,
            max_started=8 * slots,
            launch=self._executor.submit,
            preempt=preempt,
        )
        # A job is in the scheduler (waiting or running) at most once, however often it is
        # enqueued or recovered.
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()

    async def enqueue(self, job_id: str) -> None:
        """Hand the job to the scheduler (ignored once the queue is closing: the row stays
        ``queued`` and the next process runs it)."""
        job = await asyncio.to_thread(self._store.find, job_id)
        if job is not None and not job.finished:
            self._submit(job_id, job.assistant)

    async def recover(self) -> int:
        """Submit every job left ``queued`` or ``running`` by an earlier process."""
        jobs = await asyncio.to_thread(self._store.unfinished)
        for job in jobs:
            self._submit(job.id, job.assistant)
        if jobs:
            logger.info("put back %d unfinished ingestion job(s)", len(jobs))
        return len(jobs)

    async def close(self) -> None:
        """Stop: queued jobs stay queued, running ones stop at their next document."""
        self._stop.set()
        self.scheduler.close()
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)

    def _submit(self, job_id: str, assistant: str) -> None:
        if self._stop.is_set():
            return
        with self._pending_lock:
            if job_id in self._pending:
                return
            self._pending.add(job_id)
        done = self.scheduler.submit(
            assistant,
            lambda turn: run_job(self._core, job_id, stop=self._stop, turn=turn),
            stop=self._stop,
        )
        done.add_done_callback(lambda future: self._finished(job_id, future))

    def _finished(self, job_id: str, future: Future[JobRecord | None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            # run_job records its own failures; this is the database failing under it.
            logger.error("ingestion job %s could not be run", job_id, exc_info=future.exception())
        # Only now: a job enqueued again while it runs must not be claimed a second time.
        with self._pending_lock:
            self._pending.discard(job_id)
        record = None if future.cancelled() or future.exception() else future.result()
        if record is not None and record.status == "queued" and not self._stop.is_set():
            # A store outage stopped it (a stopping queue leaves its jobs for the next start).
            timer = threading.Timer(
                retry_delay(record.attempts), self._submit, (job_id, record.assistant)
            )
            timer.daemon = True
            timer.start()


class RedisQueue:
    """Puts jobs on the arq queue in Redis for ``assistant.jobs.worker`` processes."""

    def __init__(self, database: Database, redis_url: str) -> None:
        self._store = JobStore(database)
        # One quick retry: a request should not hang on a Redis that is down.
        self._redis_settings = dataclasses.replace(
            RedisSettings.from_dsn(redis_url), conn_retries=1, conn_timeout=2
        )
        self._pool: ArqRedis | None = None
        self._pool_lock = asyncio.Lock()

    async def enqueue(self, job_id: str) -> None:
        """Add the job to the Redis queue (a no-op if it is there already).

        When Redis cannot be reached the job stays ``queued`` in the database and a worker
        puts it on the queue once Redis is back (workers recover unfinished jobs every
        minute), so the caller's job is never lost.
        """
        try:
            await self._put(job_id)
        except (RedisError, OSError) as exc:
            logger.warning("job %s stays queued until Redis is reachable: %s", job_id, exc)

    async def recover(self) -> int:
        """Enqueue every unfinished job again; those still on the queue are left as they are,
        so only jobs lost from Redis (flushed, or never enqueued) are added. Returns how many
        were put; when Redis cannot be reached, stops and leaves the rest for a later round.
        """
        jobs = await asyncio.to_thread(self._store.unfinished)
        put = 0
        try:
            for job in jobs:
                await self._put(job.id)
                put += 1
        except (RedisError, OSError) as exc:
            logger.warning("unfinished jobs wait until Redis is reachable: %s", exc)
        return put

    async def _put(self, job_id: str) -> None:
        pool = await self._connection()
        await pool.enqueue_job(FUNCTION_NAME, job_id, _job_id=job_id, _queue_name=QUEUE_NAME)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def _connection(self) -> ArqRedis:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await create_pool(self._redis_settings, default_queue_name=QUEUE_NAME)
            return self._pool


def open_job_queue(core: Assistant) -> JobQueue:
    """The queue the settings ask for: Redis when ASSISTANT_REDIS_URL is set, else threads of
    this process."""
    redis_url = core.settings.redis_url
    if redis_url is not None:
        return RedisQueue(core.database, redis_url.get_secret_value())
    return InProcessQueue(core)
