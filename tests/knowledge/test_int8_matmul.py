"""int8 rows times a float query in integer products: within the split's error bound of the
exact product, and the float path kept where integer products are not available."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from assistant.knowledge import int8_matmul
from assistant.knowledge.int8_matmul import int8_products


def exact_and_bound(rows: np.ndarray, query_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The float64 product, and the largest error two int8 parts of the query may leave:
    each query value is off by at most max|column| / (2 * 127 * 254), times sum |row|."""
    exact = rows.astype(np.float64) @ query_t.astype(np.float64)
    step = np.abs(query_t).max(axis=0) / (2 * 127 * 254)
    bound = np.abs(rows).astype(np.float64).sum(axis=1)[:, None] * step[None, :]
    return exact, bound


@pytest.mark.parametrize(("n_rows", "n_columns"), [(1, 1), (37, 3), (2049, 14), (300, 33)])
def test_products_are_within_the_split_bound(n_rows: int, n_columns: int) -> None:
    generator = np.random.default_rng(n_rows)
    rows = generator.integers(-127, 128, size=(n_rows, 64), dtype=np.int8)
    query = generator.standard_normal((n_columns, 64)).astype(np.float32)
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    products = int8_products(rows, query.T)
    assert products is not None and products.values.dtype == np.int32
    assert (products.column_scales > 0).all()
    got = products.to_float()
    assert got.dtype == np.float32 and got.shape == (n_rows, n_columns)
    exact, bound = exact_and_bound(rows, query.T)
    error = np.abs(got - exact)
    # float32 rounding of the sums adds a little on top of the split's own bound.
    assert (error <= bound + 1e-4 * np.abs(exact) + 1e-6).all()
    # And it is far closer than a single int8 part (one 254th of a value) would be.
    assert error.max() < 0.02 * (np.abs(rows).sum(axis=1).max() / (2 * 127))


def test_a_zero_query_column_and_zero_rows_give_zero() -> None:
    rows = np.zeros((5, 8), dtype=np.int8)
    rows[1] = 3
    query_t = np.zeros((8, 2), dtype=np.float32)
    query_t[:, 1] = 0.25
    products = int8_products(rows, query_t)
    assert products is not None
    got = products.to_float()
    np.testing.assert_array_equal(got[:, 0], 0.0)
    np.testing.assert_allclose(got[:, 1], [0, 6.0, 0, 0, 0], atol=1e-6)


def test_float_rows_are_left_to_the_float_path() -> None:
    assert int8_products(np.ones((3, 4), dtype=np.float32), np.ones((4, 2), np.float32)) is None


def test_without_integer_products_the_float_path_is_kept(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unavailable(*args: object) -> torch.Tensor:
        raise RuntimeError("_int_mm is not implemented for this CPU")

    int8_matmul._int_mm_works.cache_clear()
    monkeypatch.setattr(torch, "_int_mm", unavailable)
    try:
        with caplog.at_level(logging.INFO, logger="assistant.knowledge.int8_matmul"):
            rows = np.ones((3, 4), dtype=np.int8)
            assert int8_products(rows, np.ones((4, 2), np.float32)) is None
        assert "float32" in caplog.text
    finally:
        int8_matmul._int_mm_works.cache_clear()


def test_a_wrong_integer_product_is_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    real = torch._int_mm

    def off_by_one(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return real(a, b) + 1

    int8_matmul._int_mm_works.cache_clear()
    monkeypatch.setattr(torch, "_int_mm", off_by_one)
    try:
        assert int8_products(np.ones((3, 4), np.int8), np.ones((4, 2), np.float32)) is None
    finally:
        int8_matmul._int_mm_works.cache_clear()


def test_a_shape_the_kernel_refuses_falls_back_to_float(monkeypatch: pytest.MonkeyPatch) -> None:
    assert int8_matmul._int_mm_works()  # the probe passed with the real kernel

    def refused(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("_int_mm: self.size(0) needs to be greater than 16")

    monkeypatch.setattr(torch, "_int_mm", refused)
    assert int8_products(np.ones((3, 4), np.int8), np.ones((4, 2), np.float32)) is None


def test_wide_vectors_take_fewer_fraction_steps_so_int32_holds_the_sum() -> None:
    assert int8_matmul._fraction_steps(384) == 254
    steps = int8_matmul._fraction_steps(1024)
    assert steps is not None and 16 <= steps < 254
    assert (steps + 1) * 127 * 127 * 1024 <= 2**31 - 1
    assert int8_matmul._fraction_steps(20_000) is None


def test_the_largest_products_of_wide_vectors_do_not_wrap() -> None:
    """Every row and query value at its peak: the joined integer is the largest it can be."""
    dimension = 1024
    rows = np.full((17, dimension), 127, dtype=np.int8)
    query_t = np.full((dimension, 2), 1.0 / np.sqrt(dimension), dtype=np.float32)
    query_t[0, 1] = -query_t[0, 1] * 0.999  # a fraction left over in one column
    products = int8_products(rows, query_t)
    assert products is not None
    exact = rows.astype(np.float64) @ query_t.astype(np.float64)
    np.testing.assert_allclose(products.to_float(), exact, rtol=1e-4)


@pytest.mark.parametrize("n_columns", [1, 7, 8, 14, 17, 40])
def test_the_parts_are_multiplied_query_first_in_one_exact_product(
    monkeypatch: pytest.MonkeyPatch, n_columns: int
) -> None:
    shapes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    real = torch._int_mm

    def recording(parts: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        shapes.append((tuple(parts.shape), tuple(rows.shape)))
        return real(parts, rows)

    generator = np.random.default_rng(n_columns)
    rows = generator.integers(-127, 128, size=(301, 48), dtype=np.int8)
    query_t = generator.standard_normal((48, n_columns)).astype(np.float32)
    monkeypatch.setattr(torch, "_int_mm", recording)
    products = int8_products(rows, query_t)
    assert products is not None and products.values.shape == (n_columns, 301)
    # One product: both parts of every column, no padding, the rows read transposed.
    assert shapes == [((2 * n_columns, 48), (48, 301))]
    # The integers are the parts' own exact products, joined.
    scale = np.abs(query_t).max(axis=0) / 127
    whole = np.rint(query_t / scale)
    fraction = np.rint((query_t / scale - whole) * 254)
    expected = rows.astype(np.int64) @ (whole * 254 + fraction).astype(np.int64)
    np.testing.assert_array_equal(products.values, expected.T)
