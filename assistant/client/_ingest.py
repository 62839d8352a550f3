"""Ingestion over HTTP: which sources become which jobs, and the report read back from them.

``ingest`` names sources the way ``Assistant.ingest`` does. Web addresses become one job each
(``POST …/sources``: a sitemap by its file name, else a crawl or a single page, the same rule
as in-process); local files and folders are read here and uploaded together
(``POST …/sources/upload``). Files the server would refuse (empty, or not a kind of document
it reads) are reported as failed without being sent, as the in-process file connector
reports them, so one bad file does not fail the whole upload.

The server stores an uploaded file under ``upload://<file name>``: that is the name
``sources`` lists and ``forget`` takes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from assistant.client._errors import ClientError
from assistant.client._wire import validate
from assistant.errors import ConnectorError, ParseError
from assistant.jobs.records import JobRecord, JobSpec
from assistant.knowledge.reports import DocumentOutcome, IngestReport, ProgressEvent
from connectors.sniff import sniff_kind
from connectors.sources import is_url, source_key

__all__ = [
    "MAX_FILES_PER_UPLOAD",
    "MAX_UPLOAD_BYTES",
    "IngestJob",
    "IngestPlan",
    "IngestResult",
    "LocalFile",
    "decode_job",
    "plan_ingest",
    "progress_events",
    "refused_source",
    "report_of",
]

MAX_FILES_PER_UPLOAD = 100
"""Files sent in one upload request (the server's limit)."""

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
"""Bytes sent in one upload request; more files go in further requests."""

IngestJob = JobRecord
"""An ingestion job on the server, as ``GET …/jobs/{id}`` last reported it: the same
``JobRecord`` the server's job store keeps (``spec`` holds what the API sends)."""


@dataclass(slots=True)
class IngestResult(IngestReport):
    """An ``IngestReport`` with the server's jobs behind it.

    With ``wait=False`` the jobs are as queued and the outcomes hold only what failed before
    anything was sent; ``Client.job`` follows a job later.
    """

    jobs: list[JobRecord] = field(default_factory=list)

    @property
    def pending(self) -> list[JobRecord]:
        """The jobs that had not finished when this result was made."""
        return [job for job in self.jobs if not job.finished]


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file to upload: the name it is sent under and its bytes."""

    name: str
    data: bytes


@dataclass(slots=True)
class IngestPlan:
    """The requests an ``ingest`` call makes and what failed before any was sent."""

    web_sources: list[dict[str, object]] = field(default_factory=list)
    uploads: list[list[LocalFile]] = field(default_factory=list)
    unreadable: list[DocumentOutcome] = field(default_factory=list)


def _is_sitemap(url: str) -> bool:
    # The same rule as the in-process connectors: the file name says sitemap and .xml[.gz].
    name = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()
    return "sitemap" in name and name.endswith((".xml", ".xml.gz"))


def _web_source(url: str, crawl: bool, max_pages: int | None, max_depth: int) -> dict[str, object]:
    kind = "sitemap" if _is_sitemap(url) else "crawl" if crawl else "url"
    body: dict[str, object] = {"kind": kind, "url": url}
    if max_pages is not None:
        body["max_pages"] = max_pages
    if kind == "crawl":
        body["max_depth"] = max_depth
    return body


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root`` in sorted order, skipping hidden entries (as the file connector)."""
    for entry in sorted(os.scandir(root), key=lambda item: item.name):
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)
        elif entry.is_file():
            yield path


def _read(path: Path) -> LocalFile | DocumentOutcome:
    """The file to send, or the failure the server would answer it with."""
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return DocumentOutcome(
            source,
            "failed",
            reason=f"the file could not be read: {exc.strerror or exc}",
            error_type="ConnectorError",
        )
    try:
        if not data.strip():
            raise ParseError(source, "empty file")
        sniff_kind(data, name_hint=path.name, source=source)
    except ConnectorError as failure:
        return DocumentOutcome(
            source, "failed", reason=failure.reason, error_type=type(failure).__name__
        )
    return LocalFile(path.name, data)


