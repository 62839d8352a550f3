"""The token-cache contract: one pytest suite every ``TokenCache`` must pass.

Subclass ``TokenCacheContract`` and give it two fixtures: ``cache`` (a working cache, closed
by the fixture) and ``down_cache`` (one whose backend cannot be reached; ``pytest.skip`` for
a cache without a backend, such as the in-process LRU).
"""

from __future__ import annotations

import logging

import pytest
import torch

from assistant.knowledge.token_cache import TokenCache

__all__ = ["TokenCacheContract"]


def _matrix(rows: int, seed: int, dimension: int = 16) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(rows, dimension, generator=generator), dim=1)


class TokenCacheContract:
    """The token-cache contract; subclasses supply ``cache`` and ``down_cache`` fixtures."""

    def test_put_many_then_get_many_round_trips_in_order(self, cache: TokenCache) -> None:
        items = {"contract:a": _matrix(3, 1), "contract:b": _matrix(5, 2)}
        cache.put_many(items)

        found = cache.get_many(["contract:b", "contract:a", "contract:b"])

        for key, value in zip(["contract:b", "contract:a", "contract:b"], found, strict=True):
            assert value is not None and value.dtype == torch.float32
            assert value.shape == items[key].shape
            torch.testing.assert_close(value, items[key], atol=1 / 64, rtol=0)

    def test_unknown_keys_miss(self, cache: TokenCache) -> None:
        assert cache.get_many(["contract:never-stored", "contract:nor-this"]) == [None, None]
        assert cache.get_many([]) == []

    def test_a_second_put_overwrites(self, cache: TokenCache) -> None:
        cache.put_many({"contract:k": _matrix(2, 3)})
        replacement = _matrix(4, 4)
        cache.put_many({"contract:k": replacement})

        [value] = cache.get_many(["contract:k"])

        assert value is not None and value.shape == replacement.shape
        torch.testing.assert_close(value, replacement, atol=1 / 64, rtol=0)

    def test_int8_matrices_keep_their_values_within_one_step(self, cache: TokenCache) -> None:
        # The stored format quantises each token to int8 (or finer): values come back within
        # one step of the token's own scale, zero rows stay zero, extremes stay extremes.
        matrix = torch.randn(40, 384, generator=torch.Generator().manual_seed(5))
        matrix[0] = 0.0
        matrix[1] = torch.where(torch.arange(384) % 2 == 0, 1.0, -1.0)
        cache.put_many({"contract:int8": matrix})

        [value] = cache.get_many(["contract:int8"])

        assert value is not None
        scales = matrix.abs().amax(dim=1, keepdim=True)
        assert bool(((value - matrix).abs() <= scales / 127 + 1e-6).all())
        assert value[0].abs().sum().item() == 0.0
        torch.testing.assert_close(value[1], matrix[1], atol=1e-6, rtol=0)

    def test_stats_count_hits_and_misses(self, cache: TokenCache) -> None:
        before = cache.stats()
        cache.put_many({"contract:s": _matrix(2, 6)})
        cache.get_many(["contract:s", "contract:missing"])

        after = cache.stats()

        assert after.hits - before.hits >= 1
        assert after.misses - before.misses >= 1

    def test_a_closed_cache_misses_skips_writes_and_closes_again(self, cache: TokenCache) -> None:
        cache.put_many({"contract:c": _matrix(2, 7)})
        cache.close()

        assert cache.get_many(["contract:c"]) == [None]
        cache.put_many({"contract:d": _matrix(2, 8)})
        assert cache.get_many(["contract:d"]) == [None]
        cache.close()

    def test_a_backend_that_is_down_logs_and_misses_never_raises(
        self, down_cache: TokenCache, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING):
            down_cache.put_many({"contract:x": _matrix(2, 9)})
            assert down_cache.get_many(["contract:x", "contract:y"]) == [None, None]
            down_cache.close()

        # Opening may be where the failure shows (a file that cannot be opened).
        records = caplog.get_records("setup") + caplog.records
        assert any(record.levelno >= logging.WARNING for record in records)
