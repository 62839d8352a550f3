"""Ingestion jobs in the application database: the record a job's life is read from.

The row is the job's truth, whichever queue carries it: a job survives a restart of the API
or of a worker because its row says what to do (``spec``) and how far it got (``status``,
``attempts``). Every read by an API caller is scoped by the assistant's name, so one
assistant never sees another's jobs.

::

    store = JobStore(database)
    job = store.create("docs", "crawl", JobSpec(sources=("https://example.com/",), crawl=True))
    store.mark_running(job.id, max_attempts=3)
    store.finish(job.id, report)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import delete, select, update

from assistant.database.engine import Database
from assistant.database.models import JobRow, new_id, utcnow
from assistant.errors import ConflictError, NotFoundError
from assistant.jobs.records import FINISHED, JobKind, JobRecord, JobSpec, JobStatus
from assistant.knowledge.reports import DocumentOutcome, IngestReport

__all__ = ["JobKind", "JobRecord", "JobSpec", "JobStatus", "JobStore"]


def report_to_json(report: IngestReport) -> dict[str, Any]:
    """An ingestion report as stored in the job row."""
    return {
        "outcomes": [asdict(outcome) for outcome in report.outcomes],
        "chunks_embedded": report.chunks_embedded,
        "seconds": report.seconds,
        "incomplete_sources": list(report.incomplete_sources),
    }


def report_from_json(data: Mapping[str, Any]) -> IngestReport | None:
    """The report stored by ``report_to_json``; ``None`` for a job without one yet."""
    if not data:
        return None
    return IngestReport(
        outcomes=[DocumentOutcome(**outcome) for outcome in data.get("outcomes") or ()],
        chunks_embedded=int(data.get("chunks_embedded", 0)),
        seconds=float(data.get("seconds", 0.0)),
        incomplete_sources=[str(source) for source in data.get("incomplete_sources") or ()],
    )


def _record(row: JobRow) -> JobRecord:
    return JobRecord(
        id=row.id,
        assistant=row.assistant,
        kind=cast(JobKind, row.kind),
        spec=JobSpec.from_json(row.spec),
        status=cast(JobStatus, row.status),
        progress_done=row.progress_done,
        progress_total=row.progress_total,
        report=report_from_json(row.report),
        error=row.error,
        attempts=row.attempts,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


class JobStore:
    """Create, claim, advance and finish ingestion jobs kept in ``JobRow``."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def create(
        self, assistant: str, kind: JobKind, spec: JobSpec, *, job_id: str | None = None
    ) -> JobRecord:
        """Record a new ``queued`` job (``job_id`` when the caller needs it in advance)."""
        row = JobRow(
            id=job_id or new_id(),
            assistant=assistant,
            kind=kind,
            spec=spec.to_json(),
            status="queued",
            progress_done=0,
            report={},
            attempts=0,
            created_at=utcnow(),
        )
        with self._database.session() as session:
            session.add(row)
            session.flush()
            return _record(row)

    def get(self, assistant: str, job_id: str) -> JobRecord:
        """Assistant ``assistant``'s job ``job_id``.

        Raises:
            NotFoundError: no such job, or it belongs to another assistant.
        """
        with self._database.session() as session:
            row = session.get(JobRow, job_id)
            if row is None or row.assistant != assistant:
                raise NotFoundError(f"assistant {assistant!r} has no job {job_id!r}")
            return _record(row)

    def find(self, job_id: str) -> JobRecord | None:
        """Job ``job_id`` whoever it belongs to (for the runners), or ``None``."""
        with self._database.session() as session:
            row = session.get(JobRow, job_id)
            return _record(row) if row is not None else None

    def list_jobs(self, assistant: str, *, limit: int = 50, offset: int = 0) -> list[JobRecord]:
        """Assistant ``assistant``'s jobs, newest first."""
        with self._database.session() as session:
            rows = session.scalars(
                select(JobRow)
                .where(JobRow.assistant == assistant)
                .order_by(JobRow.created_at.desc(), JobRow.id)
                .limit(limit)
                .offset(offset)
            )
            return [_record(row) for row in rows]

    def unfinished(self) -> list[JobRecord]:
        """Every ``queued`` or ``running`` job of every assistant, oldest first: the jobs to
        put back on a queue after a restart."""
        with self._database.session() as session:
            rows = session.scalars(
                select(JobRow)
                .where(JobRow.status.in_(("queued", "running")))
                .order_by(JobRow.created_at, JobRow.id)
            )
            return [_record(row) for row in rows]

    def mark_running(self, job_id: str, *, max_attempts: int) -> JobRecord | None:
        """Claim job ``job_id`` for a run: ``running``, one more attempt, progress reset.

        Returns ``None`` when the job must not run: it does not exist, it has finished, or it
        was left ``running`` by ``max_attempts`` attempts that each stopped mid-job (the
        process died), in which case it is marked failed instead of being tried forever.
        """
        with self._database.session() as session:
            row = session.get(JobRow, job_id, with_for_update=True)
            if row is None or row.status in FINISHED:
                return None
            if row.status == "running" and row.attempts >= max_attempts:
                row.status = "failed"
                row.error = (
                    f"the job was interrupted {row.attempts} times (its process stopped "
                    "mid-job); check the worker's log and memory, then start it again"
                )
                row.finished_at = utcnow()
                return None
            row.status = "running"
            row.attempts += 1
            row.progress_done = 0
            row.error = None
            row.started_at = utcnow()
            session.flush()
            return _record(row)

    def cancel(self, assistant: str, job_id: str) -> JobRecord:
        """Cancel assistant ``assistant``'s job ``job_id`` (``queued`` or ``running``).

        A queued job never starts; a running one stops at its next document, keeping what
        it has ingested so far.

        Raises:
            NotFoundError: no such job, or it belongs to another assistant.
            ConflictError: the job has finished already.
        """
        with self._database.session() as session:
            row = session.get(JobRow, job_id, with_for_update=True)
            if row is None or row.assistant != assistant:
                raise NotFoundError(f"assistant {assistant!r} has no job {job_id!r}")
            if row.status in FINISHED:
                raise ConflictError(f"job {job_id!r} has {row.status} already")
            row.status = "cancelled"
            row.finished_at = utcnow()
            session.flush()
            return _record(row)

    def is_running(self, job_id: str) -> bool:
        """Whether job ``job_id`` is still ``running`` (not cancelled or deleted meanwhile)."""
        with self._database.session() as session:
            status = session.scalar(select(JobRow.status).where(JobRow.id == job_id))
            return status == "running"

    def progress(self, job_id: str, done: int, total: int | None = None) -> None:
        """Record how many documents a running job has handled (of ``total`` where known);
        also the final count of a job cancelled while it ran."""
        with self._database.session() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status.in_(("running", "cancelled")))
                .values(progress_done=done, progress_total=total)
            )

    def finish(self, job_id: str, report: IngestReport) -> None:
        """Mark the job ``succeeded`` with its report."""
        self._end(job_id, "succeeded", report, None)

    def fail(self, job_id: str, error: str, report: IngestReport | None = None) -> None:
        """Mark the job ``failed`` with the reason (and the report, where there is one)."""
        self._end(job_id, "failed", report, error)

    def requeue(self, job_id: str) -> None:
        """Put a running job back to ``queued`` (its process is stopping; it runs again on
        the next start without counting as an interrupted attempt)."""
        with self._database.session() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "running")
                .values(status="queued", attempts=JobRow.attempts - 1)
            )

    def retry_later(self, job_id: str, reason: str) -> None:
        """Put a running job back to ``queued`` with ``reason``, its run counted (a store
        outage stopped it; its queue runs it again after a delay)."""
        with self._database.session() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "running")
                .values(status="queued", error=reason)
            )

    def delete_assistant_jobs(self, assistant: str) -> int:
        """Delete every job of ``assistant``; returns how many there were."""
        with self._database.session() as session:
            result = session.execute(delete(JobRow).where(JobRow.assistant == assistant))
            return int(getattr(result, "rowcount", 0) or 0)

    def _end(
        self, job_id: str, status: JobStatus, report: IngestReport | None, error: str | None
    ) -> None:
        with self._database.session() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                return  # deleted with its assistant while it ran
            if row.status == "cancelled":
                # Cancelled while it ran: it stays cancelled, with what it did ingest.
                status, error = "cancelled", row.error
            else:
                row.finished_at = utcnow()
            row.status = status
            row.error = error
            if report is not None:
                row.report = report_to_json(report)
                handled = sum(1 for outcome in report.outcomes if outcome.status != "removed")
                row.progress_done = max(row.progress_done, handled)
                if row.progress_total is not None:
                    row.progress_total = max(row.progress_total, row.progress_done)
