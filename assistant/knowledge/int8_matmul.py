"""Products of int8 token rows with a float32 query, done in integer arithmetic.

The token cache keeps passages' rows as int8 with a scale per row. Converting them to float32
for a float product writes and reads back four times their size, and that conversion was most
of MaxSim's time. Here the query is split into int8 parts instead,
``query ≈ scale_1 * part_1 + scale_2 * part_2`` per column, and the parts, side by side, are
multiplied with the rows in one int8 x int8 -> int32 product (``torch._int_mm``), which is
exact. Two parts leave an error of at most ``max|query| / (2 * 127 * 254)`` per query value
(about 1.5e-5 of a unit vector's largest value), smaller than the rows' own int8 rounding by a
factor of 250: rankings are the float product's. On one core of the 2-core machine measured,
the product of 160 candidates' rows (16,000 x 384) with a 14-token query's two parts took
0.66 ms, against 6 ms for the float32 blocks.

Where ``torch._int_mm`` is missing or wrong on this CPU build, ``int8_products`` returns None
and the caller keeps its float path.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import torch

from assistant.knowledge.thread_pools import thread_pools

__all__ = ["int8_products"]

logger = logging.getLogger(__name__)

_QUERY_PARTS = 2
"""int8 parts the query is split into; each adds the query's columns again to the one integer
product (a little time: reading the rows is most of it) and divides the split's error by about
254."""

_INT8_PEAK = 127.0


def int8_products(rows: np.ndarray, query_t: np.ndarray) -> np.ndarray | None:
    """``rows @ query_t`` in float32 for int8 ``rows`` (T, d) and float ``query_t`` (d, Lq),
    or None when integer products are not available (the caller multiplies in float then).

    The rows' own scales are not applied here (the caller multiplies each row's products).
    """
    if rows.dtype != np.int8 or not _int_mm_works():
        return None
    matrix = torch.from_numpy(np.ascontiguousarray(rows))
    residual = np.asarray(query_t, dtype=np.float32)
    columns = residual.shape[1]
    parts, scales = [], []
    for _ in range(_QUERY_PARTS):
        peak = np.abs(residual).max(axis=0)
        scale = np.where(peak > 0, peak / _INT8_PEAK, 1.0).astype(np.float32)
        # |residual / scale| <= 127 by construction, so the cast cannot wrap.
        part = np.rint(residual / scale).astype(np.int8)
        residual = residual - part.astype(np.float32) * scale
        parts.append(part)
        scales.append(scale)
    # The parts side by side, so one product reads the rows once: reading them is most of its
    # time (two parts: 0.66 ms as one product of 28 columns, 1.15 ms as two of 14).
    stacked = torch.from_numpy(np.ascontiguousarray(np.concatenate(parts, axis=1)))
    # One OpenMP thread, as MaxSim's BLAS gets one: a second halves this product's time, then
    # spins on after it, taking the CPU the rest of the search and other turns need.
    with thread_pools().limit(limits=1, user_api="openmp"):
        try:
            exact = torch._int_mm(matrix, stacked).numpy()
        except RuntimeError as exc:  # a shape this build's kernel refuses
            logger.warning("int8 product of %s rows refused (%s); float32 used", rows.shape, exc)
            return None
    products = exact[:, :columns].astype(np.float32) * scales[0]
    for index in range(1, _QUERY_PARTS):
        part_products = exact[:, index * columns : (index + 1) * columns].astype(np.float32)
        products += part_products * scales[index]
    return products


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
