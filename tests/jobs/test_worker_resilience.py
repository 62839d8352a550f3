"""The worker's queue handling under faults, on a real Redis: it outlives a Redis restart (its
poll waits for Redis instead of ending the process, as arq's own poll did, stopping every worker
at once), and a job whose lease lapsed while it runs is not started a second time in the same
worker."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
from arq import create_pool, func
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix
from arq.typing import WorkerCoroutine

from assistant.jobs.worker import _LeasedWorker
from tests.support.servers import free_loopback_port, start_redis, stop

QUEUE = "test:outage"


async def _worker(
    tmp_path: Path, function: WorkerCoroutine, name: str
) -> tuple[_LeasedWorker, subprocess.Popen[bytes], int]:
    """A leased worker of ``function`` (as ``name``) on its own new redis-server, the
    server's process and port."""
    port = free_loopback_port()
    settings = RedisSettings(port=port, conn_timeout=1, conn_retries=0)
    redis_server = start_redis(port, tmp_path / "redis.log")
    worker = _LeasedWorker(
        functions=[func(function, name=name)],
        queue_name=QUEUE,
        redis_settings=settings,
        poll_delay=0.05,
        keep_result=60,
        lease_seconds=2,
    )
    worker._pool = await create_pool(settings, default_queue_name=QUEUE)
    return worker, redis_server, port


async def _echo(ctx: dict[str, Any], value: str) -> str:
    del ctx
    return value


@pytest.mark.integration
async def test_the_poll_waits_out_a_redis_outage_and_then_runs_jobs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    worker, redis_server, port = await _worker(tmp_path, _echo, "echo")
    try:
        await worker._poll_iteration()
        stop(redis_server)
        with caplog.at_level(logging.INFO, logger="assistant.jobs.worker"):
            for _ in range(3):
                await worker._poll_iteration()  # raised ConnectionError before
            unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
            assert len(unreachable) == 1, "the outage is logged once, not at every poll"
            redis_server = start_redis(port, tmp_path / "redis.log")
            job = await worker.pool.enqueue_job("echo", "back", _queue_name=QUEUE)
            assert job is not None
            await worker._poll_iteration()
            assert any("answers again" in r.getMessage() for r in caplog.records)
        await asyncio.wait_for(asyncio.gather(*worker.tasks.values()), timeout=10)
        assert await job.result(timeout=5) == "back"
    finally:
        # Not worker.close(): arq calls redis-py's deprecated close() there.
        await worker.pool.aclose()
        stop(redis_server)


@pytest.mark.integration
async def test_a_job_whose_lease_lapsed_is_not_started_again_by_the_worker_running_it(
    tmp_path: Path,
) -> None:
    starts: list[str] = []
    release = asyncio.Event()

    async def hold(ctx: dict[str, Any], value: str) -> str:
        del ctx
        starts.append(value)
        await release.wait()
        return value

    worker, redis_server, _ = await _worker(tmp_path, hold, "hold")
    try:
        job = await worker.pool.enqueue_job("hold", "once", _queue_name=QUEUE)
        assert job is not None
        await worker._poll_iteration()
        await asyncio.sleep(0.1)
        assert starts == ["once"]
        # The lease lapses (a stalled event loop), the job still running here.
        await worker.pool.delete(in_progress_key_prefix + job.job_id)
        await worker._poll_iteration()
        await asyncio.sleep(0.1)
        assert starts == ["once"], "the job was started twice in one worker"
        release.set()
        await asyncio.wait_for(asyncio.gather(*worker.tasks.values()), timeout=10)
        assert await job.result(timeout=5) == "once"
    finally:
        release.set()
        await worker.pool.aclose()
        stop(redis_server)
