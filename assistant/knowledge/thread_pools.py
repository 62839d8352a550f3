"""The process's native thread pools (BLAS, OpenMP), for limiting them around one product, and
the helper threads that take parts of a product to other cores."""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import torch
from threadpoolctl import ThreadpoolController

__all__ = ["helper_threads", "thread_pools"]


@functools.cache
def thread_pools() -> ThreadpoolController:
    """The process's thread pools, found once: finding them inspects every loaded library."""
    return ThreadpoolController()


_helpers: tuple[int, ThreadPoolExecutor] | None = None
_helpers_lock = threading.Lock()


def helper_threads() -> ThreadPoolExecutor:
    """This process's pool of helper threads (one fewer than its cores, at least one), made on
    first use.

    Plain threads rather than more OpenMP or BLAS threads: those spin for milliseconds after
    each product, waiting for the next, and take the core from the rest of the turn and from
    other visitors' turns; a pool thread sleeps until it is given work. A process made by
    ``fork`` gets a pool of its own (the parent's threads do not exist in the child).
    """
    global _helpers
    with _helpers_lock:
        if _helpers is None or _helpers[0] != os.getpid():
            pool = ThreadPoolExecutor(
                max_workers=max(1, (os.cpu_count() or 1) - 1),
                thread_name_prefix="maxsim",
                # torch sets a new thread's OpenMP threads on its first parallel call, which
                # would undo a limit set around that call: done before any.
                initializer=torch.get_num_threads,
            )
            _helpers = (os.getpid(), pool)
        return _helpers[1]
