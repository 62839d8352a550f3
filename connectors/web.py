"""Web pages as documents: canonical URLs, page conversion, robots.txt, and ``PageConnector``.

The sitemap and crawl connectors (``connectors.sitemap``, ``connectors.crawl``) build on the
pieces here: ``canonical_url`` and ``same_site`` for de-duplication and scope, ``PoliteFetcher``
for robots.txt and Crawl-delay, ``page_from_result`` to turn a response into a ``Document``.

Example::

    connector = PageConnector("https://example.com/pricing")
    for result in connector.load():
        ...
"""

from __future__ import annotations

import dataclasses
import logging
import posixpath
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx
from courlan import normalize_url

from connectors.base import FetchPolicy, KnownValidators, Validators
from connectors.document import Document, LoadResult, SourceFailure, Unchanged
from connectors.errors import (
    BlockedURLError,
    ConnectorError,
    FetchError,
    ParseError,
    UnsupportedContentError,
)
from connectors.fetch import FetchResult, HTTPStatusError, NotModified, fetch
from connectors.files import parse_bytes
from connectors.html import extract_html
from connectors.netguard import check_url, guarded_client, parse_http_url

__all__ = [
    "NO_VALIDATORS",
    "FetchedPage",
    "PageConnector",
    "PageOutcome",
    "PoliteFetcher",
    "RobotsRules",
    "canonical_url",
    "known_validators",
    "load_concurrently",
    "load_page",
    "page_from_result",
    "same_site",
]

logger = logging.getLogger(__name__)

NO_VALIDATORS: KnownValidators = MappingProxyType({})
"""An empty ``KnownValidators``: nothing known, every page fetched in full."""

HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})
BINARY_MEDIA_PREFIXES = ("image/", "audio/", "video/", "font/")
# Servers often label pages vaguely; for these the body is sniffed before trusting the label.
VAGUE_MEDIA_TYPES = frozenset({"", "text/plain", "application/octet-stream"})
TRACKING_PARAMETERS = frozenset(
    {"gclid", "dclid", "fbclid", "msclkid", "mc_cid", "mc_eid", "ref", "_ga", "_gl", "yclid"}
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")
MAX_CRAWL_DELAY_SECONDS = 30.0


def canonical_url(url: str) -> str:
    """Return the form of ``url`` used as a document's source and for de-duplication.

    Lower-cased scheme and host, default port dropped, dot segments resolved, fragment and
    tracking parameters (``utm_*``, ``gclid``, ``fbclid``, ``ref``, ...) removed, remaining
    query parameters sorted, an empty path written ``/``.

    >>> canonical_url("HTTP://Example.com:80/a/../b?utm_source=x&z=1&a=2#top")
    'http://example.com/b?a=2&z=1'
    """
    parts = urlsplit(url.strip())
    path = posixpath.normpath(parts.path) if parts.path not in ("", "/") else "/"
    if parts.path.endswith("/") and not path.endswith("/"):
        path += "/"
    # normpath keeps a leading "//"; a path never needs it.
    path = "/" + path.lstrip("/")
    query = urlencode(
        [(name, value) for name, value in parse_qsl(parts.query) if not _is_tracking(name)]
    )
    cleaned = urlunsplit((parts.scheme, parts.netloc, path, query, ""))
    normalised: str = normalize_url(cleaned, strict=False, trailing_slash=True)
    return normalised.split("#", 1)[0]


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMETERS or lowered.startswith(TRACKING_PREFIXES)


def same_site(url: str, root: str) -> bool:
    """Tell whether ``url`` is on the same site as ``root``: same host and port.

    An http root also accepts https on the same host (an upgrade), with default ports.
    """
    candidate, reference = httpx.URL(url), httpx.URL(root)
    if candidate.host.lower() != reference.host.lower():
        return False
    if candidate.scheme == reference.scheme:
        return candidate.port == reference.port
    upgraded = reference.scheme == "http" and candidate.scheme == "https"
    return upgraded and reference.port is None and candidate.port is None


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A fetched page as a document, plus what a crawler needs: its links and noindex.

    ``final_url`` is where the request ended after redirects.
    """

    final_url: str
    document: Document
    links: tuple[str, ...]
    noindex: bool


def page_from_result(result: FetchResult) -> FetchedPage:
    """Turn a response into a document: HTML is extracted, other kinds parsed by content.

    Raises:
        UnsupportedContentError: images, audio, video, fonts and other binaries.
        ParseError: a corrupt or empty document.
    """
    media_type = result.content_type
    if media_type.startswith(BINARY_MEDIA_PREFIXES):
        raise UnsupportedContentError(
            result.url, f"{media_type} is not a document kind that can be read"
        )
    if media_type in HTML_MEDIA_TYPES or (
        media_type in VAGUE_MEDIA_TYPES and _looks_like_html(result.body)
    ):
        return _html_page(result)
    name = unquote(posixpath.basename(urlsplit(result.url).path)) or None
    document = parse_bytes(
        result.body,
        result.url,
        name_hint=name,
        content_type_hint=result.headers.get("content-type") or None,
    )
    document = dataclasses.replace(
        document,
        source=canonical_url(result.url),
        etag=result.etag,
        last_modified=result.last_modified,
    )
    return FetchedPage(final_url=result.url, document=document, links=(), noindex=False)


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<!doctype html") or b"<html" in head


def _html_page(result: FetchResult) -> FetchedPage:
    page = extract_html(result.body, result.url, encoding=_charset(result.headers))
    source = canonical_url(result.url)
    if page.canonical_url and same_site(page.canonical_url, result.url):
        source = canonical_url(page.canonical_url)
    document = Document(
        source=source,
        title=page.title,
        sections=tuple(page.sections),
        content_type="html",
        etag=result.etag,
        last_modified=result.last_modified,
    )
    return FetchedPage(
        final_url=result.url, document=document, links=tuple(page.links), noindex=page.noindex
    )


def _charset(headers: httpx.Headers) -> str | None:
    """The ``charset`` parameter of the Content-Type header, if any."""
    content_type = str(headers.get("content-type", ""))
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip(' "'):
            return value.strip(' "')
    return None


def known_validators(known: KnownValidators, url: str) -> Validators | None:
    """Look ``url`` up in ``known`` as given, then in its canonical form."""
    return known.get(url) or known.get(canonical_url(url))


def load_page(
    client: httpx.Client, url: str, policy: FetchPolicy, known: KnownValidators
) -> FetchedPage | Unchanged:
    """Fetch ``url`` (conditionally when ``known`` has validators) and convert it.

    Raises:
        ConnectorError: any typed failure of the fetch or the conversion.
    """
    result = fetch(client, url, policy, known_validators(known, url))
    if isinstance(result, NotModified):
        return Unchanged(url)
    return page_from_result(result)


class PageConnector:
    """One web page, named explicitly by the user.

    robots.txt and ``noindex`` are not applied: the user asked for this page by name (the
    crawl and sitemap connectors apply both). The SSRF guard always applies.

    Example::

        connector = PageConnector("https://example.com/faq", policy=FetchPolicy())
        results = list(connector.load())  # [Document] or [Unchanged] or [SourceFailure]

    ``load()`` raises ``BlockedURLError`` or ``FetchError`` at once when the URL itself is
    invalid or refused; any other failure of the page is yielded as a ``SourceFailure``.
    """

    def __init__(
        self,
        url: str,
        *,
        policy: FetchPolicy = FetchPolicy(),  # noqa: B008 - frozen dataclass, safe to share
        known: KnownValidators = NO_VALIDATORS,
    ) -> None:
        self.source = url
        self.complete = False
        self._policy = policy
        self._known = known

    def load(self) -> Iterator[LoadResult]:
        """Yield the page as a ``Document``, ``Unchanged`` or ``SourceFailure``."""
        parse_http_url(self.source)
        try:
            check_url(self.source, self._policy)
        except FetchError as error:
            # Unresolvable: a failure of the page. A refusal (BlockedURLError) propagates.
            yield SourceFailure(self.source, error.reason, error)
            self.complete = True
            return
        with guarded_client(self._policy) as client:
            try:
                loaded = load_page(client, self.source, self._policy, self._known)
            except ConnectorError as error:
                yield SourceFailure(self.source, error.reason, error)
            else:
                yield loaded if isinstance(loaded, Unchanged) else loaded.document
        self.complete = True


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """The robots.txt rules of one origin, or the failure that made it disallow all."""

    parser: RobotFileParser | None
    failure: ConnectorError | None = None

    def allows(self, url: str, user_agent: str) -> bool:
        """Tell whether ``user_agent`` may fetch ``url`` (no file: allowed; failure: not)."""
        if self.failure is not None:
            return False
        return self.parser is None or self.parser.can_fetch(user_agent, url)

    def crawl_delay(self, user_agent: str) -> float:
        """Seconds to leave between requests to this origin (0 when none is asked, capped)."""
        if self.parser is None:
            return 0.0
        delay = self.parser.crawl_delay(user_agent)
        try:
            seconds = float(delay) if delay is not None else 0.0
        except ValueError:
            return 0.0
        return min(max(seconds, 0.0), MAX_CRAWL_DELAY_SECONDS)


class PoliteFetcher:
    """Loads pages for the sitemap and crawl connectors, honouring robots.txt and Crawl-delay.

    Thread-safe: robots.txt is read once per origin, and requests to one origin are spaced by
    its Crawl-delay however many threads fetch.
    """

    def __init__(self, client: httpx.Client, policy: FetchPolicy) -> None:
        self.client = client
        self.policy = policy
        self._lock = threading.Lock()
        self._robots: dict[str, RobotsRules] = {}
        self._origin_locks: dict[str, threading.Lock] = {}
        self._next_request_at: dict[str, float] = {}

    def robots_for(self, url: str) -> RobotsRules:
        """Return the robots.txt rules of ``url``'s origin, reading them on first use.

        A missing file or any 4xx allows everything; a 5xx, a refused or unreachable
        robots.txt disallows everything and is kept in ``RobotsRules.failure``.
        """
        origin = _origin(url)
        with self._lock:
            origin_lock = self._origin_locks.setdefault(origin, threading.Lock())
        with origin_lock:
            rules = self._robots.get(origin)
            if rules is None:
                rules = self._read_robots(origin)
                self._robots[origin] = rules
        return rules

    def _read_robots(self, origin: str) -> RobotsRules:
        robots_url = f"{origin}/robots.txt"
        try:
            result = fetch(self.client, robots_url, self.policy)
        except HTTPStatusError as error:
            if 400 <= error.status < 500:
                return RobotsRules(parser=None)
            return RobotsRules(parser=None, failure=_robots_failure(origin, error))
        except ConnectorError as error:
            return RobotsRules(parser=None, failure=_robots_failure(origin, error))
        parser = RobotFileParser(robots_url)
        if isinstance(result, FetchResult):
            parser.parse(result.body.decode("utf-8", errors="replace").splitlines())
        return RobotsRules(parser=parser)

    def load(
        self, url: str, known: KnownValidators, *, conditional: bool = True
    ) -> FetchedPage | Unchanged:
        """Load ``url`` if robots.txt allows it, after its origin's Crawl-delay.

        With ``conditional=False`` no validators are sent (the caller needs the body).

        Raises:
            BlockedURLError: the guard refuses the URL, or robots.txt disallows the page or
                could not be read.
            ConnectorError: the fetch or the conversion failed.
        """
        # The guard first: a refused host gets the guard's reason, and no robots.txt request.
        check_url(url, self.policy)
        if self.policy.respect_robots:
            rules = self.robots_for(url)
            if not rules.allows(url, self.policy.user_agent):
                if rules.failure is not None:
                    raise BlockedURLError(url, rules.failure.reason)
                raise BlockedURLError(url, "disallowed by the site's robots.txt")
            self._wait_turn(_origin(url), rules.crawl_delay(self.policy.user_agent))
        return load_page(self.client, url, self.policy, known if conditional else NO_VALIDATORS)

    def _wait_turn(self, origin: str, delay: float) -> None:
        """Sleep until ``delay`` seconds have passed since the last request to ``origin``."""
        if delay <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_request_at.get(origin, now))
            self._next_request_at[origin] = start + delay
        if start > now:
            time.sleep(start - now)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _robots_failure(origin: str, error: ConnectorError) -> BlockedURLError:
    return BlockedURLError(
        f"{origin}/robots.txt",
        f"robots.txt could not be read ({error.reason}), so the site is treated as "
        "disallowing all pages; fix robots.txt or set respect_robots=False",
    )


PageOutcome = FetchedPage | Unchanged | ConnectorError
"""What loading one page gives: the page, its ``Unchanged`` marker, or the typed failure."""


def load_concurrently(
    fetcher: PoliteFetcher,
    urls: Iterable[str],
    known: KnownValidators,
    *,
    conditional: bool = True,
) -> Iterator[tuple[str, PageOutcome]]:
    """Load ``urls`` on ``policy.concurrency`` threads, yielding ``(url, outcome)`` as each ends.

    Results come in completion order. At most ``concurrency`` requests are in flight, and
    closing the iterator early cancels the pages not yet started.
    """
    url_iterator = iter(urls)
    executor = ThreadPoolExecutor(
        max_workers=max(fetcher.policy.concurrency, 1), thread_name_prefix="connector-fetch"
    )
    pending: dict[Future[FetchedPage | Unchanged], str] = {}

    def submit_next() -> None:
        url = next(url_iterator, None)
        if url is not None:
            future = executor.submit(fetcher.load, url, known, conditional=conditional)
            pending[future] = url

    try:
        for _slot in range(max(fetcher.policy.concurrency, 1)):
            submit_next()
        while pending:
            done, _running = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                url = pending.pop(future)
                yield url, _outcome(future, url)
                submit_next()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _outcome(future: Future[FetchedPage | Unchanged], url: str) -> PageOutcome:
    try:
        return future.result()
    except ConnectorError as error:
        return error
    except Exception as error:
        # One malformed page must not end a batch of thousands: report it as that page's
        # failure, and log the traceback since it points at a defect in a parser.
        logger.exception("unexpected error while loading %s", url)
        return ParseError(url, f"unexpected error while reading the page: {error!r}")
