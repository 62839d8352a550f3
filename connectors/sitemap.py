"""``SitemapConnector``: every page a sitemap (or a tree of sitemap indexes) lists.

Sitemap files are read first, breadth first; the pages they list are then fetched on
``policy.concurrency`` threads and yielded in the order they finish.

Example::

    connector = SitemapConnector("https://example.com/sitemap.xml")
    for result in connector.load():
        ...
    if connector.complete:
        ...  # pages absent from this load may be removed
"""

from __future__ import annotations

import logging
import zlib
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import httpx
from lxml import etree

from connectors.base import FetchPolicy, KnownValidators
from connectors.document import LoadResult, SourceFailure, Unchanged
from connectors.errors import ConnectorError, FetchError, ParseError, TooLargeError
from connectors.fetch import NotModified, fetch
from connectors.netguard import guarded_client, parse_http_url
from connectors.web import NO_VALIDATORS, PoliteFetcher, canonical_url, load_concurrently

__all__ = ["SitemapConnector", "SitemapFile", "parse_sitemap"]

logger = logging.getLogger(__name__)

MAX_SITEMAP_DEPTH = 3
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class SitemapFile:
    """A parsed sitemap: page URLs (``urlset``) or child sitemap URLs (``sitemapindex``)."""

    is_index: bool
    locations: tuple[str, ...]


def parse_sitemap(body: bytes, url: str, max_bytes: int) -> SitemapFile:
    """Parse a sitemap or sitemap index, gunzipping it first when it starts with gzip magic.

    The XML parser resolves no entities, loads no DTD and reaches no network, so a hostile
    sitemap cannot read local files or expand entities; decompression stops at ``max_bytes``.

    Raises:
        TooLargeError: the decompressed sitemap is larger than ``max_bytes``.
        ParseError: not gzip/XML, or the root is neither ``urlset`` nor ``sitemapindex``.
    """
    data = _gunzip(body, url, max_bytes) if body.startswith(GZIP_MAGIC) else body
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise ParseError(url, f"not a valid sitemap ({error}); check the sitemap URL") from error
    if root is None:
        raise ParseError(url, "the sitemap is empty")
    kind = etree.QName(root).localname
    if kind not in ("urlset", "sitemapindex"):
        raise ParseError(url, f"root element <{kind}> is neither <urlset> nor <sitemapindex>")
    entry_name = "url" if kind == "urlset" else "sitemap"
    locations: list[str] = []
    for entry in root:
        if not isinstance(entry.tag, str) or etree.QName(entry).localname != entry_name:
            continue
        for child in entry:
            if isinstance(child.tag, str) and etree.QName(child).localname == "loc":
                text = (child.text or "").strip()
                if text:
                    try:
                        locations.append(str(httpx.URL(url).join(text)))
                    except httpx.InvalidURL:
                        logger.debug("skipping a malformed location in %s: %r", url, text)
    return SitemapFile(is_index=kind == "sitemapindex", locations=tuple(locations))


