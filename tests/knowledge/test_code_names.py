"""Dotted names and one-letter options no chunk writes: read from the chunks as written, saved
with the lexical index, and declined like unknown names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.knowledge.code_names import CodeNames
from assistant.knowledge.lexical import LexicalIndex
from tests.support.docs import write_docs

PAGES = [
    "Use typing.overload for overloads and typing.cast(T, x) for casts.",
    "Run python -X dev or python -W error; see os.path.join and settings.py. New in 3.11.",
    "See https://docs.example.com/typing.html and e.g. the tutorial.",
]


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        # A member no chunk writes, under a namespace chunks do write.
        ("How do I use typing.override?", ("typing.override",)),
        ("What does python -Z do, and -X?", ("-Z",)),
        ("Does typing.override work with -Z?", ("typing.override", "-Z")),
        # Written as the chunks write them, whatever comes after.
        ("When is typing.overload needed? And typing.cast?", ()),
        ("os.path.join fails", ()),
        # A visitor's own names, under no namespace the documentation writes.
        ("my_app.views.index returns 404 from mysite.urls", ()),
        # File names, web addresses, versions, one-letter parts and sentence ends.
        ("My settings.py and config.yaml, see example.com, Python 3.11, i.e. e.g. end.", ()),
        # Options are compared as written: "-x" is not "-X".
        ("What does -x do?", ("-x",)),
        # A release no chunk writes, after a name or "version"; written ones are known.
        ("Is it in Python 3.14, in version 4.0 or in Python 3.11?", ("3.14", "4.0")),
        ("Which Django 7.1.2 features? v2.0?", ("7.1.2", "2.0")),
        # A sentence's first word names nothing, and other numbers are no releases.
        ("Adding 0.1 and 0.2 costs 12.50 in total. Why? Release 9.9 is out.", ()),
        # Dashes in words and longer options are the words-based check's.
        ("single sign-on and e-mail with -Werror and --turbo", ()),
    ],
)
def test_names_and_options_no_chunk_writes(question: str, unknown: tuple[str, ...]) -> None:
    assert CodeNames.count(PAGES).unknown(question) == unknown


def test_what_the_chunks_write() -> None:
    names = CodeNames.count(PAGES)
    assert {"typing.overload", "typing.cast", "os.path.join"} <= names.names
    assert not {"settings.py", "docs.example.com", "e.g"} & names.names
    assert names.options == {"-X", "-W"}
    assert names.versions == {"3.11"}
    assert names.namespaces == {"typing", "os"}


def test_they_are_saved_and_loaded_with_the_lexical_index(tmp_path: Path) -> None:
    pairs = [(f"c{index}", text) for index, text in enumerate(PAGES)]
    LexicalIndex.build(pairs, code_names=CodeNames.count(PAGES)).save(tmp_path / "index")

    loaded = LexicalIndex.load(tmp_path / "index")
    assert loaded is not None and loaded.code_names == CodeNames.count(PAGES)


def test_an_index_saved_without_them_checks_words_only(tmp_path: Path) -> None:
    LexicalIndex.build([("c1", PAGES[0])]).save(tmp_path / "index")

    loaded = LexicalIndex.load(tmp_path / "index")
    assert loaded is not None and loaded.code_names is None
    assert CodeNames.load(tmp_path / "missing") is None


@pytest.mark.integration
def test_an_index_saved_before_names_were_read_is_rebuilt_by_the_next_ingestion(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = write_docs(tmp_path, {"typing.md": f"# Typing\n\n{PAGES[0]}\n"})
    first = make_assistant()
    first.ingest([str(folder)])
    knowledge_base = first._kb("default")
    index = knowledge_base.retriever.lexical
    assert index is not None and index.code_names is not None
    assert "typing.overload" in index.code_names.names
    # What an earlier version saved: the same index without the names.
    LexicalIndex(
        index._model,
        index.chunk_ids,
        term_weights=index.term_weights,
        page_sizes=index.page_sizes,
    ).save(knowledge_base.lexical_dir)
    first.close()

    reopened = make_assistant()
    assert reopened._kb("default").retriever.lexical.code_names is None  # type: ignore[union-attr]
    assert reopened.search("How do I use typing.override?").unknown_names == ()
    report = reopened.ingest([str(folder)])
    assert report.count("unchanged") == 1 and report.chunks_embedded == 0
    rebuilt = reopened._kb("default").retriever.lexical
    assert rebuilt is not None and rebuilt.code_names == index.code_names
    assert reopened.search("How do I use typing.override?").unknown_names == ("typing.override",)
