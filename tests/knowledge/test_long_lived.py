"""What a serving process loads for its life is frozen out of the collector's passes, and only
when the process asked for it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.knowledge import long_lived


@pytest.fixture
def restore_collector() -> Iterator[None]:
    was = long_lived.freezes_after_loading()
    yield
    long_lived.freeze_after_loading(was)
    gc.unfreeze()


def _tracked(target: object) -> bool:
    """Whether the collector's generations (not the frozen one) hold ``target``."""
    return any(candidate is target for candidate in gc.get_objects())


def _ingested(make_assistant: Callable[..., Assistant], tmp_path: Path) -> Assistant:
    page = tmp_path / "refunds.md"
    page.write_text("# Refunds\n\nRefunds are paid back within 14 days of the request.\n")
    assistant = make_assistant()
    assistant.ingest([str(page)], kb="docs")
    return assistant


def test_a_library_call_leaves_the_collector_alone(
    make_assistant: Callable[..., Assistant], tmp_path: Path, restore_collector: None
) -> None:
    long_lived.freeze_after_loading(False)
    gc.unfreeze()
    assistant = _ingested(make_assistant, tmp_path)
    retriever = assistant._kb("docs").retriever
    assert gc.get_freeze_count() == 0
    assert _tracked(retriever)


def test_a_serving_process_freezes_a_knowledge_base_once_opened(
    make_assistant: Callable[..., Assistant], tmp_path: Path, restore_collector: None
) -> None:
    _ingested(make_assistant, tmp_path).close()
    gc.unfreeze()
    long_lived.freeze_after_loading()
    # A fresh process over the same data: the knowledge base is opened by the first search.
    assistant = make_assistant()
    hits = assistant.search("how long do refunds take?", kb="docs")
    assert hits.hits and "14 days" in hits.hits[0].text
    retriever = assistant._kb("docs").retriever
    assert gc.get_freeze_count() > 0
    assert not _tracked(retriever)
    assert not _tracked(retriever.lexical)


def test_a_reloaded_index_is_frozen_too(
    make_assistant: Callable[..., Assistant], tmp_path: Path, restore_collector: None
) -> None:
    long_lived.freeze_after_loading()
    assistant = _ingested(make_assistant, tmp_path)
    other = tmp_path / "shipping.md"
    other.write_text("# Shipping\n\nParcels leave the warehouse on the next working day.\n")
    # Another process (an ingestion worker) saves a new index over the same data dir.
    writer = make_assistant()
    writer.ingest([str(other)], kb="docs")
    writer.close()
    gc.unfreeze()
    kb = assistant._kb("docs")  # picks up the new index
    assert kb.retriever.lexical is not None
    assert len(kb.retriever.lexical.chunk_ids) == 2
    assert not _tracked(kb.retriever.lexical)


def test_an_answerer_once_built_is_frozen_too(
    make_assistant: Callable[..., Assistant], tmp_path: Path, restore_collector: None
) -> None:
    long_lived.freeze_after_loading()
    assistant = _ingested(make_assistant, tmp_path)
    gc.unfreeze()
    answer = assistant.ask("how long do refunds take?", kb="docs")
    assert answer.citations
    # The answerer, its providers and what they imported are kept while the settings stay.
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    assistant.ask("when are refunds paid?", kb="docs")
    assert gc.get_freeze_count() == 0  # built once: nothing new to keep


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_garbage_is_collected_not_frozen(restore_collector: None) -> None:
    long_lived.freeze_after_loading()
    kept, dropped = _Node(), _Node()
    gone = weakref.ref(dropped)
    del dropped
    long_lived.settle()
    assert gone() is None
    assert not _tracked(kept)
