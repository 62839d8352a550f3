"""Request and response models of the sources and jobs routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.core import SourceSummary
from assistant.jobs.store import JobKind, JobRecord, JobStatus
from assistant.knowledge.ingest import IngestReport

__all__ = [
    "DocumentOutcomePublic",
    "JobList",
    "JobPublic",
    "JobReportPublic",
    "SourceCreate",
    "SourceList",
    "SourceRemoved",
    "SourceSummaryPublic",
]


class SourceCreate(BaseModel):
    """A web source to ingest: one ``url``, a ``sitemap`` (every page it lists) or a site to
    ``crawl`` from ``url`` (same host, up to ``max_pages`` pages and ``max_depth`` links deep).

    ``max_pages`` defaults to 200 for a crawl and 10,000 for a sitemap.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["url", "sitemap", "crawl"]
    url: str = Field(min_length=1, max_length=2048, examples=["https://example.com/help/"])
    max_pages: int | None = Field(default=None, ge=1, le=100_000)
    max_depth: int | None = Field(default=None, ge=0, le=20)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("give an http:// or https:// URL")
        return value


class DocumentOutcomePublic(BaseModel):
    """What happened to one document: ``added``, ``updated``, ``unchanged``, ``removed`` or
    ``failed`` (with the ``reason`` and the ``error_type``)."""

    url: str
    status: Literal["added", "updated", "unchanged", "removed", "failed"]
    chunks: int = 0
    reason: str | None = None
    error_type: str | None = None


class JobReportPublic(BaseModel):
    """The outcome of a finished job, document by document, with counts by status."""

    outcomes: list[DocumentOutcomePublic]
    counts: dict[str, int]
    chunks_embedded: int
    seconds: float
    incomplete_sources: list[str]

    @classmethod
    def of(cls, report: IngestReport) -> JobReportPublic:
        """The public form of an ingestion report."""
        counts = dict.fromkeys(("added", "updated", "unchanged", "removed", "failed"), 0)
        for outcome in report.outcomes:
            counts[outcome.status] += 1
        return cls(
            outcomes=[
                DocumentOutcomePublic(
                    url=outcome.url,
                    status=outcome.status,
                    chunks=outcome.chunks,
                    reason=outcome.reason,
                    error_type=outcome.error_type,
                )
                for outcome in report.outcomes
            ],
            counts=counts,
            chunks_embedded=report.chunks_embedded,
            seconds=round(report.seconds, 3),
            incomplete_sources=list(report.incomplete_sources),
        )


class JobPublic(BaseModel):
    """An ingestion job: ``queued`` → ``running`` → ``succeeded`` / ``failed`` (or ``cancelled``).

    ``progress_done`` counts documents handled so far (of ``progress_total`` when it is known
    in advance); ``report`` is set once the job has finished; ``attempts`` counts its runs
    (more than one after its process stopped mid-job and it was run again).
    """

    id: str
    kind: JobKind
    status: JobStatus
    sources: list[str]
    files: list[str]
    progress_done: int
    progress_total: int | None
    report: JobReportPublic | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: JobRecord) -> JobPublic:
        """The public form of a stored job."""
        return cls(
            id=job.id,
            kind=job.kind,
            status=job.status,
            sources=list(job.spec.sources),
            files=list(job.spec.files),
            progress_done=job.progress_done,
            progress_total=job.progress_total,
            report=JobReportPublic.of(job.report) if job.report is not None else None,
            error=job.error,
            attempts=job.attempts,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


class JobList(BaseModel):
    """An assistant's jobs, newest first."""

    jobs: list[JobPublic]


class SourceSummaryPublic(BaseModel):
    """One ingested source (a page, sitemap, site, folder or uploaded file) and what it holds;
    ``source`` is the name to give ``DELETE .../sources?source=``."""

    source: str
    documents: int
    chunks: int
    last_fetched: str

    @classmethod
    def of(cls, summary: SourceSummary) -> SourceSummaryPublic:
        """The public form of a source summary."""
        return cls(
            source=summary.source,
            documents=summary.documents,
            chunks=summary.chunks,
            last_fetched=summary.last_fetched,
        )


class SourceList(BaseModel):
    """What has been ingested into an assistant's knowledge base, by source."""

    sources: list[SourceSummaryPublic]


class SourceRemoved(BaseModel):
    """How many chunks a removed source held."""

    removed_chunks: int
