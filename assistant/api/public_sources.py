"""What a visitor may see of a source: its title and public address, never a server path.

Documents ingested from disk carry their absolute path as their address (``/srv/docs/billing.md``)
so that the operator's command line, the admin console and secret-key API callers can tell where
a passage came from. Visitors (a widget's public key, the full page) and the OpenAI-compatible
``/v1`` answers, which apps show to their own users, must not learn the server's file layout, so
every public surface passes its sources and citations through ``visible_url`` here and nowhere
else decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import PurePosixPath, PureWindowsPath
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from assistant.api.sse import close_stream
from assistant.chat.events import (
    Citation,
    CitationsEvent,
    Source,
    SourcesEvent,
    StreamEvent,
)
from assistant.core import Assistant

__all__ = ["public_base_url", "visible_event", "visible_events", "visible_source", "visible_url"]

Shown = TypeVar("Shown", Source, Citation)


def visible_url(url: str, public_base_url: str | None = None) -> str:
    """The address a visitor may follow: an ``http(s)`` URL without credentials; for a local
    file, its name under ``public_base_url`` (the brand's setting), else ``""``.

    >>> visible_url("https://help.example/billing#refunds")
    'https://help.example/billing#refunds'
    >>> visible_url("/home/owner/docs/billing.html")
    ''
    >>> visible_url("/home/owner/docs/billing plans.html", "https://help.example/files")
    'https://help.example/files/billing%20plans.html'
    >>> visible_url("https://user:secret@intranet.example/page")
    'https://intranet.example/page'
    """
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() in ("http", "https") and parts.hostname:
            return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("", "file") and len(parts.scheme) > 1:
        # Other schemes (javascript:, data:, mailto:) are never links for visitors.
        return ""
    name = _file_name(url)
    if not public_base_url or not name:
        return ""
    return f"{public_base_url.rstrip('/')}/{quote(name)}"


def _file_name(url: str) -> str:
    # A one-letter scheme is a Windows drive (C:\docs\a.md), not a URL scheme.
    path = PureWindowsPath(url) if "\\" in url else PurePosixPath(urlsplit(url).path or url)
    return path.name


def visible_source(source: Shown, public_base_url: str | None = None) -> Shown:
    """``source`` (a ``Source`` or a ``Citation``) as a visitor may see it: its title (a
    local file's name where it has none) and ``visible_url``."""
    url = visible_url(source.url, public_base_url)
    title = source.title
    if not title or (title == source.url and url != source.url):
        title = _file_name(source.url)
    return replace(source, title=title, url=url)


def visible_event(event: StreamEvent, public_base_url: str | None = None) -> StreamEvent:
    """``event`` with the addresses of its sources or citations made visible to visitors."""
    if isinstance(event, SourcesEvent):
        shown = tuple(visible_source(s, public_base_url) for s in event.sources)
        return replace(event, sources=shown)
    if isinstance(event, CitationsEvent):
        cited = tuple(visible_source(c, public_base_url) for c in event.citations)
        return replace(event, citations=cited)
    return event


async def visible_events(
    events: AsyncIterator[StreamEvent], public_base_url: str | None = None
) -> AsyncIterator[StreamEvent]:
    """``events`` through ``visible_event``; closing this stream closes ``events``."""
    try:
        async for event in events:
            yield visible_event(event, public_base_url)
    finally:
        await close_stream(events)


def public_base_url(core: Assistant, name: str) -> str | None:
    """Assistant ``name``'s ``brand.public_base_url`` (reads the database: call off the loop)."""
    base = core.config(name).brand.public_base_url
    return str(base) if base is not None else None
