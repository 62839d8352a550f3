"""Long pages' breadth: page lengths counted with the lexical index, and a fused score lowered
for the chunks of pages much longer than the knowledge base's usual page."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from assistant.core import Assistant
from assistant.evaluation.pools import Candidate, Pool, fused_order
from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.page_breadth import (
    LONG_PAGE_FLOOR,
    LONG_PAGE_MAX_BREADTH,
    LONG_PAGE_MEDIAN_FACTOR,
    LONG_PAGE_PENALTY,
    PageSizes,
)
from assistant.knowledge.ranking import rank_candidates
from tests.support.docs import write_docs


def test_a_page_is_long_from_twice_the_median_page_and_never_below_the_floor() -> None:
    sizes = PageSizes.count(["a"] * 20 + ["b"] * 20 + ["c"] * 30 + ["d"] * 100)
    assert sizes.long_from == LONG_PAGE_MEDIAN_FACTOR * 25
    assert sizes.breadth("a") == sizes.breadth("c") == 0.0
    assert sizes.breadth("d") == pytest.approx(math.log(100 / 50))
    assert sizes.breadth("not counted") == 0.0
    # The breadth stops growing: the longest reference pages are often the answer.
    longest = PageSizes.count(["a"] * 20 + ["b"] * 20 + ["e"] * 5000)
    assert longest.breadth("e") == LONG_PAGE_MAX_BREADTH < math.log(5000 / 40)
    # Short pages everywhere (abstracts): nothing is long however the lengths vary.
    abstracts = PageSizes.count(["x"] * 1 + ["y"] * 2 + ["z"] * LONG_PAGE_FLOOR)
    assert abstracts.long_from == LONG_PAGE_FLOOR
    assert all(abstracts.breadth(page) == 0.0 for page in "xyz")
    assert PageSizes.count([]).long_from == LONG_PAGE_FLOOR


def test_page_sizes_are_saved_with_the_lexical_index(tmp_path: Path) -> None:
    sizes = PageSizes.count(["https://h/a.html"] * 3 + ["docs/b.md"])
    index = LexicalIndex.build([("c1", "one"), ("c2", "two")], page_sizes=sizes)
    index.save(tmp_path / "lexical")
    loaded = LexicalIndex.load(tmp_path / "lexical")
    assert loaded is not None and loaded.page_sizes == sizes
    # An index saved before lengths were counted loads without them.
    LexicalIndex.build([("c1", "one")]).save(tmp_path / "old")
    old = LexicalIndex.load(tmp_path / "old")
    assert old is not None and old.page_sizes is None


def test_a_long_pages_chunk_loses_a_near_tie_and_nothing_else_moves() -> None:
    weights = FusionWeights(1.0, 1.0, 1.0)
    dense = torch.tensor([0.80, 0.79, 0.30, 0.20])
    late = torch.tensor([0.70, 0.69, 0.40, 0.10])
    lexical = torch.tensor([5.0, 4.9, 1.0, 0.0])
    plain = rank_candidates(dense, late, weights, lexical)
    assert plain.order == [0, 1, 2, 3]
    # No breadth at all ranks exactly as no breadth given.
    assert rank_candidates(dense, late, weights, lexical, torch.zeros(4)) == plain
    breadth = torch.tensor([1.0, 0.0, 0.0, 0.0])
    ranked = rank_candidates(dense, late, weights, lexical, breadth)
    assert ranked.order == [1, 0, 2, 3]
    spread = torch.tensor(plain.scores).std()
    expected = plain.scores[0] - LONG_PAGE_PENALTY * float(spread)
    assert ranked.scores[0] == pytest.approx(expected, abs=1e-6)
    assert ranked.scores[1:] == plain.scores[1:]


def _candidate(name: str, page: str, dense: float, breadth: float = 0.0) -> Candidate:
    return Candidate(
        chunk_id=name,
        url=f"http://h/{page}",
        dense_score=dense,
        maxsim_score=dense,
        lexical_score=dense,
        dense_rank=0,
        maxsim_rank=0,
        lexical_rank=0,
        fused_rank=0,
        page_breadth=breadth,
    )


def test_saved_pools_keep_each_candidates_breadth() -> None:
    pool = Pool(
        (
            _candidate("manual", "manual.html", 0.81, breadth=2.0),
            _candidate("answer", "answer.html", 0.80),
            _candidate("other", "other.html", 0.20),
        ),
        FusionWeights(1.0, 1.0, 1.0),
    )
    restored = Pool.from_json(json.loads(json.dumps(pool.to_json())))
    assert restored == pool
    ranked = [c.chunk_id for c in fused_order(restored, restored.weights)]
    assert ranked == ["answer", "manual", "other"]
    # A pool saved before breadth was kept ranks as it did then.
    old = pool.to_json()
    for candidate in old["candidates"]:  # type: ignore[attr-defined]
        del candidate["breadth"]
    before = Pool.from_json(old)
    assert fused_order(before, before.weights)[0].chunk_id == "manual"


LONG_SECTIONS = [
    ("Installing", "Run the installer and accept the licence to install Harbor on a workstation."),
    ("Workspaces", "A workspace groups projects, members and their permissions in one place."),
    ("Members", "Invite members by email; each invitation expires after seven days."),
    ("Billing", "Invoices are sent on the first day of every month to the billing contact."),
    ("Themes", "The dark theme follows the operating system unless a theme is picked by hand."),
    ("Shortcuts", "Press Ctrl+K anywhere to open the command palette and search every menu."),
    ("Notifications", "Email digests summarise a day of activity; mobile pushes arrive at once."),
    ("Backups", "Workspaces are backed up every night and kept for thirty days."),
    ("Exports", "Export a workspace as a ZIP archive of Markdown files from Settings."),
    ("Audit log", "The audit log lists sign-ins, permission changes and deleted projects."),
    ("Webhooks", "Webhooks post a JSON event to your endpoint when a project changes."),
    ("Tokens", "Personal access tokens authenticate scripts; revoke them from your profile."),
]


def _long_manual(repeat: int) -> str:
    sections = []
    for round_ in range(repeat):
        for title, text in LONG_SECTIONS:
            # Every section is a chunk of its own; the rounds differ so none is a duplicate.
            sections.append(f"## {title} ({round_ + 1})\n\n{text} See also part {round_ + 1}.\n")
    return "# Harbor manual\n\n" + "\n".join(sections)


@pytest.mark.integration
def test_search_lowers_the_chunks_of_a_long_page_as_the_ranking_says(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    docs = {
        "manual.md": _long_manual(4),
        "exports.md": "# Exporting a workspace\n\nExport a workspace as a ZIP archive of "
        "Markdown files from Settings. Large exports are emailed when they are ready.\n",
        "billing.md": "# Billing\n\nInvoices are sent monthly. Change the billing contact in "
        "Settings > Billing.\n",
        "tokens.md": "# Access tokens\n\nTokens authenticate scripts and expire after a year.\n",
    }
    assistant = make_assistant()
    assistant.ingest([str(write_docs(tmp_path, docs))])
    knowledge_base = assistant._kb("default")
    index = knowledge_base.retriever.lexical
    assert index is not None and index.page_sizes is not None
    manual = next(url for url in index.page_sizes.chunks if url.endswith("manual.md"))
    assert index.page_sizes.chunks[manual] >= 4 * len(LONG_SECTIONS)
    assert index.page_sizes.breadth(manual) > 0.0

    result = assistant.search("how do I export my workspace as a zip of markdown?", k=50)
    pool = result.candidates
    for hit in pool:
        expected = index.page_sizes.breadth(hit.url)
        assert hit.page_breadth == expected
        assert (expected > 0.0) == (hit.url == manual)
    assert result.hits[0].url.endswith("exports.md")

    # The same pool ranked without the lengths: only the manual's chunks gain, by the penalty.
    dense = torch.tensor([hit.dense_score for hit in pool])
    late = torch.tensor([hit.late_interaction_score for hit in pool])
    lexical = torch.tensor([float(hit.lexical_score or 0.0) for hit in pool])
    plain = rank_candidates(dense, late, knowledge_base.retriever.weights, lexical)
    spread = float(torch.tensor(plain.scores).std())
    for position, hit in enumerate(pool):
        lowered = LONG_PAGE_PENALTY * spread * hit.page_breadth
        assert hit.score == pytest.approx(plain.scores[position] - lowered, abs=1e-5)


@pytest.mark.integration
def test_an_index_saved_before_lengths_were_counted_is_rebuilt_by_the_next_ingestion(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = write_docs(tmp_path, {"manual.md": _long_manual(2), "a.md": "# A\n\nShort page.\n"})
    first = make_assistant()
    first.ingest([str(folder)])
    knowledge_base = first._kb("default")
    index = knowledge_base.retriever.lexical
    assert index is not None and index.page_sizes is not None
    # What an earlier version saved: the same index without the pages' lengths.
    LexicalIndex(index._model, index.chunk_ids, term_weights=index.term_weights).save(
        knowledge_base.lexical_dir
    )
    first.close()

    reopened = make_assistant()
    assert reopened._kb("default").retriever.lexical.page_sizes is None  # type: ignore[union-attr]
    report = reopened.ingest([str(folder)])
    assert report.count("unchanged") == 2 and report.chunks_embedded == 0
    rebuilt = reopened._kb("default").retriever.lexical
    assert rebuilt is not None and rebuilt.page_sizes == index.page_sizes
