"""Products of int8 token rows with a float32 query, done in integer arithmetic.

The token cache keeps passages' rows as int8 with a scale per row. Converting them to float32
for a float product writes and reads back four times their size, and that conversion was most
of MaxSim's time. Here the query is written in int8 instead, in two parts per column:
``query ≈ scale * (part_1 + part_2 / M)`` with ``M = 254`` (less for wide vectors, so the sum
fits in int32). The parts, one above the other, are multiplied with the rows in one int8 x int8 ->
int32 product (``torch._int_mm``), which is exact, and ``M * product_1 + product_2`` joins them
in integers. Each query value is then off by at most ``max|query| / (2 * 127 * M)`` (about
1.5e-5 of a unit vector's largest value at ``M = 254``), smaller than the rows' own int8
rounding by a factor of 250: rankings are the float product's.

The product is laid out query first, ``parts (2 Lq, d) @ rows.T (d, T)``: each query column's
products with all the rows lie in one contiguous row of the result, so joining the parts,
scaling by the rows' scales and the maximum over each document's rows (the caller's) all run
along rows of ``T`` values. With the rows first, ``(T, d) @ (d, 2 Lq)``, each of those passes
walked ``T`` short rows of ``Lq`` values, and the kernel read all the rows again for every
block of 16 columns short of a whole one. On one thread of the 2-core machine measured
(17,355 x 384 rows, a 12-token query), the product and those passes took 1.30 ms query first
and 1.87 ms rows first (zero-padded to 32 columns), with the same integers; in float32 blocks
16,000 such rows took 6 ms.

The result stays in integers with one positive scale per query column
(``IntegerProducts``): a column's scale can be applied after the maximum over rows, so the
caller makes one float pass (the rows' own scales) instead of one per part.

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


@dataclass(frozen=True, slots=True)
class IntegerProducts:
    """``rows @ query_t`` as exact integers, query first, and one positive scale per query
    column: the float product is ``(values * column_scales[:, None]).T``."""

    values: np.ndarray
    """(Lq, T) int32: row ``j`` holds query column ``j``'s products with every token row."""
    column_scales: np.ndarray
    """(Lq,) float32, all positive."""

    def to_float(self) -> np.ndarray:
        """The (T, Lq) float32 product ``rows @ query_t``."""
        product: np.ndarray = (self.values.astype(np.float32) * self.column_scales[:, None]).T
        return product


@dataclass(frozen=True, slots=True)
class Int8Query:
    """A float query written as two int8 parts, one above the other, ready to multiply int8
    rows."""

    parts: torch.Tensor
    """(2 Lq, d) int8: each query column's whole part in the first ``columns`` rows, its
    fraction in the next ``columns``."""
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
                exact = torch._int_mm(self.parts, matrix.T).numpy()
            except RuntimeError as exc:  # a shape this build's kernel refuses
                logger.warning(
                    "int8 product of %s rows refused (%s); float32 used", rows.shape, exc
                )
                return None
        # steps * |whole product| + |fraction product| <= (steps + 1) * 127 * 127 * d: int32
        # holds it (``_fraction_steps``).
        columns = self.columns
        joined = np.multiply(exact[:columns], self.steps, dtype=np.int32)
        joined += exact[columns:]
        return IntegerProducts(joined, self.column_scales)


def int8_query(query: np.ndarray) -> Int8Query | None:
    """The query's rows ``query`` (Lq, d) written in two int8 parts, or None when integer
    products are not available for it (no working kernel, or vectors too wide for int32
    sums)."""
    if not _int_mm_works():
        return None
    steps = _fraction_steps(query.shape[1])
    if steps is None:
        return None
    rows = np.asarray(query, dtype=np.float32)
    columns = rows.shape[0]
    peak = np.abs(rows).max(axis=1)
    scale = np.where(peak > 0, peak / _INT8_PEAK, 1.0).astype(np.float32)
    # |query / scale| <= 127, and what rounding leaves is at most 1/2, so |fraction| <= 127:
    # neither cast can wrap.
    units = rows / scale[:, None]
    # The parts one above the other, so one product reads the rows once.
    stacked = np.empty((2 * columns, rows.shape[1]), dtype=np.int8)
    whole = np.rint(units)
    stacked[:columns] = whole
    units -= whole
    units *= steps
    stacked[columns:] = np.rint(units, out=units)
    return Int8Query(torch.from_numpy(stacked), columns, steps, (scale / steps).astype(np.float32))


def int8_products(rows: np.ndarray, query_t: np.ndarray) -> IntegerProducts | None:
    """``rows @ query_t`` for int8 ``rows`` (T, d) and float ``query_t`` (d, Lq), in integers,
    or None when integer products are not available (the caller multiplies in float then).

    The rows' own scales are not applied here (the caller multiplies each row's products).
    """
    if rows.dtype != np.int8:
        return None
    query = int8_query(np.asarray(query_t).T)
    return None if query is None else query.products(rows)


def _fraction_steps(dimension: int) -> int | None:
    """The largest ``M`` (at most 254) for which ``(M + 1) * 127 * 127 * dimension`` fits in
    int32, or None when it would be under 16."""
    fits = _INT32_MAX // max(1, _INT8_PEAK * _INT8_PEAK * dimension) - 1
    steps = min(_FRACTION_STEPS, fits)
    return steps if steps >= _MIN_FRACTION_STEPS else None


@functools.cache
def _int_mm_works() -> bool:
    """Whether ``torch._int_mm`` runs on this build's CPU and gives the exact integer product
    (checked once, laid out as a search's: few query rows, an odd number of token rows read
    transposed)."""
    generator = np.random.default_rng(0)
    parts = generator.integers(-127, 128, size=(6, 24), dtype=np.int8)
    rows = generator.integers(-127, 128, size=(37, 24), dtype=np.int8)
    try:
        got = torch._int_mm(torch.from_numpy(parts), torch.from_numpy(rows).T).numpy()
    except (AttributeError, RuntimeError, TypeError) as exc:
        logger.info("int8 products unavailable (%s); MaxSim multiplies in float32", exc)
        return False
    if not np.array_equal(got, parts.astype(np.int64) @ rows.astype(np.int64).T):
        logger.warning("torch._int_mm gave a wrong product; MaxSim multiplies in float32")
        return False
    return True
