"""What ingestion reports: each document's outcome, progress events, the run's summary, and
the sources a knowledge base holds.

Plain dataclasses with no torch, Chroma or Redis at import, shared by the in-process
``Assistant``, the job store and the HTTP client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DocumentOutcome",
    "IngestReport",
    "ProgressCallback",
    "ProgressEvent",
    "SourceSummary",
    "Status",
]

Status = Literal["added", "updated", "unchanged", "removed", "failed"]


@dataclass(frozen=True, slots=True)
class DocumentOutcome:
    """What happened to one document (or to a whole source that could not be read)."""

    url: str
    status: Status
    chunks: int = 0
    reason: str | None = None
    error_type: str | None = None


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A step of ingestion, for progress displays: pages loaded, chunks embedded, failures."""

    kind: Literal["loaded", "embedded", "failed"]
    count: int
    detail: str


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(slots=True)
class IngestReport:
    """The summary of one ingestion run."""

    outcomes: list[DocumentOutcome] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0
    incomplete_sources: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        """How many documents ended with ``status``."""
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def failures(self) -> list[DocumentOutcome]:
        """The documents or sources that failed, each with its reason."""
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """One ingested source (a folder, file, page, sitemap or site) and what it holds."""

    source: str
    documents: int
    chunks: int
    last_fetched: str
