"""When the client sends a request again, and how long it waits first: one policy, on tenacity.

Sent again, up to ``max_retries`` times:

- any request whose connection could not be made (nothing reached the server);
- any request answered ``429`` (refused before anything was done), after the ``Retry-After``
  the server asked for — unless that is over ``MAX_RETRY_AFTER_SECONDS``, when the caller gets
  ``ApiRateLimitedError`` at once and decides;
- idempotent requests (reads, searches, answers not yet being read) that timed out, lost their
  connection, or were answered ``502``, ``503`` or ``504``.

Waits grow exponentially from ``backoff`` seconds, with jitter, up to ``MAX_BACKOFF_SECONDS``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import tenacity

from assistant.client._errors import parse_retry_after

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "MAX_RETRY_AFTER_SECONDS",
    "RETRY_STATUSES",
    "RetryPolicy",
    "RetryableResponse",
]

logger = logging.getLogger("assistant.client")

MAX_RETRY_AFTER_SECONDS = 30.0
"""The longest ``Retry-After`` the client waits out by itself."""

MAX_BACKOFF_SECONDS = 8.0
"""The longest wait between two tries when the server named none."""

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses that may be worth another try (see the module's rules for which requests)."""

_StateCheck = Callable[[tenacity.RetryCallState], bool]
_StateWait = Callable[[tenacity.RetryCallState], float]
_StateHook = Callable[[tenacity.RetryCallState], None]

# Raised before the request left this machine: safe to send again whatever it does.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class RetryableResponse(Exception):
    """A response with a status in ``RETRY_STATUSES``, raised inside a try so that the policy
    can decide; its body has been read, so it can become the final error."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_retries`` further tries after the first, waits starting at ``backoff`` seconds."""

    max_retries: int = 2
    backoff: float = 0.5

    def should_retry(self, failure: BaseException, *, idempotent: bool) -> bool:
        """Whether ``failure`` of a request is worth another try (see the module's rules)."""
        if isinstance(failure, _NOT_SENT):
            return True
        if isinstance(failure, RetryableResponse):
            if failure.response.status_code == 429:
                return failure.retry_after is None or failure.retry_after <= MAX_RETRY_AFTER_SECONDS
            return idempotent
        return idempotent and isinstance(failure, httpx.TransportError)

    def wait_seconds(self, attempt: int, failure: BaseException | None) -> float:
        """Seconds to wait after try number ``attempt`` (1-based) failed with ``failure``."""
        if isinstance(failure, RetryableResponse) and failure.retry_after is not None:
            return float(failure.retry_after)
        ceiling = min(MAX_BACKOFF_SECONDS, self.backoff * 2.0 ** (attempt - 1))
        # Half fixed, half random: clients that failed together do not all come back together.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def retrying(self, *, idempotent: bool) -> tenacity.Retrying:
        """The tries of one synchronous request."""
        retry, wait, before_sleep = self._hooks(idempotent)
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            retry=retry,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )

    def async_retrying(self, *, idempotent: bool) -> tenacity.AsyncRetrying:
        """The tries of one asynchronous request (waits with ``asyncio.sleep``)."""
        retry, wait, before_sleep = self._hooks(idempotent)
        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            retry=retry,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
        )

    def _hooks(self, idempotent: bool) -> tuple[_StateCheck, _StateWait, _StateHook]:
        def retry(state: tenacity.RetryCallState) -> bool:
            failure = state.outcome.exception() if state.outcome else None
            return failure is not None and self.should_retry(failure, idempotent=idempotent)

        def wait(state: tenacity.RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            return self.wait_seconds(state.attempt_number, failure)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            seconds = state.next_action.sleep if state.next_action else 0.0
            logger.info("request failed (%s); trying again in %.2f s", failure, seconds)

        return retry, wait, before_sleep
