"""Keeps what a serving process loads for its life out of the garbage collector's passes.

Opening a knowledge base leaves the process holding what it keeps until it ends: the models
and the modules behind them, the lexical index, the knowledge base's parts. For one docs site
that is about 500,000 objects the collector tracks. Left in its oldest generation, every full
collection walks them all: about 190 ms on 2 cores, every few seconds under load, during which
every request in the process waits. That pause is most of a busy server's p99.

``gc.freeze()`` moves every object alive into a generation the collector never walks. Frozen
objects are still freed by reference counting when they are dropped (an index replaced by a
newer one); only reference cycles among them stay until the process ends. So it is a choice for
a process that serves, made by its entry point (``assistant serve``, each of its worker
processes), not by a library call: a test suite or an application that opens and drops many
assistants keeps the collector as it is.

``settle`` is called where such things are loaded: a knowledge base opened, its lexical index
built or reloaded, an answerer built (its provider clients and the SDK modules they import).

>>> freeze_after_loading()  # doctest: +SKIP
>>> settle()  # doctest: +SKIP
"""

from __future__ import annotations

import gc

__all__ = ["freeze_after_loading", "freezes_after_loading", "settle"]

_enabled = False


def freeze_after_loading(enabled: bool = True) -> None:
    """Make ``settle`` freeze: for this process's life (or until called with ``False``)."""
    global _enabled
    _enabled = enabled


def freezes_after_loading() -> bool:
    """Whether ``settle`` freezes in this process."""
    return _enabled


def settle() -> None:
    """Called after loading something kept for the process's life; freezes what is alive when
    the process asked for it. Garbage is collected first, so no cycle that is already garbage is
    frozen for good (this pass walks only what was not frozen before: all of it once, about
    0.2 s when the first knowledge base opens, little afterwards)."""
    if _enabled:
        gc.collect()
        gc.freeze()
