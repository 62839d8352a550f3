"""The process's native thread pools (BLAS, OpenMP), for limiting them around one product."""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController

__all__ = ["thread_pools"]


@functools.cache
def thread_pools() -> ThreadpoolController:
    """The process's thread pools, found once: finding them inspects every loaded library."""
    return ThreadpoolController()
