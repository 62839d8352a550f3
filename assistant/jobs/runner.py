"""Running one ingestion job: claim its row, ingest what its spec names, record the outcome.

``run_job`` is the same wherever it runs (a thread of the API process or an ``assistant
worker``). Running a job again is safe: ingestion skips documents whose content is unchanged
and replaces exactly the chunks of changed ones, so a job interrupted at any point and run
again ends with the same chunks as one clean run.

A job cancelled through its row (``JobStore.cancel``) stops at its next document, wherever
it runs: the runner reads the row's status after every document. What it ingested before
stays, as it would after any interruption.

Between documents a job also hands its turn to another assistant's waiting job (``turn``, from
``assistant.jobs.fairness``) and checks its bounds: a job that has run longer than
ASSISTANT_JOB_MAX_SECONDS (waits for a turn not counted), or whose process holds more memory
than ASSISTANT_JOB_MAX_MEMORY_MB, fails for good with the reason; it is never retried, since
running it again would only hit the same bound.

Uploaded files are kept in ``<data dir>/uploads/<job id>/`` until their job has finished, then
removed; they are stored under the stable source name ``upload://<file name>``, so uploading a
new version of a file replaces the old one.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.core import Assistant
from assistant.errors import AssistantError, ConnectorError, StoreError, TooLargeError
from assistant.jobs.fairness import Turn
from assistant.jobs.store import JobRecord, JobStore
from assistant.knowledge.ingest import DocumentOutcome, IngestReport, ProgressEvent
from connectors.document import LoadResult, SourceFailure
from connectors.files import parse_bytes
from connectors.limits import DEFAULT_LIMITS, ExtractionLimits
from connectors.sources import is_url

__all__ = [
    "UPLOAD_SCHEME",
    "JobCancelled",
    "JobInterrupted",
    "JobOverLimit",
    "UploadConnector",
    "retry_delay",
    "run_job",
    "upload_dir",
]

logger = logging.getLogger(__name__)

UPLOAD_SCHEME = "upload://"
"""Prefix of the source name of an uploaded file: ``upload://faq.md``."""

_SITEMAP_HINT = "sitemap"

RETRY_SECONDS = 10.0
"""How long a job stopped by a vector store outage waits, per run so far, before running
again."""


def retry_delay(attempts: int) -> float:
    """Seconds before a job that a store outage stopped after ``attempts`` runs runs again
    (10, 20, ... : a Chroma restart is given half a minute over three runs)."""
    return RETRY_SECONDS * max(1, attempts)


class JobInterrupted(Exception):
    """Raised inside a running job when its process is stopping; the job goes back to queued."""


class JobCancelled(Exception):
    """Raised inside a running job whose row was cancelled meanwhile; the job stays cancelled."""


class JobOverLimit(Exception):
    """Raised inside a running job past its time or memory bound; the job fails for good."""


@dataclass(frozen=True, slots=True)
class JobBounds:
    """The most one run of a job may take: seconds of running and the process's resident
    memory in MB (0: unbounded)."""

    max_seconds: float = 6 * 3600.0
    max_memory_mb: int = 0

    def check(self, running_seconds: float) -> None:
        """Raise ``JobOverLimit`` when either bound is passed."""
        if running_seconds > self.max_seconds:
            raise JobOverLimit(
                f"the job ran for over {self.max_seconds:.0f} s (ASSISTANT_JOB_MAX_SECONDS); "
                "split its sources into smaller jobs or raise the limit"
            )
        if self.max_memory_mb:
            resident = resident_memory_mb()
            if resident > self.max_memory_mb:
                raise JobOverLimit(
                    f"the process held {resident:.0f} MB, over the {self.max_memory_mb} MB "
                    "limit (ASSISTANT_JOB_MAX_MEMORY_MB); lower ASSISTANT_MAX_DOCUMENT_CHARS "
                    "or raise the limit"
                )


def resident_memory_mb() -> float:
    """This process's resident memory now, in MB (0 where ``/proc`` cannot tell)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def upload_dir(data_dir: Path, job_id: str) -> Path:
    """The folder that holds job ``job_id``'s uploaded files until it finishes."""
    return data_dir / "uploads" / job_id


