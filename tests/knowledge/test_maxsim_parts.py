"""MaxSim over many int8 rows split into parts by documents, the parts on helper threads: the
same maxima as in one part, whatever the helpers do."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from assistant.knowledge import document_parts, maxsim, thread_pools
from assistant.knowledge.maxsim import PackedTokens, token_maxima


def int8_pack(seed: int, lengths: list[int], dimension: int = 32) -> PackedTokens:
    generator = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    values = torch.randint(-127, 128, (total, dimension), generator=generator, dtype=torch.int8)
    scales = torch.rand(total, generator=generator) / 127
    return PackedTokens(values, lengths, scales)


def query_rows(seed: int, rows: int = 9, dimension: int = 32) -> torch.Tensor:
    query = torch.randn(rows, dimension, generator=torch.Generator().manual_seed(seed))
    return query / query.norm(dim=1, keepdim=True)


LENGTHS = [120, 0, 95, 3000, 1, 64, 0, 700, 150, 2200, 33]


def whole(query: torch.Tensor, packed: PackedTokens, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    with monkeypatch.context() as patch:
        patch.setattr(torch, "get_num_threads", lambda: 1)
        return token_maxima(query, packed)


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_parts_give_the_maxima_of_one_part(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    packed = int8_pack(threads, LENGTHS)
    query = query_rows(threads)
    expected = whole(query, packed, monkeypatch)
    seen: list[tuple[int, int]] = []
    real = maxsim.run_in_parts

    def recording(work: object, parts: list[tuple[int, int]]) -> None:
        seen.extend(parts)
        real(work, parts)  # type: ignore[arg-type]

    monkeypatch.setattr(maxsim, "MIN_PART_ROWS", 500)
    monkeypatch.setattr(maxsim, "run_in_parts", recording)
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    got = token_maxima(query, packed)
    assert len(seen) > 1  # it did split
    np.testing.assert_array_equal(got, expected)
    assert (got[[1, 6]] == 0.0).all()  # documents without rows


def test_few_rows_or_one_thread_stay_in_one_part(monkeypatch: pytest.MonkeyPatch) -> None:
    parts: list[list[tuple[int, int]]] = []
    real = maxsim.run_in_parts
    monkeypatch.setattr(maxsim, "run_in_parts", lambda work, p: (parts.append(p), real(work, p)))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    token_maxima(query_rows(0), int8_pack(0, [100, 200]))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    token_maxima(query_rows(0), int8_pack(0, [5000, 5000]))
    assert [len(p) for p in parts] == [1, 1]


def test_a_part_no_helper_has_started_is_done_by_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every helper busy (a visitor's turn elsewhere): the search does all its parts itself
    and does not wait for a helper."""
    busy = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    busy.submit(release.wait, 30)
    monkeypatch.setattr(document_parts, "helper_threads", lambda: busy)
    monkeypatch.setattr(maxsim, "MIN_PART_ROWS", 500)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    packed, query = int8_pack(1, LENGTHS), query_rows(1)
    try:
        got = token_maxima(query, packed)
        assert not release.is_set()  # done while every helper was still busy
    finally:
        release.set()
        busy.shutdown()
    np.testing.assert_array_equal(got, whole(query, packed, monkeypatch))


def test_an_error_in_a_helpers_part_reaches_the_caller() -> None:
    taken = threading.Event()

    def work(first: int, last: int) -> None:
        if first == 0:
            assert taken.wait(10)  # the caller's own part ends after a helper took the other
            return
        taken.set()
        raise RuntimeError("part failed")

    with pytest.raises(RuntimeError, match="part failed"):
        document_parts.run_in_parts(work, [(0, 1), (1, 2)])


def test_no_helper_is_still_at_work_when_the_callers_own_error_is_raised() -> None:
    started: list[int] = []
    done: list[int] = []

    def work(first: int, last: int) -> None:
        if first == 0:
            time.sleep(0.02)  # a helper has time to take a part
            raise ValueError("own part failed")
        started.append(first)
        time.sleep(0.05)
        done.append(first)

    with pytest.raises(ValueError, match="own part failed"):
        document_parts.run_in_parts(work, [(0, 1), (1, 2), (2, 3)])
    assert started and sorted(done) == sorted(started)


def test_the_caller_takes_back_parts_from_the_back_while_a_helper_takes_the_front(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one_helper = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(document_parts, "helper_threads", lambda: one_helper)
    order: list[tuple[str, int]] = []
    helper_busy = threading.Event()

    def work(first: int, last: int) -> None:
        who = "caller" if threading.current_thread() is threading.main_thread() else "helper"
        order.append((who, first))
        if who == "helper" and first == 1:
            helper_busy.set()
            time.sleep(0.2)  # long enough for the caller to take back the rest
        if first == 0:
            assert helper_busy.wait(10)

    try:
        document_parts.run_in_parts(work, [(0, 1), (1, 2), (2, 3), (3, 4)])
    finally:
        one_helper.shutdown()
    assert [entry for entry in order if entry[0] == "helper"] == [("helper", 1)]
    assert [entry for entry in order if entry[0] == "caller"] == [
        ("caller", 0),
        ("caller", 3),
        ("caller", 2),
    ]


def test_document_parts_cover_every_document_once() -> None:
    generator = np.random.default_rng(3)
    for _ in range(50):
        lengths = generator.integers(1, 300, size=generator.integers(1, 40))
        ends = np.cumsum(lengths)
        for count, lead in itertools.product((1, 2, 3, 7), (0, 100, 10_000)):
            parts = document_parts.document_parts(ends, count, lead)
            assert parts[0][0] == 0 and parts[-1][1] == len(lengths)
            assert all(a < b for a, b in parts)
            assert all(b == c for (_, b), (c, _) in itertools.pairwise(parts))
            assert len(parts) <= count


def test_the_first_part_leads_by_about_the_lead() -> None:
    ends = np.cumsum(np.full(200, 100))  # 20,000 rows in documents of 100
    even = document_parts.document_parts(ends, 2)
    led = document_parts.document_parts(ends, 2, lead=2048)
    assert even == [(0, 100), (100, 200)]
    rows = [int(ends[last - 1]) - (int(ends[first - 1]) if first else 0) for first, last in led]
    assert 2000 <= rows[0] - rows[1] <= 2300


def test_a_forked_process_gets_helpers_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    first = thread_pools.helper_threads()
    assert thread_pools.helper_threads() is first
    monkeypatch.setattr(thread_pools.os, "getpid", lambda: -1)
    assert thread_pools.helper_threads() is not first
