"""Background ingestion jobs: stored in the database, carried by a queue, run by ``run_job``.

``JobStore`` keeps each job's row (what to ingest, status, progress, attempts, report);
``open_job_queue`` picks the queue (threads of the API process, or Redis and ``assistant
worker`` when ASSISTANT_REDIS_URL is set); ``run_job`` runs one job wherever it lands.

The value types (``JobRecord``, ``JobSpec``, ``JobKind``, ``JobStatus``) live in the light
``assistant.jobs.records``; the store, queues and runner are imported on first use of their
names, so reading a job record loads neither SQLAlchemy nor Redis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from assistant.jobs.records import JobKind, JobRecord, JobSpec, JobStatus

if TYPE_CHECKING:
    from assistant.jobs.queue import InProcessQueue, JobQueue, RedisQueue, open_job_queue
    from assistant.jobs.runner import UPLOAD_SCHEME, run_job, upload_dir
    from assistant.jobs.store import JobStore

__all__ = [
    "UPLOAD_SCHEME",
    "InProcessQueue",
    "JobKind",
    "JobQueue",
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "JobStore",
    "RedisQueue",
    "open_job_queue",
    "run_job",
    "upload_dir",
]

_LAZY = {
    "InProcessQueue": "assistant.jobs.queue",
    "JobQueue": "assistant.jobs.queue",
    "RedisQueue": "assistant.jobs.queue",
    "open_job_queue": "assistant.jobs.queue",
    "UPLOAD_SCHEME": "assistant.jobs.runner",
    "run_job": "assistant.jobs.runner",
    "upload_dir": "assistant.jobs.runner",
    "JobStore": "assistant.jobs.store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
