"""The token-cache contract, run against every cache: LRU, SQLite file, Redis and tiered."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.knowledge.redis_token_cache import RedisTokenCache
from assistant.knowledge.token_cache import (
    InProcessTokenCache,
    SQLiteTokenCache,
    TieredTokenCache,
    TokenCache,
)
from assistant.testing.token_cache_contract import TokenCacheContract
from tests.support.servers import free_loopback_port


def _unreachable_redis() -> RedisTokenCache:
    return RedisTokenCache.from_url(f"redis://127.0.0.1:{free_loopback_port()}/0")


class TestInProcess(TokenCacheContract):
    @pytest.fixture
    def cache(self) -> Iterator[TokenCache]:
        cache = InProcessTokenCache(max_bytes=1 << 22)
        yield cache
        cache.close()

    @pytest.fixture
    def down_cache(self) -> TokenCache:
        pytest.skip("the in-process cache has no backend that could be down")


class TestSQLite(TokenCacheContract):
    @pytest.fixture
    def cache(self, tmp_path: Path) -> Iterator[TokenCache]:
        cache = SQLiteTokenCache(tmp_path / "tokens.db")
        yield cache
        cache.close()

    @pytest.fixture
    def down_cache(self, tmp_path: Path) -> Iterator[TokenCache]:
        # A directory where the file should be: SQLite cannot open it.
        (tmp_path / "tokens.db").mkdir()
        cache = SQLiteTokenCache(tmp_path / "tokens.db")
        yield cache
        cache.close()


@pytest.mark.integration
class TestRedis(TokenCacheContract):
    @pytest.fixture
    def cache(self, redis_url: str) -> Iterator[TokenCache]:
        prefix = f"contract:{uuid.uuid4().hex}:"
        cache = RedisTokenCache.from_url(redis_url, prefix=prefix)
        yield cache
        cache.close()
        cleanup = RedisTokenCache.from_url(redis_url)
        try:
            keys = list(cleanup.client.scan_iter(match=f"{prefix}*"))
            if keys:
                cleanup.client.delete(*keys)
        finally:
            cleanup.close()

    @pytest.fixture
    def down_cache(self) -> Iterator[TokenCache]:
        cache = _unreachable_redis()
        yield cache
        cache.close()


class TestTiered(TokenCacheContract):
    @pytest.fixture
    def cache(self, tmp_path: Path) -> Iterator[TokenCache]:
        cache = TieredTokenCache(
            InProcessTokenCache(max_bytes=1 << 22), SQLiteTokenCache(tmp_path / "tokens.db")
        )
        yield cache
        cache.close()

    @pytest.fixture
    def down_cache(self) -> Iterator[TokenCache]:
        # A first tier too small to hold a matrix, so every read reaches the unreachable Redis.
        cache = TieredTokenCache(InProcessTokenCache(max_bytes=16), _unreachable_redis())
        yield cache
        cache.close()


class _ForgetsWrites(InProcessTokenCache):
    """A broken cache: it accepts writes and keeps nothing."""

    def put_many(self, items: object) -> None:
        del items


def test_the_suite_catches_a_cache_that_forgets_writes() -> None:
    with pytest.raises(AssertionError):
        TokenCacheContract().test_put_many_then_get_many_round_trips_in_order(
            _ForgetsWrites(max_bytes=1 << 20)
        )
