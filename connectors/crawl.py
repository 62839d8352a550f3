"""``CrawlConnector``: a same-site, breadth-first crawl from a root page.

Example::

    connector = CrawlConnector("https://example.com/", max_pages=200, max_depth=3)
    for result in connector.load():
        ...
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Generator, Iterator
from urllib.parse import urlsplit

import httpx

from connectors.base import FetchPolicy, KnownValidators, Validators
from connectors.document import Document, LoadResult, SourceFailure, Unchanged
from connectors.errors import BlockedURLError, ConnectorError
from connectors.netguard import check_url, guarded_client
from connectors.web import (
    NO_VALIDATORS,
    FetchedPage,
    PoliteFetcher,
    canonical_url,
    known_validators,
    load_concurrently,
    same_site,
)

__all__ = ["CrawlConnector"]

logger = logging.getLogger(__name__)

# Links to these are media or archives, never documents; fetching them would only fail.
SKIPPED_EXTENSIONS = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".ico", ".bmp", ".avif",
        ".mp3", ".mp4", ".webm", ".mov", ".avi", ".wav", ".ogg",
        ".zip", ".gz", ".tgz", ".tar", ".rar", ".7z", ".exe", ".dmg", ".iso",
        ".css", ".js", ".woff", ".woff2", ".ttf",
    }
)  # fmt: skip


class CrawlConnector:
    """Pages of one site reached from ``root`` by following links, breadth first.

    Scope: the root's host and port (an http root also reaches https on the same host), and
    the site the root redirects to, if any.
    Links are followed from HTML pages only, up to ``max_depth`` link hops from the root and
    ``max_pages`` fetches. robots.txt is honoured (disallowed links are skipped, Crawl-delay
    spaces requests) unless ``policy.respect_robots`` is False; a robots.txt that cannot be
    read (5xx, unreachable) makes ``load()`` raise ``BlockedURLError``. ``noindex`` pages are
    not yielded, but their links are followed (a noindex hub page still leads to content).
    Pages are yielded once per canonical URL and once per content. ``complete`` is True when
    the frontier ran out before ``max_pages``.

    Known validators are sent only for pages at ``max_depth``, whose links are not needed;
    other pages are fetched in full for their links and reported ``Unchanged`` when their
    ETag (or, without one, Last-Modified) equals the known one.

    Example::

        connector = CrawlConnector("https://example.com/docs/", max_pages=50, max_depth=2)
        documents = [r for r in connector.load() if isinstance(r, Document)]
    """

    def __init__(
        self,
        root: str,
        *,
        policy: FetchPolicy = FetchPolicy(),  # noqa: B008 - frozen dataclass, safe to share
        known: KnownValidators = NO_VALIDATORS,
        max_pages: int = 200,
        max_depth: int = 3,
    ) -> None:
        self.source = root
        self.complete = False
        self._policy = policy
        self._known = known
        self._max_pages = max_pages
        self._max_depth = max_depth

    def load(self) -> Iterator[LoadResult]:
        """Yield each reached page's ``Document``, ``Unchanged`` or ``SourceFailure``.

        Raises:
            BlockedURLError: the root is refused by the guard or by robots.txt, or robots.txt
                could not be read.
            FetchError: the root URL is invalid or its host does not resolve.
            ConnectorError: the root page failed (HTTP error, timeout, ...).
        """
        self.complete = False
        check_url(self.source, self._policy)
        root = canonical_url(self.source)
        with guarded_client(self._policy) as client:
            fetcher = PoliteFetcher(client, self._policy)
            self._check_robots(fetcher, root)
            self.complete = yield from self._crawl(fetcher, root)

    def _check_robots(self, fetcher: PoliteFetcher, root: str) -> None:
        if not self._policy.respect_robots:
            return
        rules = fetcher.robots_for(root)
        if rules.failure is not None:
            raise BlockedURLError(self.source, rules.failure.reason)
        if not rules.allows(root, self._policy.user_agent):
            raise BlockedURLError(
                self.source, "robots.txt disallows the crawl root; pick another start page"
            )

    def _crawl(self, fetcher: PoliteFetcher, root: str) -> Generator[LoadResult, None, bool]:
        """Crawl level by level (a level = one link hop); return whether the frontier ran out.

        Raises:
            ConnectorError: the root page itself failed, so the site could not be read.
        """
        # The site is the root's, plus wherever the root redirects (example.com → www.).
        scope = [root]
        seen_urls = {root}
        seen_sources: set[str] = set()
        seen_hashes: set[str] = set()
        level = [root]
        fetched = 0
        for depth in range(self._max_depth + 1):
            if not level:
                return True
            budget = self._max_pages - fetched
            cut = len(level) > budget
            level = level[: max(budget, 0)]
            fetched += len(level)
            next_level: list[str] = []
            conditional = depth >= self._max_depth
            outcomes = load_concurrently(fetcher, level, self._known, conditional=conditional)
            for url, outcome in outcomes:
                if isinstance(outcome, ConnectorError):
                    if depth == 0:
                        raise outcome
                    yield SourceFailure(url, outcome.reason, outcome)
                    continue
                if isinstance(outcome, Unchanged):
                    yield outcome
                    continue
                if depth == 0:
                    scope.append(canonical_url(outcome.final_url))
                if not _in_scope(outcome.final_url, scope):
                    logger.debug("skipping %s: it redirected off the site", url)
                    continue
                seen_urls.update((canonical_url(outcome.final_url), outcome.document.source))
                if depth < self._max_depth:
                    next_level.extend(self._new_links(fetcher, outcome, scope, seen_urls))
                result = self._deduplicated(url, outcome, seen_sources, seen_hashes)
                if result is not None:
                    yield result
            if cut:
                return False
            level = next_level
        # Depth exhausted: links beyond max_depth are out of scope, not left undone.
        return True

    def _new_links(
        self, fetcher: PoliteFetcher, page: FetchedPage, scope: list[str], seen_urls: set[str]
    ) -> list[str]:
        """The page's in-scope links not seen before, marked seen (canonical form)."""
        links: list[str] = []
        for link in page.links:
            try:
                if urlsplit(link).scheme not in ("http", "https"):
                    continue
                url = canonical_url(link)
                if url in seen_urls or not _in_scope(url, scope) or _skipped_by_extension(url):
                    continue
            except (ValueError, httpx.InvalidURL):
                logger.debug("skipping a malformed link on %s: %r", page.final_url, link)
                continue
            seen_urls.add(url)
            if self._policy.respect_robots and not fetcher.robots_for(url).allows(
                url, self._policy.user_agent
            ):
                logger.debug("skipping %s: disallowed by robots.txt", url)
                continue
            links.append(url)
        return links

    def _deduplicated(
        self,
        url: str,
        page: FetchedPage,
        seen_sources: set[str],
        seen_hashes: set[str],
    ) -> Document | Unchanged | None:
        """The result to yield for a fetched page, or None (noindex or a duplicate)."""
        if page.noindex:
            logger.debug("not yielding %s: the page asks not to be indexed", url)
            return None
        document = page.document
        if document.source in seen_sources or document.content_hash in seen_hashes:
            logger.debug("not yielding %s: same page as one already loaded", url)
            return None
        seen_sources.add(document.source)
        seen_hashes.add(document.content_hash)
        if _unchanged(known_validators(self._known, url), document):
            return Unchanged(url)
        return document


def _in_scope(url: str, scope: list[str]) -> bool:
    return any(same_site(url, site_root) for site_root in scope)


def _skipped_by_extension(url: str) -> bool:
    return posixpath.splitext(urlsplit(url).path)[1].lower() in SKIPPED_EXTENSIONS


def _unchanged(validators: Validators | None, document: Document) -> bool:
    """Whether a full response matches known validators as a 304 would have said."""
    if validators is None:
        return False
    if validators.etag and document.etag:
        return _weak(validators.etag) == _weak(document.etag)
    return bool(validators.last_modified) and validators.last_modified == document.last_modified


def _weak(etag: str) -> str:
    """An ETag compared weakly (RFC 9110): the ``W/`` prefix does not matter."""
    return etag.removeprefix("W/")
