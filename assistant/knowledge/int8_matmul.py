"""Products of int8 token rows with a float32 query, done in integer arithmetic.

The token cache keeps passages' rows as int8 with a scale per row. Converting them to float32
for a float product writes and reads back four times their size, and that conversion was most
of MaxSim's time. Here the query is written in int8 instead, in two parts per column:
``query ≈ scale * (part_1 + part_2 / M)`` with ``M = 254`` (less for wide vectors, so the sum
fits in int32). The parts, side by side, are multiplied with the rows in one int8 x int8 ->
int32 product (``torch._int_mm``), which is exact, and ``M * product_1 + product_2`` joins them
in integers. Each query value is then off by at most ``max|query| / (2 * 127 * M)`` (about
1.5e-5 of a unit vector's largest value at ``M = 254``), smaller than the rows' own int8
rounding by a factor of 250: rankings are the float product's.

The result stays in integers with one positive scale per query column
(``IntegerProducts``): a column's scale can be applied after the maximum over rows, so the
caller makes one float pass (the rows' own scales) instead of one per part.

On one core of the 2-core machine measured, the product of 160 candidates' rows
(18,699 x 384) with a 14-token query's two parts (28 columns, padded to 32) took 1.3 ms on
one thread; in float32 blocks 16,000 such rows took 6 ms.

Where ``torch._int_mm`` is missing or wrong on this CPU build, ``int8_products`` returns None
and the caller keeps its float path.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
import torch

from assistant.knowledge.thread_pools import thread_pools

__all__ = ["Int8Query", "IntegerProducts", "int8_products", "int8_query"]

logger = logging.getLogger(__name__)

_INT8_PEAK = 127
_INT32_MAX = 2**31 - 1
_FRACTION_STEPS = 254
"""``M``: the second part counts in steps of 1/254 of the first part's, so with the fraction
left by rounding (at most 1/2) it never passes 127."""
_MIN_FRACTION_STEPS = 16
"""Below this ``M`` (vectors wider than about 8,000) the split is too coarse: float path."""
_COLUMN_BLOCK = 16
"""The query's columns are padded with zeros to a multiple of this. The CPU kernel behind
``torch._int_mm`` works through the columns 16 at a time, then a remainder in blocks of 8, 4, 2
and 1, each block reading all the rows again: on one thread of the 2-core machine measured
(AVX-512 VNNI), 18,699 x 384 rows times 28 columns took 1.85 ms, times 32 columns 1.32 ms. Over
1 to 64 columns, a multiple of 16 was never more than 5% slower than the unpadded width."""


@dataclass(frozen=True, slots=True)
class IntegerProducts:
    """``rows @ query_t`` as exact integers and one positive scale per query column:
    the float product is ``values * column_scales``."""

    values: np.ndarray
    """(T, Lq) int32."""
    column_scales: np.ndarray
    """(Lq,) float32, all positive."""

    def to_float(self) -> np.ndarray:
        """The (T, Lq) float32 product."""
        product: np.ndarray = self.values.astype(np.float32) * self.column_scales
        return product


@dataclass(frozen=True, slots=True)
class Int8Query:
    """A float query written as two int8 parts, side by side, ready to multiply int8 rows."""

    parts: torch.Tensor
    """(d, width) int8: the whole part in the first ``columns`` columns, the fraction in the
    next ``columns``, zeros after."""
    columns: int
    steps: int
    column_scales: np.ndarray
    """(Lq,) float32 scale of each joined column, all positive."""

    def products(self, rows: np.ndarray) -> IntegerProducts | None:
        """``rows @ query_t`` for int8 ``rows`` (T, d), or None when the kernel refuses their
        shape (the caller multiplies in float then). The rows' own scales are not applied
        (the caller multiplies each row's products)."""
        matrix = torch.from_numpy(np.ascontiguousarray(rows))
        # One OpenMP thread, as MaxSim's BLAS gets one: a second halves this product's time,
        # then spins on after it, taking the CPU the rest of the search and other turns need.
        with thread_pools().limit(limits=1, user_api="openmp"):
            try:
                exact = torch._int_mm(matrix, self.parts).numpy()
            except RuntimeError as exc:  # a shape this build's kernel refuses
                logger.warning(
                    "int8 product of %s rows refused (%s); float32 used", rows.shape, exc
                )
                return None
        # steps * |whole product| + |fraction product| <= (steps + 1) * 127 * 127 * d: int32
        # holds it (``_fraction_steps``).
        columns = self.columns
        joined = np.multiply(exact[:, :columns], self.steps, dtype=np.int32)
        joined += exact[:, columns : 2 * columns]
        return IntegerProducts(joined, self.column_scales)


def int8_query(query_t: np.ndarray) -> Int8Query | None:
    """``query_t`` (d, Lq) written in two int8 parts, or None when integer products are not
    available for it (no working kernel, or vectors too wide for int32 sums)."""
    if not _int_mm_works():
        return None
    steps = _fraction_steps(query_t.shape[0])
    if steps is None:
        return None
    query = np.asarray(query_t, dtype=np.float32)
    columns = query.shape[1]
    peak = np.abs(query).max(axis=0)
    scale = np.where(peak > 0, peak / _INT8_PEAK, 1.0).astype(np.float32)
    # |query / scale| <= 127, and what rounding leaves is at most 1/2, so |fraction| <= 127:
    # neither cast can wrap.
    units = query / scale
    whole = np.rint(units)
    fraction = np.rint((units - whole) * steps)
    # The parts side by side, so one product reads the rows once, in zero columns up to a
    # whole number of the kernel's column blocks (``_COLUMN_BLOCK``).
    stacked = np.zeros((query.shape[0], _padded_width(2 * columns)), dtype=np.int8)
    stacked[:, :columns] = whole
    stacked[:, columns : 2 * columns] = fraction
    return Int8Query(torch.from_numpy(stacked), columns, steps, (scale / steps).astype(np.float32))


def int8_products(rows: np.ndarray, query_t: np.ndarray) -> IntegerProducts | None:
    """``rows @ query_t`` for int8 ``rows`` (T, d) and float ``query_t`` (d, Lq), in integers,
    or None when integer products are not available (the caller multiplies in float then).

    The rows' own scales are not applied here (the caller multiplies each row's products).
    """
    if rows.dtype != np.int8:
        return None
    query = int8_query(query_t)
    return None if query is None else query.products(rows)


def _padded_width(columns: int) -> int:
    """``columns`` rounded up to a whole number of ``_COLUMN_BLOCK`` columns.

    >>> _padded_width(28), _padded_width(32), _padded_width(33)
    (32, 32, 48)
    """
    return -(-columns // _COLUMN_BLOCK) * _COLUMN_BLOCK


def _fraction_steps(dimension: int) -> int | None:
    """The largest ``M`` (at most 254) for which ``(M + 1) * 127 * 127 * dimension`` fits in
    int32, or None when it would be under 16."""
    fits = _INT32_MAX // max(1, _INT8_PEAK * _INT8_PEAK * dimension) - 1
    steps = min(_FRACTION_STEPS, fits)
    return steps if steps >= _MIN_FRACTION_STEPS else None


@functools.cache
def _int_mm_works() -> bool:
    """Whether ``torch._int_mm`` runs on this build's CPU and gives the exact integer product
    (checked once, on shapes like a search's: odd row counts, few query columns)."""
    generator = np.random.default_rng(0)
    rows = generator.integers(-127, 128, size=(37, 24), dtype=np.int8)
    part = generator.integers(-127, 128, size=(24, 3), dtype=np.int8)
    try:
        got = torch._int_mm(torch.from_numpy(rows), torch.from_numpy(part)).numpy()
    except (AttributeError, RuntimeError, TypeError) as exc:
        logger.info("int8 products unavailable (%s); MaxSim multiplies in float32", exc)
        return False
    if not np.array_equal(got, rows.astype(np.int64) @ part.astype(np.int64)):
        logger.warning("torch._int_mm gave a wrong product; MaxSim multiplies in float32")
        return False
    return True
