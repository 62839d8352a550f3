"""The connector seam and the fetch policy shared by the web connectors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from connectors.document import LoadResult

__all__ = ["Connector", "FetchPolicy", "Validators"]


@dataclass(frozen=True, slots=True)
class Validators:
    """What we know of a page from its last fetch, sent back to skip unchanged pages."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits and manners for fetching from the web.

    ``allow_hosts`` lists host names or CIDRs exempt from the private-address refusal
    (for local use and tests); everything else that resolves to loopback, private,
    link-local, reserved or metadata addresses is refused, also after redirects.
    """

    allow_hosts: tuple[str, ...] = ()
    timeout_seconds: float = 15.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    concurrency: int = 4
    user_agent: str = "assistant-rag/0.1 (+https://github.com/assistant-rag)"
    respect_robots: bool = True


@runtime_checkable
class Connector(Protocol):
    """Turns one source into documents.

    ``load()`` yields a ``Document`` per page or file, an ``Unchanged`` for a page the server
    reported unchanged, and a ``SourceFailure`` for each page or file that failed; it raises a
    ``ConnectorError`` only when the source as a whole cannot be read. After ``load()`` is
    exhausted, ``complete`` tells whether the whole source was enumerated (a sitemap read in
    full, a crawl not cut by its page limit), which is when pages absent from it may be removed.
    """

    source: str
    complete: bool

    def load(self) -> Iterator[LoadResult]:
        """Yield the documents of the source, one result per page or file."""
        ...


KnownValidators = Mapping[str, Validators]
