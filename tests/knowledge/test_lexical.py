"""The BM25 lexical index: rare codes and names, persistence, atomic replacement."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge.lexical import LexicalIndex

CHUNKS = [
    ("c1", "Error E-4021 means the workspace storage quota is exceeded."),
    ("c2", "Single sign-on works with Okta and Microsoft Entra ID."),
    ("c3", "Invoices are emailed on the first day of each month."),
    ("c4", "The storage quota of the Team plan is 100 GB per workspace."),
]


def test_rare_terms_find_their_chunk() -> None:
    index = LexicalIndex.build(CHUNKS)
    assert index.query("what does E-4021 mean").top(1)[0][0] == "c1"
    assert index.query("okta").top(5) == [("c2", index.query("okta").of(["c2"])[0])]


def test_scores_of_any_chunk_and_only_positive_matches_in_top() -> None:
    index = LexicalIndex.build(CHUNKS)
    scores = index.query("storage quota")
    top_ids = [cid for cid, _ in scores.top(10)]
    assert set(top_ids) == {"c1", "c4"}
    assert scores.of(["c3", "unknown"]) == [0.0, 0.0]


def test_save_and_load_round_trip_and_replace(tmp_path: Path) -> None:
    directory = tmp_path / "lexical" / "kb"
    LexicalIndex.build(CHUNKS).save(directory)
    loaded = LexicalIndex.load(directory)
    assert loaded is not None and len(loaded) == 4
    assert loaded.query("invoices emailed").top(1)[0][0] == "c3"
    LexicalIndex.build(CHUNKS[:1]).save(directory)
    replaced = LexicalIndex.load(directory)
    assert replaced is not None and replaced.chunk_ids == ["c1"]
    assert sorted(p.name for p in directory.parent.iterdir()) == ["kb"]


def test_empty_index_and_missing_directory(tmp_path: Path) -> None:
    assert LexicalIndex.load(tmp_path / "none") is None
    empty = LexicalIndex.build([])
    assert empty.query("anything").top(5) == []
    empty.save(tmp_path / "empty")
    reloaded = LexicalIndex.load(tmp_path / "empty")
    assert reloaded is not None and len(reloaded) == 0


@pytest.mark.parametrize("query", ["?", "0", "the of and", ""])
def test_a_query_without_word_tokens_matches_nothing(query: str) -> None:
    index = LexicalIndex.build([("c1", "Error E-4021: quota exceeded"), ("c2", "SSO with Okta")])
    scores = index.query(query)
    assert scores.top(5) == [] and scores.of(["c1", "c2"]) == [0.0, 0.0]
