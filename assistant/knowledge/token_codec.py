"""Binary encoding of token matrices for the token caches.

A value is a 10-byte header followed by the payload, all little-endian::

    offset 0  2 bytes  magic b"TK"
    offset 2  uint8    version (1)
    offset 3  uint8    format: 1 = fp16, 2 = int8, 3 = int4
    offset 4  uint32   n_tokens
    offset 8  uint16   dimension d
    offset 10 payload

Formats and bytes per token vector of dimension d:

- ``"int8"`` (default), ``d + 2`` bytes: one float16 scale per token (``s`` = max |x| of the
  token), then the n x d int8 values ``q = round(x / s * 127)``. Decoding gives ``q * s / 127``;
  the error per element is at most ``s / 127`` (half a step plus the rounding of ``s`` to
  float16) for tokens whose ``s`` lies in float16's normal range (above 6.1e-5), which unit-norm
  token vectors always do. 384-d: 386 bytes per token.
- ``"int4"``, ``ceil(d / 2) + 2`` bytes: like int8 with 15 levels, ``q = round(x / s * 7)`` in
  [-7, 7], two values per byte (low nibble first). The error per element is at most ``s / 14``
  plus the scale's rounding. 384-d: 194 bytes per token (a quarter of fp16, plus the scale).
- ``"fp16"``, ``2 * d`` bytes: the values as float16 (relative error at most 2**-11).
  384-d: 768 bytes per token.

The header makes a value self-describing: a reader never guesses the format or the shape, and a
truncated or foreign value is refused with ``CacheError``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import torch

from assistant.errors import CacheError
from assistant.knowledge.maxsim import PackedTokens, pack_token_matrices

__all__ = [
    "DEFAULT_FORMAT",
    "HEADER_SIZE",
    "TOKEN_FORMATS",
    "bytes_per_token",
    "decode_packed",
    "decode_tokens",
    "encode_tokens",
]

TOKEN_FORMATS = ("int8", "int4", "fp16")
"""The format names ``encode_tokens`` accepts."""

DEFAULT_FORMAT = "int8"
"""The format the caches use unless told otherwise."""

_MAGIC = b"TK"
_VERSION = 1
_HEADER = struct.Struct("<2sBBIH")
HEADER_SIZE = _HEADER.size
"""Bytes of the header in front of every encoded value."""

_FORMAT_CODES = {"fp16": 1, "int8": 2, "int4": 3}
_LEVELS = {"int8": 127.0, "int4": 7.0}
_FORMAT_NAMES = {code: name for name, code in _FORMAT_CODES.items()}
_FLOAT16 = np.dtype("<f2")
_FLOAT16_MAX = float(np.finfo(np.float16).max)


def bytes_per_token(dimension: int, format: str = DEFAULT_FORMAT) -> int:
    """Bytes one token vector of ``dimension`` values takes in ``format`` (header excluded)."""
    if format == "int8":
        return dimension + 2
    if format == "int4":
        return (dimension + 1) // 2 + 2
    if format == "fp16":
        return 2 * dimension
    raise CacheError(f"unknown token format {format!r}; use one of {', '.join(TOKEN_FORMATS)}")


def encode_tokens(matrix: torch.Tensor, format: str = DEFAULT_FORMAT) -> bytes:
    """Encode a (n_tokens, d) float matrix as a self-describing byte string.

    Raises:
        CacheError: unknown format, a matrix that is not 2-D, a dimension over 65535, or values
            that are not finite or too large for float16 (above 65504).
    """
    if format not in _FORMAT_CODES:
        raise CacheError(f"unknown token format {format!r}; use one of {', '.join(TOKEN_FORMATS)}")
    if matrix.dim() != 2:
        raise CacheError(f"a token matrix must be (n_tokens, d), got {tuple(matrix.shape)}")
    n_tokens, dimension = (int(size) for size in matrix.shape)
    if dimension > 0xFFFF or n_tokens > 0xFFFFFFFF:
        raise CacheError(f"token matrix {n_tokens}x{dimension} is too large to encode")
    values = matrix.detach().to(device="cpu", dtype=torch.float32).numpy()
    if not np.isfinite(values).all() or (values.size and np.abs(values).max() > _FLOAT16_MAX):
        raise CacheError("token matrix holds values that are not finite or exceed float16 range")
    header = _HEADER.pack(_MAGIC, _VERSION, _FORMAT_CODES[format], n_tokens, dimension)
    if format == "fp16":
        return header + values.astype(_FLOAT16).tobytes()
    scales = np.abs(values).max(axis=1) if dimension else np.zeros(n_tokens, np.float32)
    stored_scales = scales.astype(_FLOAT16)
    # Quantise with the scale as stored, so decoding uses exactly the scale encoding used.
    divisors = stored_scales.astype(np.float32)
    divisors[divisors == 0] = 1.0
    levels = _LEVELS[format]
    quantised = np.clip(np.rint(values / divisors[:, None] * levels), -levels, levels).astype(
        np.int8
    )
    if format == "int4":
        return header + stored_scales.tobytes() + _pack_nibbles(quantised).tobytes()
    return header + stored_scales.tobytes() + quantised.tobytes()


def _pack_nibbles(quantised: np.ndarray) -> np.ndarray:
    """(n, d) int8 in [-7, 7] → (n, ceil(d/2)) uint8, low nibble = even column."""
    if quantised.shape[1] % 2:
        quantised = np.pad(quantised, ((0, 0), (0, 1)))
    nibbles = (quantised.astype(np.int16) & 0x0F).astype(np.uint8)
    return (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8)


def _unpack_nibbles(packed: np.ndarray, dimension: int) -> np.ndarray:
    """Inverse of ``_pack_nibbles``: (n, ceil(d/2)) uint8 → (n, d) float32."""
    low = (packed & 0x0F).astype(np.int8)
    high = (packed >> 4).astype(np.int8)
    values = np.empty((packed.shape[0], packed.shape[1] * 2), dtype=np.int8)
    values[:, 0::2] = low
    values[:, 1::2] = high
    values[values > 7] -= 16  # two's complement of a nibble
    return values[:, :dimension].astype(np.float32)


def _read_header(data: bytes) -> tuple[str, int, int]:
    """Format, n_tokens and dimension of an encoded value, checked against its length."""
    if len(data) < HEADER_SIZE:
        raise CacheError(f"token value is truncated: {len(data)} bytes, header needs {HEADER_SIZE}")
    magic, version, format_code, n_tokens, dimension = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise CacheError(f"not a token value: magic {magic!r}, expected {_MAGIC!r}")
    if version != _VERSION:
        raise CacheError(f"token value version {version} is not supported (expected {_VERSION})")
    format = _FORMAT_NAMES.get(format_code)
    if format is None:
        raise CacheError(f"token value has unknown format code {format_code}")
    expected = HEADER_SIZE + n_tokens * bytes_per_token(dimension, format)
    if len(data) != expected:
        raise CacheError(
            f"token value of {n_tokens}x{dimension} {format} should be {expected} bytes, "
            f"got {len(data)}"
        )
    return format, n_tokens, dimension


def decode_tokens(data: bytes) -> torch.Tensor:
    """Decode a value written by ``encode_tokens`` into a (n_tokens, d) float32 tensor.

    Raises:
        CacheError: the value is truncated, has trailing bytes, or has a wrong magic, an
            unknown version or an unknown format.
    """
    format, n_tokens, dimension = _read_header(data)
    if format == "fp16":
        halves = np.frombuffer(data, _FLOAT16, n_tokens * dimension, HEADER_SIZE)
        # astype copies into a writable array, which torch.from_numpy needs.
        return torch.from_numpy(halves.astype(np.float32).reshape(n_tokens, dimension))
    scales = np.frombuffer(data, _FLOAT16, n_tokens, HEADER_SIZE).astype(np.float32)
    offset = HEADER_SIZE + 2 * n_tokens
    if format == "int4":
        width = (dimension + 1) // 2
        packed = np.frombuffer(data, np.uint8, n_tokens * width, offset).reshape(n_tokens, width)
        values = _unpack_nibbles(packed, dimension)
    else:
        quantised = np.frombuffer(data, np.int8, n_tokens * dimension, offset)
        values = quantised.astype(np.float32).reshape(n_tokens, dimension)
    values *= (scales / _LEVELS[format])[:, None]
    return torch.from_numpy(values)


def decode_packed(values: Sequence[bytes], dimension: int) -> PackedTokens:
    """Decode many values at once into one ``PackedTokens`` (rows of value 0, then 1, ...).

    Every value is checked as ``decode_tokens`` checks it, and decodes to the same numbers
    (int8 values as quantised rows and per-row ``scales``, whose products are those numbers).
    When all are int8 (the default format), the scales and the quantised values of all of
    them are joined by one copy each, with no per-value array work, and the rows stay int8;
    other formats are decoded one by one into float32 rows.

    Raises:
        CacheError: a value is malformed (see ``decode_tokens``) or its dimension is not
            ``dimension``.
    """
    headers = [_read_header(data) for data in values]
    for _, n_tokens, value_dimension in headers:
        if n_tokens and value_dimension != dimension:
            raise CacheError(f"token value has dimension {value_dimension}, expected {dimension}")
    lengths = [n_tokens for _, n_tokens, _ in headers]
    if any(format != "int8" for format, _, _ in headers):
        matrices = [decode_tokens(data).reshape(-1, dimension) for data in values]
        return pack_token_matrices(matrices, dimension)
    views = [memoryview(data) for data in values]
    scale_bytes = b"".join(
        view[HEADER_SIZE : HEADER_SIZE + 2 * n] for view, n in zip(views, lengths, strict=True)
    )
    # A bytearray, so the array over it is writable as torch.from_numpy requires: the rows
    # stay int8 (MaxSim converts them a block at a time) and unscaled (it scales each
    # similarity; a document's vectors are scaled only when asked for, PackedTokens.rows).
    value_bytes = bytearray().join(
        view[HEADER_SIZE + 2 * n :] for view, n in zip(views, lengths, strict=True)
    )
    scales = np.frombuffer(scale_bytes, _FLOAT16).astype(np.float32) / _LEVELS["int8"]
    quantised = np.frombuffer(value_bytes, np.int8).reshape(-1, dimension)
    return PackedTokens(torch.from_numpy(quantised), lengths, torch.from_numpy(scales))