def _gunzip(body: bytes, url: str, max_bytes: int) -> bytes:
    """Decompress gzip without ever holding more than ``max_bytes + 1`` bytes of output."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(body, max_bytes + 1)
    except zlib.error as error:
        raise ParseError(url, f"corrupt gzip data ({error})") from error
    if len(data) > max_bytes or decompressor.unconsumed_tail:
        raise TooLargeError(url, f"the sitemap decompresses past the limit of {max_bytes} bytes")
    return data


class SitemapConnector:
    """The pages listed by a sitemap, following sitemap indexes up to three levels deep.

    Every listed page is fetched (any host, always through the SSRF guard), honouring
    robots.txt and Crawl-delay when ``policy.respect_robots``; pages are de-duplicated by
    canonical URL before fetching and by source and content after. ``noindex`` pages are not
    yielded. A child sitemap that fails is yielded as a ``SourceFailure``; the top sitemap
    failing raises its ``ConnectorError``. ``complete`` is True only when every sitemap file
    was read and ``max_pages`` cut nothing.

    Example::

        connector = SitemapConnector("https://example.com/sitemap.xml", max_pages=500)
        documents = [r for r in connector.load() if isinstance(r, Document)]
    """

    def __init__(
        self,
        url: str,
        *,
        policy: FetchPolicy = FetchPolicy(),  # noqa: B008 - frozen dataclass, safe to share
        known: KnownValidators = NO_VALIDATORS,
        max_pages: int = 10_000,
    ) -> None:
        self.source = url
        self.complete = False
        self._policy = policy
        self._known = known
        self._max_pages = max_pages

    def load(self) -> Iterator[LoadResult]:
        """Yield each listed page's ``Document``, ``Unchanged`` or ``SourceFailure``."""
        parse_http_url(self.source)
        self.complete = False
        with guarded_client(self._policy) as client:
            page_urls: list[str] = []
            read_in_full = yield from self._read_sitemaps(client, page_urls)
            if len(page_urls) > self._max_pages:
                logger.info(
                    "%s lists %d pages; loading the first %d",
                    self.source,
                    len(page_urls),
                    self._max_pages,
                )
                read_in_full = False
                del page_urls[self._max_pages :]
            yield from self._load_pages(PoliteFetcher(client, self._policy), page_urls)
        self.complete = read_in_full

    def _read_sitemaps(
        self, client: httpx.Client, page_urls: list[str]
    ) -> Generator[LoadResult, None, bool]:
        """Read the sitemap tree breadth first into ``page_urls``; return whether all was read.

        Raises:
            ConnectorError: the top sitemap could not be read.
        """
        read_in_full = True
        seen_pages: set[str] = set()
        seen_sitemaps = {self.source}
        queue = deque([(self.source, 0)])
        while queue:
            sitemap_url, depth = queue.popleft()
            try:
                sitemap = self._read_one(client, sitemap_url)
            except ConnectorError as error:
                if sitemap_url == self.source:
                    raise
                read_in_full = False
                yield SourceFailure(sitemap_url, error.reason, error)
                continue
            if not sitemap.is_index:
                for location in sitemap.locations:
                    try:
                        key = canonical_url(location)
                    except ValueError:
                        logger.debug("skipping a malformed location in %s", sitemap_url)
                        continue
                    if key not in seen_pages:
                        seen_pages.add(key)
                        page_urls.append(key)
                continue
            for child in sitemap.locations:
                if child in seen_sitemaps:
                    continue
                seen_sitemaps.add(child)
                if depth + 1 > MAX_SITEMAP_DEPTH:
                    read_in_full = False
                    too_deep = FetchError(
                        child, f"sitemap indexes nest deeper than {MAX_SITEMAP_DEPTH} levels"
                    )
                    yield SourceFailure(child, too_deep.reason, too_deep)
                    continue
                queue.append((child, depth + 1))
        return read_in_full

    def _read_one(self, client: httpx.Client, url: str) -> SitemapFile:
        result = fetch(client, url, self._policy)
        if isinstance(result, NotModified):  # no validators are sent, so never; keeps mypy exact
            raise FetchError(url, "unexpected HTTP 304")
        return parse_sitemap(result.body, url, self._policy.max_bytes)

    def _load_pages(self, fetcher: PoliteFetcher, page_urls: list[str]) -> Iterator[LoadResult]:
        seen_sources: set[str] = set()
        seen_hashes: set[str] = set()
        for url, outcome in load_concurrently(fetcher, page_urls, self._known):
            if isinstance(outcome, ConnectorError):
                yield SourceFailure(url, outcome.reason, outcome)
            elif isinstance(outcome, Unchanged):
                yield outcome
            elif outcome.noindex:
                logger.debug("skipping %s: the page asks not to be indexed", url)
            else:
                document = outcome.document
                if document.source in seen_sources or document.content_hash in seen_hashes:
                    logger.debug("skipping %s: same page as one already loaded", url)
                    continue
                seen_sources.add(document.source)
                seen_hashes.add(document.content_hash)
                yield document
