"""Background ingestion jobs: stored in the database, carried by a queue, run by ``run_job``.

``JobStore`` keeps each job's row (what to ingest, status, progress, attempts, report);
``open_job_queue`` picks the queue (threads of the API process, or Redis and ``assistant
worker`` when ASSISTANT_REDIS_URL is set); ``run_job`` runs one job wherever it lands.
"""

from assistant.jobs.queue import InProcessQueue, JobQueue, RedisQueue, open_job_queue
from assistant.jobs.runner import UPLOAD_SCHEME, run_job, upload_dir
from assistant.jobs.store import JobKind, JobRecord, JobSpec, JobStatus, JobStore

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
