"""The errors connectors raise, and the root they share with the rest of the assistant.

Connectors import nothing from ``assistant``, so the root of the assistant's error tree is
defined here and re-exported by ``assistant.errors``, which draws the whole tree: catching
``assistant.AssistantError`` still catches every error below.

::

    AssistantError
    └── ConnectorError              a source could not be turned into documents (has .source)
        ├── FetchError              network failure, timeout, HTTP error status, redirect loop
        ├── BlockedURLError         private/loopback/metadata address (SSRF) or robots.txt
        ├── TooLargeError           body or file over the configured maximum
        │   └── DocumentTooLargeError   extracted text, chunks, pages or inflated size over a limit
        ├── UnsupportedContentError content that is not a document kind we read
        └── ParseError              corrupt or unreadable document
"""

from __future__ import annotations

__all__ = [
    "AssistantError",
    "BlockedURLError",
    "ConnectorError",
    "DocumentTooLargeError",
    "FetchError",
    "ParseError",
    "TooLargeError",
    "UnsupportedContentError",
]


class AssistantError(Exception):
    """Root of every error the assistant raises on purpose."""


class ConnectorError(AssistantError):
    """A source could not be turned into documents.

    ``source`` names the URL or path; ``reason`` is a short human explanation.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class FetchError(ConnectorError):
    """Network failure, timeout, HTTP error status or redirect loop."""


class BlockedURLError(ConnectorError):
    """The URL is refused: a private/loopback/metadata address, or disallowed by robots.txt."""


class TooLargeError(ConnectorError):
    """A response body or file is larger than the configured maximum."""


class DocumentTooLargeError(TooLargeError):
    """One document is over an extraction limit: its text, chunks, pages or inflated size.

    ``limit`` names the setting to raise (``ASSISTANT_MAX_DOCUMENT_CHARS``…). Such a document
    fails the same way on every attempt, so it is never retried.
    """

    def __init__(self, source: str, reason: str, *, limit: str) -> None:
        super().__init__(source, reason)
        self.limit = limit


class UnsupportedContentError(ConnectorError):
    """The content is not a kind of document the connectors read."""


class ParseError(ConnectorError):
    """The document is corrupt or cannot be read."""
