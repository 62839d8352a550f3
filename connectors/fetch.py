"""Fetch one URL politely and safely: guarded redirects, size cap, validators, one retry.

``fetch`` is the single choke point where httpx exceptions become the typed
``ConnectorError``s of ``assistant.errors``; the connectors never see an httpx exception.

Example::

    with guarded_client(policy) as client:
        result = fetch(client, "https://example.com/", policy)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from connectors.base import FetchPolicy, Validators
from connectors.errors import BlockedURLError, ConnectorError, FetchError, TooLargeError
from connectors.netguard import check_url

__all__ = ["FetchResult", "HTTPStatusError", "NotModified", "fetch"]

logger = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({429, 503})
RETRY_DELAY_SECONDS = 0.5
# A server asking for a longer pause than this is not retried now: the next sync will be.
RETRY_AFTER_CAP_SECONDS = 5.0
# A body must arrive within this many read timeouts, so a trickling server cannot hold a
# worker forever while never tripping the per-read timeout.
BODY_DEADLINE_FACTOR = 4


class HTTPStatusError(FetchError):
    """The server answered with an HTTP error status (4xx or 5xx), kept in ``status``."""

    def __init__(self, source: str, reason: str, status: int) -> None:
        super().__init__(source, reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A successful response read in full.

    ``url`` is the final URL after redirects; ``content_type`` the lower-cased media type
    without parameters (empty when the server sent none).
    """

    url: str
    status: int
    headers: httpx.Headers
    content_type: str
    body: bytes
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True, slots=True)
class NotModified:
    """The server answered 304 to the validators we sent for ``url``."""

    url: str


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str


def fetch(
    client: httpx.Client,
    url: str,
    policy: FetchPolicy,
    validators: Validators | None = None,
) -> FetchResult | NotModified:
    """GET ``url``, following redirects hop by hop, each hop vetted by the SSRF guard.

    ``validators`` become ``If-None-Match``/``If-Modified-Since``; a 304 returns
    ``NotModified``. Every error carries ``url`` (the URL asked for) as its source.

    Raises:
        BlockedURLError: the URL or a redirect target is refused by the guard.
        TooLargeError: the body is larger than ``policy.max_bytes``.
        FetchError: timeout, connection failure, HTTP error status, redirect loop or too many
            redirects, an invalid URL.
    """
    headers = _conditional_headers(validators)
    visited: set[str] = set()
    current = url
    for _hop in range(policy.max_redirects + 1):
        try:
            check_url(current, policy)
        except ConnectorError as error:
            if current == url:
                raise
            reason = f"redirected to {current}, which is refused: {error.reason}"
            raise type(error)(url, reason) from error
        visited.add(str(httpx.URL(current).copy_with(fragment=None)))
        outcome = _request_with_retry(client, current, policy, headers)
        if isinstance(outcome, _Redirect):
            try:
                target = str(httpx.URL(current).join(outcome.location).copy_with(fragment=None))
            except httpx.InvalidURL as error:
                raise FetchError(url, f"redirected to an invalid URL: {error}") from error
            if target in visited:
                raise FetchError(url, f"redirect loop at {target}; fix the site's redirects")
            current = target
            continue
        if outcome.status == 304:
            if validators is None:
                raise FetchError(url, "HTTP 304 without a conditional request")
            return NotModified(url)
        return outcome
    raise FetchError(
        url, f"too many redirects (more than {policy.max_redirects}); fix the site's redirects"
    )


