"""The Redis tier of the token cache, shared by every process of a deployment.

Like every ``TokenCache`` it never fails a query: a Redis error is logged and answered as a miss.

Example::

    cache = RedisTokenCache.from_url("redis://127.0.0.1:6379/0", ttl_seconds=7 * 86400)
    cache.put_many({key: tokens})
    [tokens] = cache.get_many([key])
    cache.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import torch
from redis.backoff import NoBackoff
from redis.retry import Retry

from assistant.errors import ConfigError
from assistant.knowledge.token_cache import (
    TokenCacheStats,
    check_format,
    decode_or_none,
    encode_all,
    slices,
)
from assistant.knowledge.token_codec import DEFAULT_FORMAT

__all__ = ["REDIS_MGET_BATCH", "RedisTokenCache"]

logger = logging.getLogger(__name__)

REDIS_MGET_BATCH = 1000
"""Keys per MGET (and SETs per pipeline round-trip) sent to Redis."""


class RedisTokenCache:
    """Token matrices in Redis, shared by every process of a deployment.

    The client must be created with ``decode_responses=False`` (values are binary). Reads are one
    pipelined round-trip of MGETs of up to 1000 keys; writes one pipeline of SETs (with EX when
    ``ttl_seconds`` is set). Any Redis error is logged as a warning and answered as all misses or
    a skipped write; for ``backoff_seconds`` afterwards the cache answers misses without touching
    the network, then tries again, so a restarted Redis is used again.

    Give the client short timeouts and at most one retry without backoff (``from_url`` does):
    redis-py's defaults (5 s timeouts, 10 retries with backoff up to 1 s) would stall the query
    that first meets a stopped Redis for seconds.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "assistant:tok:",
        format: str = DEFAULT_FORMAT,
        ttl_seconds: int | None = None,
        backoff_seconds: float = 5.0,
    ) -> None:
        check_format(format)
        if client.get_connection_kwargs().get("decode_responses"):
            raise ConfigError("the Redis client for token caches needs decode_responses=False")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ConfigError(f"ttl_seconds must be positive or None, got {ttl_seconds}")
        self.client = client
        self.prefix = prefix
        self.format = format
        self.ttl_seconds = ttl_seconds
        self.backoff_seconds = backoff_seconds
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._failing = False
        self._hits = 0
        self._misses = 0
        self._errors = 0
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "assistant:tok:",
        format: str = DEFAULT_FORMAT,
        ttl_seconds: int | None = None,
        backoff_seconds: float = 5.0,
        timeout_seconds: float = 0.5,
    ) -> RedisTokenCache:
        """Connect lazily to ``url`` (``redis://[[user]:password@]host[:port][/db]``).

        Connect and socket timeouts are ``timeout_seconds``; a broken pooled connection is retried
        once (a server-side idle close), never more, so a stopped Redis fails fast.

        Raises:
            ConfigError: the URL cannot be parsed.
        """
        try:
            client = redis.Redis.from_url(
                url,
                decode_responses=False,
                socket_connect_timeout=timeout_seconds,
                socket_timeout=timeout_seconds,
                retry=Retry(NoBackoff(), 1),
            )
        except ValueError as exc:
            # The URL may hold a password, so the message names the problem, not the URL.
            raise ConfigError(
                f"invalid Redis URL for the token cache: {exc}; expected "
                "redis://[[user]:password@]host[:port][/db]"
            ) from None
        return cls(
            client,
            prefix=prefix,
            format=format,
            ttl_seconds=ttl_seconds,
            backoff_seconds=backoff_seconds,
        )

    def get_many(self, keys: Sequence[str]) -> list[torch.Tensor | None]:
        """Matrices for ``keys`` in order (None = miss); all misses while Redis is failing."""
        values = self.get_many_encoded(keys)
        return [decode_or_none(key, value) for key, value in zip(keys, values, strict=True)]

    def get_many_encoded(self, keys: Sequence[str]) -> list[bytes | None]:
        """Encoded values for ``keys`` in order (None = miss); all misses while Redis fails."""
        values: list[Any] = [None] * len(keys)
        if keys and self._available():
            try:
                pipeline = self.client.pipeline(transaction=False)
                for batch in slices(list(keys), REDIS_MGET_BATCH):
                    pipeline.mget([self.prefix + key for key in batch])
                replies = pipeline.execute()
                values = [value for reply in replies for value in reply]
                self._succeeded()
            except (redis.RedisError, OSError) as exc:
                self._failed(exc)
        hits = sum(value is not None for value in values)
        with self._lock:
            self._hits += hits
            self._misses += len(keys) - hits
        return values

    def put_many(self, items: Mapping[str, torch.Tensor]) -> None:
        """Store matrices; skipped (with a warning) while Redis is failing."""
        if not items or not self._available():
            return
        self.put_many_encoded(encode_all(items, self.format))

    def put_many_encoded(self, items: Mapping[str, bytes]) -> None:
        """Store encoded values; skipped (with a warning) while Redis is failing."""
        if not items or not self._available():
            return
        encoded = items
        try:
            for batch in slices(list(encoded.items()), REDIS_MGET_BATCH):
                pipeline = self.client.pipeline(transaction=False)
                for key, data in batch:
                    pipeline.set(self.prefix + key, data, ex=self.ttl_seconds)
                pipeline.execute()
            self._succeeded()
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)

    def stats(self) -> TokenCacheStats:
        """Hits, misses and errors (entries and bytes are not counted in Redis)."""
        with self._lock:
            return TokenCacheStats(self._hits, self._misses, errors=self._errors)

    def close(self) -> None:
        """Close the client's connections; later reads miss and writes are skipped (redis-py
        would otherwise reconnect on the next command)."""
        with self._lock:
            self._closed = True
        try:
            self.client.close()
        except (redis.RedisError, OSError) as exc:
            logger.debug("token cache: closing the Redis client failed: %s", exc)

    def _available(self) -> bool:
        with self._lock:
            return not self._closed and time.monotonic() >= self._retry_at

    def _succeeded(self) -> None:
        with self._lock:
            if self._failing:
                logger.info("token cache: Redis is reachable again")
            self._failing = False

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._errors += 1
            self._retry_at = time.monotonic() + self.backoff_seconds
            first_failure = not self._failing
            self._failing = True
        connection = self.client.get_connection_kwargs()
        # redis-py messages name host and port, never credentials; the URL is not logged.
        logger.log(
            logging.WARNING if first_failure else logging.DEBUG,
            "token cache: Redis at %s:%s failed (%s: %s); answering misses for %.1f s",
            connection.get("host", "?"),
            connection.get("port", "?"),
            type(exc).__name__,
            exc,
            self.backoff_seconds,
        )
