"""One ranking: the retriever, the eval runner and the tuner's held-out check order a candidate
pool with the same function, so they agree on every query."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from assistant.core import Assistant
from assistant.evaluation import rerank
from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.ranking import rank_candidates, recall_union, signal_ranks
from assistant.knowledge.training.encoding import BaseTokens, load_chunks
from assistant.knowledge.training.held_out import HeldOutIndex
from tests.support.docs import write_docs

DOCS = {
    "refunds.md": "# Refunds\n\nAnnual plans are refunded in full within 14 days of purchase. "
    "Monthly plans are not refunded; cancel before the next renewal date.\n",
    "sso.md": "# Single sign-on\n\nSSO works with Okta and Microsoft Entra ID. SAML 2.0 is "
    "supported on the Business plan; SCIM provisioning comes with Enterprise.\n",
    "export.md": "# Export\n\nExport a workspace as Markdown or PDF from Settings > Export. "
    "Exports of large workspaces are emailed as a ZIP archive.\n",
    "pricing.md": "# Pricing\n\nThe Team plan costs 8 dollars per seat per month. Business costs "
    "15 dollars. Enterprise pricing is quoted on request.\n",
    "api.md": "# API\n\nThe REST API uses bearer tokens. Rate limits are 600 requests per minute "
    "per token; error code E-429 means the limit was hit.\n",
    "offline.md": "# Offline mode\n\nThe desktop app syncs changes when it reconnects. Conflicts "
    "are kept as copies named after the device.\n",
}
QUERIES = [
    "can I get my money back on a yearly plan?",
    "which identity providers work with SSO",
    "E-429",
    "how much does the Team plan cost",
    "download my workspace as PDF",
]


def test_rank_candidates_orders_by_fused_score_then_dense_then_position() -> None:
    weights = FusionWeights(dense=1.0, late_interaction=1.0)
    dense = torch.tensor([0.25, 0.75, 0.75, 0.5])
    late = torch.tensor([0.75, 0.25, 0.25, 0.5])
    # Every fused score is 0: the dense score decides, then the position.
    assert rank_candidates(dense, late, weights).order == [1, 2, 3, 0]
    only_late = rank_candidates(dense, late, FusionWeights(dense=0.0, late_interaction=1.0))
    assert only_late.order == [0, 3, 1, 2]
    assert only_late.scores[0] > only_late.scores[3] > only_late.scores[1] == only_late.scores[2]


def test_the_order_of_the_pool_does_not_change_the_ranking() -> None:
    generator = torch.Generator().manual_seed(7)
    dense, late, lexical = (torch.rand(150, generator=generator) for _ in range(3))
    weights = FusionWeights(dense=1.0, late_interaction=1.0, lexical=1.0)
    ranked = rank_candidates(dense, late, weights, lexical)
    permutation = torch.randperm(150, generator=generator)
    shuffled = rank_candidates(dense[permutation], late[permutation], weights, lexical[permutation])
    assert [int(permutation[i]) for i in shuffled.order] == ranked.order
    assert sorted(shuffled.scores) == sorted(ranked.scores)  # bit for bit, not approximately


def test_recall_union_and_signal_ranks() -> None:
    assert recall_union([3, 1], [1, 4, 3, 5]) == [3, 1, 4, 5]
    assert signal_ranks([0.1, 0.3, 0.3]) == [3, 1, 2]


def test_search_eval_and_tuning_rank_a_pool_alike(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    assistant = make_assistant()
    assistant.ingest([str(write_docs(tmp_path, DOCS))])
    knowledge_base = assistant._kb("default")
    weights = knowledge_base.retriever.weights
    results = [assistant.search(query, k=50) for query in QUERIES]
    searched = [[hit.chunk_id for hit in result.candidates] for result in results]
    assert all(len(ranking) == len(DOCS) for ranking in searched)  # the whole index is the pool

    # The eval runner re-ranks each returned pool, in any order, as the search ranked it.
    for result, ranking in zip(results, searched, strict=True):
        reversed_pool = list(reversed(result.candidates))
        assert [hit.chunk_id for hit in rerank(reversed_pool, weights)] == ranking

    # The tuner's held-out check, on an index copy with nothing taken out, ranks as search does.
    chunks, dense = load_chunks(knowledge_base.store)
    base = BaseTokens(assistant.encoder, assistant.late_encoder, assistant.token_cache)
    index = HeldOutIndex.build(
        chunks, dense, {}, QUERIES, base, use_lexical=True, notify=lambda step: None
    )
    (stage,) = index.rankings(
        [None], weights, assistant.settings.recall_k, lambda step: None, match_k=50
    )
    assert [[chunks[row].chunk_id for row in rows] for rows in stage.rows] == searched
    # Its best matches are the ones the no-answer rule reads from a search.
    for result, best in zip(results, stage.best_match, strict=True):
        assert result.best_match is not None
        assert best == pytest.approx(result.best_match, abs=1e-3)


_HANDBOOK_WORDS = [
    "invoices",
    "receipts",
    "budgets",
    "audits",
    "contracts",
    "vendors",
    "laptops",
    "badges",
    "printers",
    "desks",
    "parking",
    "travel",
    "meals",
    "mileage",
    "training",
    "mentors",
    "interviews",
    "onboarding",
    "payroll",
    "holidays",
    "overtime",
    "backups",
    "passwords",
    "firewalls",
    "scanners",
    "phones",
    "tablets",
    "chargers",
    "monitors",
    "keyboards",
    "headsets",
    "offices",
    "kitchens",
    "lockers",
    "plants",
    "lighting",
    "heating",
    "cleaning",
    "recycling",
    "deliveries",
    "visitors",
]


def _handbook(sections: int = 30) -> str:
    """A page far longer than the others, touching their topics: its chunks rank lower.

    Each section has words of its own, so no two chunks tie on any signal (a tie could fall
    either way between the search and the check, which recall and score differently).
    """
    topics = ["refunds", "pricing", "single sign-on", "exports", "the API", "offline mode"]
    parts = ["# Handbook\n"]
    for number in range(sections):
        topic = topics[number % len(topics)]
        words = random.Random(number).sample(_HANDBOOK_WORDS, 6)
        lines = [
            f"Rule {number}.{line}: {words[line % 6]} and {words[(line + 2) % 6]} follow the "
            f"{topic} policy, unlike {words[(line + 4) % 6]}."
            for line in range(10)
        ]
        parts.append(f"## Section {number}: {topic} and {words[0]}\n\n" + " ".join(lines) + "\n")
    return "\n".join(parts)


def test_the_held_out_check_lowers_long_pages_as_search_does(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    assistant = make_assistant()
    assistant.ingest([str(write_docs(tmp_path, {**DOCS, "handbook.md": _handbook()}))])
    knowledge_base = assistant._kb("default")
    lexical = knowledge_base.retriever.lexical
    assert lexical is not None and lexical.page_sizes is not None
    results = [assistant.search(query, k=100) for query in QUERIES]
    assert any(hit.page_breadth > 0 for result in results for hit in result.candidates)
    searched = [[hit.chunk_id for hit in result.candidates] for result in results]

    chunks, dense = load_chunks(knowledge_base.store)
    base = BaseTokens(assistant.encoder, assistant.late_encoder, assistant.token_cache)
    index = HeldOutIndex.build(
        chunks, dense, {}, QUERIES, base, use_lexical=True, notify=lambda step: None
    )
    (stage,) = index.rankings(
        [None], knowledge_base.retriever.weights, assistant.settings.recall_k, lambda step: None
    )
    assert [[chunks[row].chunk_id for row in rows] for rows in stage.rows] == searched
