"""``assistant worker``: runs ingestion jobs from the Redis queue, in a process of its own.

The queue is an arq queue (``assistant.jobs.queue.QUEUE_NAME``). A job stays in it until a
worker has run it to its end, so a job survives the API's restart and the worker's.

How a worker that dies mid-job (SIGKILL, out of memory, a lost machine) is recovered from:
arq marks a job it starts with an in-progress key that expires; while the key lives no other
worker starts the job. arq sets that key for the job's whole timeout, which for ingestion
would mean hours, so here the key is a short *lease* (``ASSISTANT_JOB_LEASE_SECONDS``,
default 60) that the running job renews every third of it. When a worker dies its lease
lapses and any running worker starts the job again within the lease plus half a second (the
poll delay). The new attempt re-ingests idempotently: documents the dead worker stored are
unchanged and skipped, the rest are added, so no chunk is lost or duplicated. After
``ASSISTANT_JOB_MAX_ATTEMPTS`` interrupted attempts the job is marked failed.

A worker stopped with SIGTERM or SIGINT stops its jobs at their next document and puts them
back on the queue (arq retries cancelled jobs); that does not count as an interrupted attempt.
Jobs of one assistant run at most ASSISTANT_JOB_CONCURRENCY_PER_ASSISTANT (default 1) at a
time across all workers (that many locks in Redis, each a lease); a job that finds them all
held waits on the queue. Within a worker, jobs take fair turns (``assistant.jobs.fairness``):
the worker takes up to eight jobs per slot from the queue, runs ASSISTANT_JOB_CONCURRENCY of
them at once, round robin between assistants, and a running job hands its slot to another
assistant's waiting job between documents, so one assistant's long crawl delays another's
one-page ingest by one document, not by the crawl. A job that passes its time or memory
bound fails for good and is not retried. Every minute, and at start,
a worker puts back on the queue any unfinished job the queue lost (Redis flushed or down when
the job was created); the job id is the queue's key, so that never runs a job twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from arq import ArqRedis, Retry, Worker, func
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix
from redis.exceptions import LockError, RedisError

from assistant.core import Assistant
from assistant.errors import ConfigError
from assistant.jobs.fairness import FairScheduler
from assistant.jobs.queue import FUNCTION_NAME, QUEUE_NAME, RedisQueue
from assistant.jobs.runner import retry_delay, run_job
from assistant.jobs.store import JobStore

__all__ = ["JOB_TIMEOUT_SECONDS", "ingest_job", "run_worker"]

logger = logging.getLogger(__name__)

JOB_TIMEOUT_SECONDS = 7 * 24 * 3600
"""arq's limit on one run of a job, a backstop far past ASSISTANT_JOB_MAX_SECONDS (which the
job enforces itself, failing for good): the lease, not this timeout, detects a dead worker."""

_STARTED_PER_SLOT = 8  # jobs a worker takes from the queue per slot, to take turns with

# Every start of a job counts as one of arq's tries, including the deferrals while another
# worker holds the assistant's lock; the limit that matters is ASSISTANT_JOB_MAX_ATTEMPTS,
# enforced on the job row, so arq's own is set out of reach.
_ARQ_MAX_TRIES = 10_000
_LOCK_PREFIX = "assistant:ingest-lock:"
_RECOVER_INTERVAL_SECONDS = 60.0


class _LeasedWorker(Worker):
    """arq's worker with a short in-progress lease (renewed by the running job)."""

    def __init__(self, *args: Any, lease_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # arq derives this from the timeout (timeout + 10 s); a dead worker's job would wait
        # that long before another worker may start it.
        self.in_progress_timeout_s = lease_seconds
        self._redis_down = False

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's start, less the jobs this worker is running already.

        A job whose lease lapsed while it runs here (the event loop stalled past the lease on
        a starved machine) is offered by the queue again; arq would start it a second time in
        this very process, running the job twice at once and failing the first run's
        bookkeeping with a ``KeyError``.
        """
        await super().start_jobs(
            [job_id for job_id in job_ids if job_id.decode() not in self.tasks]
        )

    async def _poll_iteration(self) -> None:
        """arq's poll, surviving a Redis outage.

        arq lets a connection error out of its poll loop, which ends the worker: a Redis
        restart would stop every worker at once. Here the outage is logged once and the poll
        repeats every poll delay until Redis answers; running jobs go on meanwhile (their
        rows are the record; their lease renewals log and retry). Redis comes back empty
        when it kept nothing, so the periodic recovery puts unfinished jobs back on the queue.
        """
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:
            if not self._redis_down:
                self._redis_down = True
                logger.warning("Redis is unreachable; polling again until it answers: %s", exc)
            return
        if self._redis_down:
            self._redis_down = False
            logger.info("Redis answers again")


async def ingest_job(ctx: dict[str, Any], job_id: str) -> str:
    """arq function: run job ``job_id``, renewing its lease; returns its final status.

    Raises ``arq.Retry`` (run again later) when another worker is ingesting into the same
    assistant's knowledge base, or when a vector store outage stopped the job.
    """
    core: Assistant = ctx["core"]
    redis: ArqRedis = ctx["redis"]
    lease: float = ctx["lease_seconds"]
    scheduler: FairScheduler = ctx["scheduler"]
    job = await asyncio.to_thread(JobStore(core.database).find, job_id)
    if job is None or job.finished:
        return "skipped"
    lock = await _acquire_assistant_lock(
        redis, job.assistant, core.settings.job_concurrency_per_assistant, lease
    )
    if lock is None:
        logger.info("job %s waits: assistant %r is being ingested elsewhere", job_id, job.assistant)
        raise Retry(defer=lease)
    stop = threading.Event()
    work = scheduler.submit(
        job.assistant, lambda turn: run_job(core, job_id, stop=stop, turn=turn), stop=stop
    )
    renewal = asyncio.create_task(_renew(redis, job_id, lock, lease))
    try:
        record = await asyncio.shield(asyncio.wrap_future(work))
    except asyncio.CancelledError:
        # The worker is stopping: a job that has not started leaves the line as it is
        # (queued); a started one reaches its next document and goes back to queued. Then arq
        # puts it back on the queue.
        stop.set()
        if not scheduler.withdraw(work):
            await asyncio.wait([asyncio.wrap_future(work)])
        raise
    finally:
        renewal.cancel()
        with contextlib.suppress(LockError, RedisError):
            await lock.release()
    if record is not None and record.status == "queued":
        # A store outage stopped it: arq keeps it on the queue and runs it again later.
        raise Retry(defer=retry_delay(record.attempts))
    return record.status if record is not None else "skipped"


async def _acquire_assistant_lock(
    redis: ArqRedis, assistant: str, holders: int, lease: float
) -> Any | None:
    """One of the ``holders`` locks of ``assistant`` (a semaphore made of leased locks), or
    ``None`` when every one is held."""
    for number in range(holders):
        name = _LOCK_PREFIX + assistant if number == 0 else f"{_LOCK_PREFIX}{assistant}:{number}"
        lock = redis.lock(name, timeout=lease)
        if await lock.acquire(blocking=False):
            return lock
    return None


async def _renew(redis: ArqRedis, job_id: str, lock: Any, lease: float) -> None:
    """Extend the job's in-progress key and the assistant's lock every third of the lease."""
    while True:
        await asyncio.sleep(lease / 3)
        try:
            # SET, not PEXPIRE: after a stall past the lease the key is gone, and only
            # setting it again keeps other workers from starting the job meanwhile.
            await redis.set(in_progress_key_prefix + job_id, b"1", px=int(lease * 1000))
            await lock.reacquire()
        except (LockError, RedisError) as exc:
            logger.warning("could not renew the lease of job %s: %s", job_id, exc)


async def _recover_periodically(queue: RedisQueue) -> None:
    while True:
        try:
            await queue.recover()
        except Exception as exc:
            # Recovery is a safety net; a failed round is retried at the next one.
            logger.warning("could not put unfinished jobs back on the queue: %s", exc)
        await asyncio.sleep(_RECOVER_INTERVAL_SECONDS)


def run_worker(core: Assistant, *, concurrency: int | None = None, burst: bool = False) -> None:
    """Run jobs from the Redis queue until SIGTERM/SIGINT (or, with ``burst``, until the
    queue is empty).

    Raises:
        ConfigError: ASSISTANT_REDIS_URL is not set.

    >>> run_worker(Assistant.from_settings())  # doctest: +SKIP
    """
    asyncio.run(_serve(core, concurrency, burst))


async def _serve(core: Assistant, concurrency: int | None, burst: bool) -> None:
    settings = core.settings
    if settings.redis_url is None:
        raise ConfigError(
            "the worker takes its jobs from Redis: set ASSISTANT_REDIS_URL (without it, "
            "`assistant serve` runs ingestion jobs itself)"
        )
    redis_url = settings.redis_url.get_secret_value()
    lease = settings.job_lease_seconds
    recovery = RedisQueue(core.database, redis_url)
    recovering: list[asyncio.Task[None]] = []

    async def on_startup(_ctx: dict[str, Any]) -> None:
        recovering.append(asyncio.create_task(_recover_periodically(recovery)))

    async def on_shutdown(_ctx: dict[str, Any]) -> None:
        for task in recovering:
            task.cancel()
        await recovery.close()

    slots = concurrency or settings.job_concurrency
    executor = ThreadPoolExecutor(
        max_workers=slots * _STARTED_PER_SLOT, thread_name_prefix="assistant-job"
    )
    scheduler = FairScheduler(
        slots=slots,
        per_assistant=settings.job_concurrency_per_assistant,
        max_started=slots * _STARTED_PER_SLOT,
        launch=executor.submit,
    )
    worker = _LeasedWorker(
        functions=[func(ingest_job, name=FUNCTION_NAME, max_tries=_ARQ_MAX_TRIES)],
        queue_name=QUEUE_NAME,
        redis_settings=RedisSettings.from_dsn(redis_url),
        max_jobs=slots * _STARTED_PER_SLOT,
        job_timeout=max(JOB_TIMEOUT_SECONDS, settings.job_max_seconds * 2),
        # The job row is the record of the outcome; arq's copy would only be stale.
        keep_result=0,
        poll_delay=0.5,
        burst=burst,
        ctx={"core": core, "lease_seconds": lease, "scheduler": scheduler},
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        lease_seconds=lease,
    )
    logger.info("worker started: queue %s, lease %.0f s", QUEUE_NAME, lease)
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        logger.info("worker stopping")
    finally:
        # Closing writes to Redis, which may be the reason we stop.
        with contextlib.suppress(RedisError, OSError):
            await worker.close()
        scheduler.close()
        executor.shutdown(wait=False, cancel_futures=True)