def plan_ingest(
    sources: Sequence[str], *, crawl: bool, max_pages: int | None, max_depth: int
) -> IngestPlan:
    """Sort ``sources`` into web jobs and batches of files to upload."""
    plan = IngestPlan()
    files: list[LocalFile] = []
    for spec in sources:
        key = source_key(spec)
        if is_url(key):
            plan.web_sources.append(_web_source(key, crawl, max_pages, max_depth))
            continue
        path = Path(key)
        if "://" in key or not path.exists():
            reason = (
                "only http:// and https:// URLs can be fetched"
                if "://" in key
                else "no such file or directory"
            )
            plan.unreadable.append(
                DocumentOutcome(key, "failed", reason=reason, error_type="ConnectorError")
            )
            continue
        for file_path in _walk(path) if path.is_dir() else [path]:
            read = _read(file_path)
            if isinstance(read, LocalFile):
                files.append(read)
            else:
                plan.unreadable.append(read)
    batch: list[LocalFile] = []
    size = 0
    for local in files:
        if batch and (
            len(batch) >= MAX_FILES_PER_UPLOAD or size + len(local.data) > MAX_UPLOAD_BYTES
        ):
            plan.uploads.append(batch)
            batch, size = [], 0
        batch.append(local)
        size += len(local.data)
    if batch:
        plan.uploads.append(batch)
    return plan


def decode_job(data: Mapping[str, Any], kb: str) -> JobRecord:
    """The ``JobRecord`` of a ``JobPublic`` of assistant ``kb``.

    The API sends a job's sources and files but not its page and depth limits, so those
    keep ``JobSpec``'s defaults.
    """
    report = data.get("report")
    return JobRecord(
        id=data["id"],
        assistant=kb,
        kind=data["kind"],
        spec=JobSpec(
            sources=tuple(data.get("sources") or ()),
            crawl=data["kind"] == "crawl",
            files=tuple(data.get("files") or ()),
        ),
        status=data["status"],
        progress_done=int(data.get("progress_done") or 0),
        progress_total=data.get("progress_total"),
        report=_report(report) if report else None,
        error=data.get("error"),
        attempts=int(data.get("attempts") or 0),
        created_at=datetime.fromisoformat(data["created_at"]),
        started_at=_moment(data.get("started_at")),
        finished_at=_moment(data.get("finished_at")),
    )


def refused_source(body: Mapping[str, object], refusal: ClientError) -> DocumentOutcome:
    """The failed outcome of a web source the server refused to queue (blocked, malformed)."""
    return DocumentOutcome(
        str(body["url"]), "failed", reason=refusal.detail, error_type=type(refusal).__name__
    )


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _report(data: Mapping[str, Any]) -> IngestReport:
    return IngestReport(
        outcomes=[validate(DocumentOutcome, outcome) for outcome in data["outcomes"]],
        chunks_embedded=int(data.get("chunks_embedded") or 0),
        seconds=float(data.get("seconds") or 0.0),
        incomplete_sources=list(data.get("incomplete_sources") or ()),
    )


def _job_label(job: JobRecord) -> str:
    names = job.sources or tuple("upload://" + name for name in job.files)
    return names[0] if len(names) == 1 else f"{len(names)} sources"


def progress_events(before: JobRecord | None, after: JobRecord) -> list[ProgressEvent]:
    """The progress a poll of ``after`` shows since ``before``: documents loaded as the job's
    count grows; once it finishes, chunks embedded per document and each failure."""
    events: list[ProgressEvent] = []
    loaded = after.progress_done - (before.progress_done if before else 0)
    if loaded > 0:
        events.append(ProgressEvent("loaded", loaded, _job_label(after)))
    if after.finished and not (before and before.finished) and after.report is not None:
        for outcome in after.report.outcomes:
            if outcome.status == "failed":
                events.append(ProgressEvent("failed", 1, f"{outcome.url}: {outcome.reason}"))
            elif outcome.status in ("added", "updated") and outcome.chunks:
                events.append(ProgressEvent("embedded", outcome.chunks, outcome.url))
    return events


def report_of(
    jobs: Sequence[JobRecord], unreadable: Sequence[DocumentOutcome], seconds: float
) -> IngestResult:
    """One report for a whole ``ingest`` call: what failed before sending, then each job's
    outcomes; a job that failed without a report counts as its sources failing."""
    result = IngestResult(outcomes=list(unreadable), seconds=seconds, jobs=list(jobs))
    for job in jobs:
        if job.report is not None:
            result.outcomes.extend(job.report.outcomes)
            result.chunks_embedded += job.report.chunks_embedded
            result.incomplete_sources.extend(job.report.incomplete_sources)
        elif job.status == "failed":
            names = job.sources or tuple("upload://" + name for name in job.files)
            result.outcomes.extend(
                DocumentOutcome(name, "failed", reason=job.error, error_type="JobFailed")
                for name in names
            )
    return result
