"""Connecting to Chroma (embedded or a server) and turning its exceptions into ``StoreError``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from assistant.errors import AssistantError, ConfigError, StoreError

__all__ = ["chroma_client", "chroma_errors", "close_chroma_client"]


@contextmanager
def chroma_errors(action: str) -> Iterator[None]:
    """Raise what Chroma raises inside as ``StoreError("vector store failed to {action}: …")``."""
    try:
        yield
    except AssistantError:
        raise
    except Exception as exc:  # Chroma raises many unrelated types; this is its one choke point.
        raise StoreError(f"vector store failed to {action}: {exc}") from exc


def chroma_client(path: str | None = None, url: str | None = None) -> Any:
    """An embedded client on ``path``, or a server client for ``url`` (``http://host:port``)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    with chroma_errors("connect"):
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"ASSISTANT_CHROMA_URL must look like http://host:8000, got {url!r}"
                )
            client = chromadb.HttpClient(
                host=parts.hostname,
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
            return client
        if path is None:
            raise ConfigError("an embedded Chroma needs a directory")
        return chromadb.PersistentClient(path=path, settings=chroma_settings)


def close_chroma_client(client: Any) -> None:
    """Release what ``chroma_client`` opened; a second call does nothing.

    Chroma's own ``close`` stops its system but leaves the HTTP sessions of a server client
    (its own and its admin client's) open, so their sockets would leak until garbage collection.
    """
    for owner in (client, getattr(client, "_admin_client", None)):
        session = getattr(getattr(owner, "_server", None), "_session", None)
        if session is not None:
            session.close()
    with chroma_errors("close"):
        client.close()
