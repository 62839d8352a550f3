"""An ingestion job as callers read it: its kind, status, spec and record.

Plain dataclasses with no SQLAlchemy or Redis at import: ``JobStore`` builds ``JobRecord``s
from its rows, and the HTTP client builds the same type from ``GET …/jobs/{id}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from assistant.knowledge.reports import IngestReport

__all__ = ["FINISHED", "JobKind", "JobRecord", "JobSpec", "JobStatus"]

JobKind = Literal["url", "sitemap", "crawl", "upload", "resync"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]

FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
"""The statuses a job ends in: it never runs again after one of them."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job ingests.

    ``sources`` are URLs (``url``, ``sitemap``, ``crawl``); ``files`` are the names of the
    uploaded files kept in the job's upload folder (``upload``); ``resync`` needs neither.
    """

    sources: tuple[str, ...] = ()
    crawl: bool = False
    max_pages: int | None = None
    max_depth: int = 3
    files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The spec as stored in the job row."""
        return {
            "sources": list(self.sources),
            "crawl": self.crawl,
            "max_pages": self.max_pages,
            "max_depth": self.max_depth,
            "files": list(self.files),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        """The spec stored by ``to_json`` (missing fields take their defaults)."""
        max_pages = data.get("max_pages")
        return cls(
            sources=tuple(str(source) for source in data.get("sources") or ()),
            crawl=bool(data.get("crawl", False)),
            max_pages=int(max_pages) if max_pages is not None else None,
            max_depth=int(data.get("max_depth", 3)),
            files=tuple(str(name) for name in data.get("files") or ()),
        )


@dataclass(frozen=True, slots=True)
class JobRecord:
    """An ingestion job: what it ingests, how far it got and, once finished, its report.

    ``status`` goes ``queued`` → ``running`` → ``succeeded`` / ``failed``, or to ``cancelled``
    from either of the first two; ``report`` is set once it has finished. Read over HTTP, ``spec`` holds what the API sends (``sources``,
    ``files``, and ``crawl`` for a crawl job); its page and depth limits keep their defaults.
    """

    id: str
    assistant: str
    kind: JobKind
    spec: JobSpec
    status: JobStatus
    progress_done: int
    progress_total: int | None
    report: IngestReport | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """Whether the job has ended (succeeded, failed or cancelled)."""
        return self.status in FINISHED

    @property
    def sources(self) -> tuple[str, ...]:
        """The URLs the job ingests (``spec.sources``)."""
        return self.spec.sources

    @property
    def files(self) -> tuple[str, ...]:
        """The uploaded files the job ingests (``spec.files``)."""
        return self.spec.files
