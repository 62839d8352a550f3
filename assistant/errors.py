"""Typed errors of the assistant.

Every error the package raises on purpose derives from one root, so callers can catch
``AssistantError`` and surfaces (CLI, HTTP) can map the subclasses to messages and statuses
in one place. Messages say what failed and how to fix it.

::

    AssistantError
    ├── ConfigError                 a setting is missing or invalid
    ├── NotFoundError               a knowledge base or source does not exist
    ├── ConnectorError              a source could not be turned into documents (has .source)
    │   ├── FetchError              network failure, timeout, HTTP error status, redirect loop
    │   ├── BlockedURLError         private/loopback/metadata address (SSRF) or robots.txt
    │   ├── TooLargeError           body or file over the configured maximum
    │   │   └── DocumentTooLargeError  text, chunks, pages or inflated size over a limit
    │   ├── UnsupportedContentError content that is not a document kind we read
    │   └── ParseError              corrupt or unreadable document
    ├── InvalidInputError           a request or value the caller sent is not acceptable
    ├── ConflictError               the thing to create exists already
    ├── AuthenticationError         no key, or a key that is unknown or revoked
    ├── PermissionDeniedError       a valid key used where it is not allowed (origin, assistant)
    ├── RateLimitedError            too many requests for a key or visitor (has .retry_after)
    ├── DatabaseError               the application database failed
    ├── StoreError                  the vector store (Chroma) failed
    ├── CacheError                  the token cache failed (logged and recomputed, never fatal)
    ├── EncoderError                the encoder model could not be loaded or run
    └── ProviderError               an answer provider failed
        ├── ProviderAuthError
        ├── ProviderRateLimitError
        ├── ProviderUnavailableError
        └── ProviderBadRequestError
"""

from __future__ import annotations

# The root and the connector errors live in ``connectors.errors`` because connectors import
# nothing from this package; they are the same classes, re-exported here.
from connectors.errors import (
    AssistantError,
    BlockedURLError,
    ConnectorError,
    DocumentTooLargeError,
    FetchError,
    ParseError,
    TooLargeError,
    UnsupportedContentError,
)

__all__ = [
    "AssistantError",
    "AuthenticationError",
    "BlockedURLError",
    "CacheError",
    "ConfigError",
    "ConflictError",
    "ConnectorError",
    "DatabaseError",
    "DocumentTooLargeError",
    "EncoderError",
    "FetchError",
    "InvalidInputError",
    "NotFoundError",
    "ParseError",
    "PermissionDeniedError",
    "ProviderAuthError",
    "ProviderBadRequestError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "StoreError",
    "TooLargeError",
    "UnsupportedContentError",
]


class ConfigError(AssistantError):
    """A setting is missing or invalid."""


class NotFoundError(AssistantError):
    """A knowledge base, source or document does not exist."""


class InvalidInputError(AssistantError):
    """A request or value the caller sent is not acceptable (the message says which and why)."""


class ConflictError(AssistantError):
    """The thing to create exists already."""


class AuthenticationError(AssistantError):
    """No key was given, or the key is unknown or revoked."""


class PermissionDeniedError(AssistantError):
    """A valid key was used where it is not allowed (another assistant, an origin not listed)."""


class RateLimitedError(AssistantError):
    """Too many requests; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseError(AssistantError):
    """The application database failed (unreachable, or a migration could not run)."""


class StoreError(AssistantError):
    """The vector store failed (unreachable server, bad collection, write error)."""


class CacheError(AssistantError):
    """The token cache failed. Callers log it and recompute; it never fails a query."""


class EncoderError(AssistantError):
    """The encoder model could not be loaded or run."""


class ProviderError(AssistantError):
    """An answer provider failed."""


class ProviderAuthError(ProviderError):
    """The provider refused the credentials."""


class ProviderRateLimitError(ProviderError):
    """The provider rate-limited the request after retries."""


class ProviderUnavailableError(ProviderError):
    """The provider is down, timed out or returned a server error."""


class ProviderBadRequestError(ProviderError):
    """The provider rejected the request as malformed."""
