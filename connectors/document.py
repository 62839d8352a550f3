"""The unit every connector produces: clean text plus where it came from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = [
    "EXTRACTION_VERSION",
    "Document",
    "LoadResult",
    "Section",
    "SourceFailure",
    "Unchanged",
    "content_hash",
]

# Raised whenever extraction reads the same bytes differently (2: pages without a main landmark
# keep their headings; 3: and the title block just before their content). Stores remember the
# version each document was read with and fetch the pages read by an earlier one again, without
# the validators that would let the server answer "not modified", so an improvement reaches
# knowledge bases built before it.
EXTRACTION_VERSION = 3


def content_hash(*parts: str) -> str:
    """Return the hex SHA-256 of the parts joined by a separator that text cannot contain."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Section:
    """A run of text under one heading path, e.g. ``("Billing", "Refunds")``."""

    heading_path: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    """A source turned into clean text.

    ``source`` is the document's own location (canonical URL or absolute path); ``sections``
    keep the heading structure in reading order. ``content_hash`` covers title and text, so an
    unchanged page hashes the same on every fetch. ``etag``/``last_modified`` are the HTTP
    validators a re-sync sends back to skip unchanged pages.
    """

    source: str
    title: str
    sections: tuple[Section, ...]
    content_type: str
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    etag: str | None = None
    last_modified: str | None = None

    @property
    def text(self) -> str:
        """The whole text, sections separated by blank lines."""
        return "\n\n".join(section.text for section in self.sections if section.text)

    @property
    def headings(self) -> list[tuple[str, ...]]:
        """Every distinct heading path in reading order."""
        seen: list[tuple[str, ...]] = []
        for section in self.sections:
            if section.heading_path and section.heading_path not in seen:
                seen.append(section.heading_path)
        return seen

    @property
    def content_hash(self) -> str:
        """SHA-256 over the title and every section (headings included)."""
        parts = [self.title]
        for section in self.sections:
            parts.append(" > ".join(section.heading_path))
            parts.append(section.text)
        return content_hash(*parts)


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A page the server reported unchanged (HTTP 304) against the validators we sent."""

    source: str


@dataclass(frozen=True, slots=True)
class SourceFailure:
    """One page or file that could not be loaded; the rest of the batch goes on."""

    source: str
    reason: str
    error: Exception


LoadResult = Document | Unchanged | SourceFailure
