"""Requests per minute, counted per key and per widget visitor, with the ``limits`` library.

Counters live in the process (``limits``' memory storage) or, when ``ASSISTANT_REDIS_URL`` is
set, in Redis, so every API replica counts against the same budget. The window is a sliding
window counter: constant memory per key, no burst of twice the limit at a minute's edge, and a
``Retry-After`` that says when one more request fits.

Redis holds nothing that cannot be rebuilt: while it fails, requests are counted in this
process instead (logged once per outage), so limits loosen to per-replica budgets but never go
away, and no request fails because of the counter store.

>>> limiter = RateLimiter()  # doctest: +SKIP
>>> await limiter.hit("key", ("4f2a",), per_minute=120)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from urllib.parse import quote

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool

from assistant.errors import RateLimitedError
from assistant.settings import Settings

__all__ = ["RateLimiter", "limits_storage_uri"]

logger = logging.getLogger(__name__)

_KEY_PREFIX = "assistant-ratelimit"


def limits_storage_uri(redis_url: str) -> str:
    """The ``limits`` async storage URI for a Redis URL (``redis://``, ``rediss://``,
    ``unix://``); user and password stay in it, as ``redis.asyncio`` reads them from there.

    >>> limits_storage_uri("redis://:secret@cache:6379/0")
    'async+redis://:secret@cache:6379/0'
    >>> limits_storage_uri("unix:///run/redis.sock?db=1")
    'async+redis+unix:///run/redis.sock?db=1'
    """
    scheme, separator, rest = redis_url.partition("://")
    if not separator or scheme not in ("redis", "rediss", "unix"):
        raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
    return f"async+{'redis+unix' if scheme == 'unix' else scheme}://{rest}"


class RateLimiter:
    """Sliding-window request counters, in memory or in Redis (``redis_url``)."""

    def __init__(self, redis_url: str | None = None) -> None:
        self._redis_pool: ConnectionPool | None = None
        storage: Storage
        if redis_url:
            # Our own pool, so that shutting down can close its connections (``limits`` has no
            # close of its own); short timeouts, as a slow counter must not stall requests.
            self._redis_pool = ConnectionPool.from_url(
                redis_url, socket_connect_timeout=2.0, socket_timeout=2.0
            )
            storage = RedisStorage(
                limits_storage_uri(redis_url),
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=_KEY_PREFIX,
                connection_pool=self._redis_pool,  # type: ignore[arg-type]
            )
        else:
            storage = MemoryStorage()
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        # Counts while Redis fails; ``_degraded`` makes the warning once per outage.
        self._fallback = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._degraded = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        """Counters in Redis when ``ASSISTANT_REDIS_URL`` is set, else in this process."""
        url = settings.redis_url.get_secret_value() if settings.redis_url else None
        return cls(url)

    @property
    def uses_redis(self) -> bool:
        """Whether the counters are kept in Redis."""
        return self._redis_pool is not None

    async def hit(self, scope: str, identity: Sequence[str], per_minute: int) -> None:
        """Count one request of ``identity`` within ``scope`` against ``per_minute``.

        Raises:
            RateLimitedError: the budget is spent; ``retry_after`` says when one more fits.
        """
        item = RateLimitItemPerMinute(per_minute)
        # Quoted, so that no identity can spell another one ("a/b" + "c" vs "a" + "b/c").
        identifiers = [quote(scope, safe=""), *(quote(part, safe="") for part in identity)]
        try:
            allowed = await self._limiter.hit(item, *identifiers)
            stats = None if allowed else await self._limiter.get_window_stats(item, *identifiers)
            if self._degraded:
                self._degraded = False
                logger.warning("rate limits are counted in Redis again")
        except StorageError as exc:
            if not self._degraded:
                self._degraded = True
                logger.warning(
                    "the rate-limit store failed (%s): counting in this process until it is back",
                    type(exc.storage_error).__name__,
                )
            allowed = await self._fallback.hit(item, *identifiers)
            stats = None if allowed else await self._fallback.get_window_stats(item, *identifiers)
        if stats is None:
            return
        raise RateLimitedError(
            f"too many requests: the limit is {per_minute} per minute for this {scope}; "
            "wait and try again",
            retry_after=max(1.0, stats.reset_time - time.time()),
        )

    async def ping(self) -> bool:
        """Whether the counter store answers (always true in memory)."""
        try:
            return bool(await self._storage.check())
        except Exception:  # any failure of the store means "not ready", whatever its type
            return False

    async def aclose(self) -> None:
        """Close the Redis connections, if any."""
        if self._redis_pool is not None:
            await self._redis_pool.disconnect()