def _conditional_headers(validators: Validators | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if validators is not None:
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
    return headers


def _request_with_retry(
    client: httpx.Client, url: str, policy: FetchPolicy, headers: dict[str, str]
) -> FetchResult | _Redirect:
    """Send one request; retry once after a connect error, a 503 or a 429."""
    try:
        return _request_once(client, url, policy, headers)
    except _Retryable as retryable:
        logger.info("retrying %s in %.1fs: %s", url, retryable.delay, retryable.error.reason)
        time.sleep(retryable.delay)
    try:
        return _request_once(client, url, policy, headers)
    except _Retryable as retryable:
        raise retryable.error from None


class _Retryable(Exception):
    """An attempt that may be tried once more, after ``delay`` seconds."""

    def __init__(self, error: FetchError, delay: float) -> None:
        super().__init__(error.reason)
        self.error = error
        self.delay = delay


def _request_once(
    client: httpx.Client, url: str, policy: FetchPolicy, headers: dict[str, str]
) -> FetchResult | _Redirect:
    """Send one GET and read its body under the size cap; map httpx errors to ours."""
    try:
        with client.stream(
            "GET", url, headers=headers, timeout=httpx.Timeout(policy.timeout_seconds)
        ) as response:
            return _read_response(response, url, policy)
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        reason = _describe_transport_error(error, policy)
        raise _Retryable(FetchError(url, reason), RETRY_DELAY_SECONDS) from error
    except httpx.TimeoutException as error:
        raise FetchError(url, _describe_transport_error(error, policy)) from error
    except httpx.HTTPError as error:
        raise FetchError(url, f"request failed: {error or type(error).__name__}") from error
    except BlockedURLError as error:
        # Raised at connect time by the guarded backend (e.g. the name now resolves elsewhere).
        raise BlockedURLError(url, error.reason) from error


def _describe_transport_error(error: httpx.TransportError, policy: FetchPolicy) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"timed out after {policy.timeout_seconds:g}s"
    return f"connection failed: {error or type(error).__name__}"


def _read_response(
    response: httpx.Response, url: str, policy: FetchPolicy
) -> FetchResult | _Redirect:
    status = response.status_code
    location = response.headers.get("location")
    if status in REDIRECT_STATUSES and location:
        return _Redirect(location)
    if status in RETRY_STATUSES:
        raise _retryable_status(response, url)
    if status >= 400:
        raise HTTPStatusError(url, f"HTTP {status} {response.reason_phrase}".rstrip(), status)
    if status == 304:
        return _result(response, url, b"")
    if 300 <= status < 400:
        raise FetchError(url, f"HTTP {status} without a usable Location header")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise TooLargeError(
            url, f"the body is {int(declared)} bytes, over the limit of {policy.max_bytes}"
        )
    return _result(response, url, _read_body(response, url, policy))


def _read_body(response: httpx.Response, url: str, policy: FetchPolicy) -> bytes:
    """Read the (decoded) body, aborting as soon as it passes the size cap or the deadline."""
    deadline = time.monotonic() + policy.timeout_seconds * BODY_DEADLINE_FACTOR
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > policy.max_bytes:
            raise TooLargeError(url, f"the body passed the limit of {policy.max_bytes} bytes")
        if time.monotonic() > deadline:
            raise FetchError(
                url,
                f"timed out after {policy.timeout_seconds * BODY_DEADLINE_FACTOR:g}s "
                "reading the body",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _result(response: httpx.Response, url: str, body: bytes) -> FetchResult:
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return FetchResult(
        url=str(response.url) if response.url else url,
        status=response.status_code,
        headers=response.headers,
        content_type=media_type,
        body=body,
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
    )


def _retryable_status(response: httpx.Response, url: str) -> Exception:
    """A 429/503: retryable after Retry-After (or a short default) unless it asks too much."""
    status = response.status_code
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    wait = _retry_after_seconds(response.headers.get("retry-after"))
    if wait is None:
        return _Retryable(HTTPStatusError(url, reason, status), RETRY_DELAY_SECONDS)
    if wait > RETRY_AFTER_CAP_SECONDS:
        return HTTPStatusError(
            url, f"{reason}; the server asks to wait {wait:g}s, try again later", status
        )
    return _Retryable(HTTPStatusError(url, reason, status), wait)


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After (seconds or an HTTP date) into seconds from now; None if absent/bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