class UploadConnector:
    """One uploaded file, read with the file connector's parsers, named ``upload://<name>``."""

    def __init__(
        self,
        path: Path,
        name: str,
        *,
        max_bytes: int,
        limits: ExtractionLimits = DEFAULT_LIMITS,
    ) -> None:
        self.source = UPLOAD_SCHEME + name
        self.complete = False
        self._path = path
        self._name = name
        self._max_bytes = max_bytes
        self._limits = limits

    def load(self) -> Iterator[LoadResult]:
        """Yield the file's document, or a ``SourceFailure`` saying why it cannot be read."""
        try:
            if not self._path.is_file():
                raise ConnectorError(self.source, "the uploaded file is gone; upload it again")
            data = self._path.read_bytes()
            if len(data) > self._max_bytes:
                raise TooLargeError(self.source, f"over the {self._max_bytes}-byte limit")
            yield parse_bytes(data, self.source, name_hint=self._name, limits=self._limits)
        except ConnectorError as failure:
            yield SourceFailure(self.source, failure.reason, failure)
        self.complete = True


class _Progress:
    """The ingestion progress callback: counts documents, writes them to the row at most
    every ``interval`` seconds, stops the job when ``stop`` is set, ends it once its row is no
    longer ``running`` (cancelled, or deleted with its assistant) or it passes its bounds, and
    hands its turn over between documents."""

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        total: int | None,
        stop: threading.Event | None,
        interval: float,
        *,
        turn: Turn | None = None,
        bounds: JobBounds | None = None,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._total = total
        self._stop = stop
        self._interval = interval
        self._turn = turn
        self._bounds = bounds or JobBounds()
        self._started = time.monotonic()
        self._last_write = 0.0
        self.done = 0

    def __call__(self, event: ProgressEvent) -> None:
        if self._stop is not None and self._stop.is_set():
            raise JobInterrupted(self._job_id)
        if event.kind in ("loaded", "failed"):
            self.done += event.count
            # One primary-key read per document, small beside fetching and embedding it.
            if not self._still_running():
                raise JobCancelled(self._job_id)
            paused = self._turn.paused_seconds if self._turn is not None else 0.0
            self._bounds.check(time.monotonic() - self._started - paused)
            if self._turn is not None and not self._turn.between_documents():
                raise JobInterrupted(self._job_id)  # stopped while it waited for its turn
        now = time.monotonic()
        if now - self._last_write >= self._interval:
            self._last_write = now
            self.write()

    def _still_running(self) -> bool:
        try:
            return self._store.is_running(self._job_id)
        except AssistantError as exc:
            # A database hiccup must not end the job; the next document checks again.
            logger.warning("could not read the status of job %s: %s", self._job_id, exc)
            return True

    def write(self) -> None:
        """Write the count now; a failed write costs only the progress display."""
        try:
            self._store.progress(self._job_id, self.done, self._total)
        except AssistantError as exc:
            logger.warning("could not record the progress of job %s: %s", self._job_id, exc)


def run_job(
    core: Assistant,
    job_id: str,
    *,
    stop: threading.Event | None = None,
    turn: Turn | None = None,
    progress_interval: float = 0.5,
) -> JobRecord | None:
    """Run job ``job_id`` to its end and return its final record.

    Returns ``None`` when the job is not to run (finished already, unknown, or abandoned by
    too many interrupted attempts, which marks it failed). When ``stop`` is set the job stops
    at its next document, goes back to ``queued`` and its files are kept for the next run;
    when its row is cancelled meanwhile it stops at its next document and stays cancelled.
    With a ``turn`` the job lets other assistants' jobs go between its documents. Jobs of one
    assistant are kept from running at once by the queue that starts them (a ``FairScheduler``
    and, across workers, a lock in Redis), not here. Errors never escape: they are recorded on
    the job.
    """
    store = JobStore(core.database)
    job = store.mark_running(job_id, max_attempts=core.settings.job_max_attempts)
    if job is None:
        ended = store.find(job_id)
        if ended is None or ended.finished:
            # Given up, deleted with its assistant, or ended by a process that died before
            # cleaning up: its uploaded files (if any) have no further use.
            shutil.rmtree(upload_dir(core.settings.data_dir, job_id), ignore_errors=True)
        return None
    bounds = JobBounds(core.settings.job_max_seconds, core.settings.job_max_memory_mb)
    progress = _Progress(
        store, job_id, _expected_total(job), stop, progress_interval, turn=turn, bounds=bounds
    )
    progress.write()
    try:
        report = _execute(core, store, job, progress)
    except JobInterrupted:
        logger.info("job %s stopped with its process; it will run again", job_id)
        store.requeue(job_id)
        return store.find(job_id)
    except JobCancelled:
        logger.info("job %s was cancelled; it stopped after %d document(s)", job_id, progress.done)
        progress.write()
    except JobOverLimit as exc:
        logger.warning(
            "job %s failed for good after %d document(s): %s", job_id, progress.done, exc
        )
        progress.write()
        store.fail(job_id, str(exc))
    except StoreError as exc:
        # Chroma restarting or out of reach: the job goes back to the queue and runs again
        # (re-ingesting idempotently: stored documents are skipped), up to
        # ASSISTANT_JOB_MAX_ATTEMPTS runs in all, instead of failing for good on a blip.
        if job.attempts >= core.settings.job_max_attempts:
            logger.warning("job %s failed after %d runs: %s", job_id, job.attempts, exc)
            store.fail(job_id, f"{exc} (after {job.attempts} runs)")
        else:
            delay = retry_delay(job.attempts)
            logger.warning("job %s stopped: %s; it runs again in %.0f s", job_id, exc, delay)
            store.retry_later(job_id, f"{exc}; it runs again in {delay:.0f} s")
            return store.find(job_id)
    except AssistantError as exc:
        logger.warning("job %s failed: %s", job_id, exc)
        store.fail(job_id, str(exc))
    except Exception as exc:
        # The row must never stay "running" because of a bug; the traceback goes to the log.
        logger.exception("job %s failed unexpectedly", job_id)
        store.fail(job_id, f"unexpected failure ({type(exc).__name__}); see the server log")
    else:
        progress.write()
        failures = report.failures
        if failures and len(failures) == len(report.outcomes):
            first = failures[0]
            store.fail(job_id, f"nothing could be ingested: {first.url}: {first.reason}", report)
        else:
            store.finish(job_id, report)
    if job.kind == "upload":
        shutil.rmtree(upload_dir(core.settings.data_dir, job_id), ignore_errors=True)
    return store.find(job_id)


