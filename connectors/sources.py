"""Choosing the connector for what a user names: a file, a folder, a page, a sitemap, a site."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from connectors.base import Connector, FetchPolicy, KnownValidators
from connectors.errors import ConnectorError
from connectors.limits import DEFAULT_LIMITS, ExtractionLimits

__all__ = ["is_url", "open_source", "source_key"]


def is_url(spec: str) -> bool:
    """Whether ``spec`` names a web address rather than a local path."""
    return urlsplit(spec).scheme.lower() in ("http", "https")


def source_key(spec: str) -> str:
    """The stable name a source is stored under: the URL as given, or the absolute path."""
    spec = spec.strip()
    if is_url(spec) or "://" in spec:
        return spec
    return str(Path(spec).expanduser().resolve())


def _is_sitemap(url: str) -> bool:
    path = urlsplit(url).path.lower()
    name = path.rsplit("/", 1)[-1]
    return name.endswith((".xml", ".xml.gz")) and "sitemap" in name


def open_source(
    spec: str,
    *,
    policy: FetchPolicy,
    known: KnownValidators | None = None,
    crawl: bool = False,
    max_pages: int = 200,
    max_depth: int = 3,
    max_file_bytes: int = 50 * 1024 * 1024,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> Connector:
    """The connector for ``spec``.

    A URL is a sitemap when its file name is ``*sitemap*.xml[.gz]``, a site to crawl when
    ``crawl`` is set, else a single page; anything else is a local file or folder.

    Raises:
        ConnectorError: ``spec`` is neither an http(s) URL nor an existing path.
    """
    from connectors.crawl import CrawlConnector
    from connectors.files import FileConnector
    from connectors.sitemap import SitemapConnector
    from connectors.web import PageConnector

    key = source_key(spec)
    known = known or {}
    if is_url(key):
        if _is_sitemap(key):
            return SitemapConnector(key, policy=policy, known=known, max_pages=max_pages)
        if crawl:
            return CrawlConnector(
                key, policy=policy, known=known, max_pages=max_pages, max_depth=max_depth
            )
        return PageConnector(key, policy=policy, known=known)
    if "://" in key:
        raise ConnectorError(key, "only http:// and https:// URLs can be fetched")
    if not Path(key).exists():
        raise ConnectorError(key, "no such file or directory")
    return FileConnector(key, max_bytes=max_file_bytes, limits=limits)