def _expected_total(job: JobRecord) -> int | None:
    if job.kind == "upload":
        return len(job.spec.files)
    if job.kind == "url":
        return len(job.spec.sources)
    return None  # a crawl, sitemap or resync finds out how many pages there are as it goes


def _execute(core: Assistant, store: JobStore, job: JobRecord, progress: _Progress) -> IngestReport:
    spec = job.spec
    if job.kind == "upload":
        folder = upload_dir(core.settings.data_dir, job.id)
        connectors = [
            UploadConnector(
                folder / name,
                name,
                max_bytes=core.settings.max_file_bytes,
                limits=core.settings.extraction_limits(),
            )
            for name in spec.files
        ]
        return core.ingest_connectors(connectors, kb=job.assistant, progress=progress)
    if job.kind == "resync":
        return _resync(core, store, job.assistant, progress)
    return core.ingest(
        list(spec.sources),
        kb=job.assistant,
        crawl=spec.crawl,
        max_pages=spec.max_pages,
        max_depth=spec.max_depth,
        progress=progress,
    )


def _resync(core: Assistant, store: JobStore, assistant: str, progress: _Progress) -> IngestReport:
    """Ingest every known source of ``assistant`` again, each the way it was first added.

    How a URL was added (a page, a sitemap or a crawl, with its limits) comes from the
    assistant's earlier jobs; a source added otherwise (the command line) is taken for a crawl
    when it holds pages other than itself. Uploaded files have nothing to fetch again: their
    documents are reported unchanged.
    """
    added_as: dict[str, tuple[bool, int | None, int]] = {}
    for earlier in reversed(store.list_jobs(assistant, limit=10_000)):
        if earlier.kind in ("url", "sitemap", "crawl") and earlier.status == "succeeded":
            for source in earlier.spec.sources:
                added_as[source] = (
                    earlier.spec.crawl,
                    earlier.spec.max_pages,
                    earlier.spec.max_depth,
                )
    documents: dict[str, list[str]] = {}
    for state in core.documents(kb=assistant):
        documents.setdefault(state.source, []).append(state.url)
    report = IngestReport()
    groups: dict[tuple[bool, int | None, int], list[str]] = {}
    for source, urls in sorted(documents.items()):
        if source.startswith(UPLOAD_SCHEME):
            report.outcomes.extend(
                DocumentOutcome(
                    url, "unchanged", reason="an uploaded file; upload it again to change it"
                )
                for url in urls
            )
            continue
        crawled = is_url(source) and _SITEMAP_HINT not in source.lower() and urls != [source]
        groups.setdefault(added_as.get(source, (crawled, None, 3)), []).append(source)
    for (crawl, max_pages, max_depth), sources in groups.items():
        part = core.ingest(
            sources,
            kb=assistant,
            crawl=crawl,
            max_pages=max_pages,
            max_depth=max_depth,
            progress=progress,
        )
        report.outcomes.extend(part.outcomes)
        report.chunks_embedded += part.chunks_embedded
        report.seconds += part.seconds
        report.incomplete_sources.extend(part.incomplete_sources)
    return report
