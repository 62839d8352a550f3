"""Token rarity weighs MaxSim: the counts, their round trip with the lexical index, the search."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from assistant.core import Assistant
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.maxsim import pack_token_matrices, token_maxima, weighted_mean
from assistant.knowledge.term_weights import TermWeights
from assistant.wiring import KnowledgeBase
from tests.support.docs import write_docs

DOCS = {
    "refunds.md": "# Refunds\n\nAnnual plans are refunded in full within 14 days of purchase.\n",
    "sso.md": "# Single sign-on\n\nSSO works with Okta and Microsoft Entra ID.\n",
    "export.md": "# Export\n\nExport a workspace as Markdown or PDF from Settings > Export.\n",
    "plans.md": "# Plans\n\nThe Team plan includes shared workspaces and priority support.\n",
}


def _ingested(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> tuple[Assistant, KnowledgeBase, LexicalIndex]:
    """An assistant whose default knowledge base holds ``DOCS``, and that base's parts."""
    assistant = make_assistant()
    assistant.ingest([str(write_docs(tmp_path, DOCS))])
    kb = assistant._kb("default")
    lexical = kb.retriever.lexical
    assert lexical is not None
    return assistant, kb, lexical


def _without_counts(lexical: LexicalIndex) -> LexicalIndex:
    """The same BM25 index as one saved before token counts existed."""
    return LexicalIndex(lexical._model, lexical.chunk_ids)


def test_rare_tokens_weigh_more_and_tokens_in_every_chunk_almost_nothing() -> None:
    counts = TermWeights.count([[1, 5, 5, 2], [1, 6, 2], [1, 2], [1, 7, 2]], 10, space="m")

    assert counts.documents == 4
    assert counts.document_frequency.tolist() == [0, 4, 4, 0, 0, 1, 1, 1, 0, 0]
    every, once, never, outside = counts.of(np.array([1, 5, 9, 99])).tolist()
    assert math.isclose(once, math.log1p(3.5 / 1.5) ** 2, rel_tol=1e-6)
    assert math.isclose(never, math.log1p(4.5 / 0.5) ** 2, rel_tol=1e-6)
    assert outside == never  # an id the vocabulary lacks is in no chunk
    assert 0 < every < 0.02 < once < never


def test_the_counts_are_saved_and_loaded_with_the_lexical_index(tmp_path: Path) -> None:
    counts = TermWeights.count([[3, 4], [4]], 8, space="encoder-a")
    LexicalIndex.build([("c1", "alpha beta"), ("c2", "beta")], term_weights=counts).save(
        tmp_path / "lexical"
    )

    loaded = LexicalIndex.load(tmp_path / "lexical")

    assert loaded is not None and loaded.term_weights is not None
    assert loaded.term_weights.space == "encoder-a"
    assert loaded.term_weights.documents == 2
    assert loaded.term_weights.document_frequency.tolist() == [0, 0, 0, 1, 2, 0, 0, 0]
    # An index saved without counts (before they existed) loads without them.
    LexicalIndex.build([("c1", "alpha")]).save(tmp_path / "plain")
    plain = LexicalIndex.load(tmp_path / "plain")
    assert plain is not None and plain.term_weights is None


def test_a_weighted_mean_counts_each_query_token_by_its_weight() -> None:
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    packed = pack_token_matrices([torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])], 2)

    maxima = token_maxima(query, packed)

    assert maxima.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert weighted_mean(maxima).tolist() == [0.5, 0.5]
    # The second query token is the rare one: the document that matches it wins.
    assert weighted_mean(maxima, np.array([0.1, 0.9])).tolist() == [
        np.float32(0.1),
        np.float32(0.9),
    ]


def test_search_ranks_with_weighted_maxsim_and_keeps_the_plain_one_for_the_threshold(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    assistant, kb, lexical = _ingested(make_assistant, tmp_path)
    assert lexical.term_weights is not None
    assert lexical.term_weights.documents == len(lexical)
    query = "Does single sign-on work with Okta?"

    result = assistant.search(query, k=3)

    encoder = assistant.encoder
    ids = encoder.document_token_ids([query])[0]
    # The query's own encoding pass gives the same ids, one per token row.
    assert np.array_equal(encoder.encode_query(query).token_ids, ids)
    assert result.query_tokens is not None and result.query_tokens.shape[0] == ids.shape[0]
    weights = lexical.term_weights.of(ids)
    chunks = kb.store.get([hit.chunk_id for hit in result.candidates])
    matrices = encoder.encode_document_tokens([c.chunk.embedding_text for c in chunks])
    maxima = token_maxima(result.query_tokens, pack_token_matrices(matrices, 384))
    by_id = {c.chunk_id: index for index, c in enumerate(chunks)}
    for hit in result.candidates:
        row = maxima[by_id[hit.chunk_id] : by_id[hit.chunk_id] + 1]
        assert math.isclose(
            hit.late_interaction_score, weighted_mean(row, weights)[0], abs_tol=2e-3
        )
    plain = {
        hit.chunk_id: float(weighted_mean(maxima[[by_id[hit.chunk_id]]])[0]) for hit in result.hits
    }
    assert result.best_match is not None
    assert math.isclose(result.best_match, max(plain.values()), abs_tol=2e-3)
    # Plain and weighted differ: the weights are really applied.
    assert not math.isclose(
        result.best_match, max(h.late_interaction_score for h in result.hits), abs_tol=1e-3
    )
    assert result.hits[0].url.endswith("sso.md")


def test_without_counts_maxsim_is_the_plain_mean(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    assistant, kb, lexical = _ingested(make_assistant, tmp_path)
    # An index saved before the counts existed: the search falls back to plain MaxSim.
    kb.retriever.reload_lexical(_without_counts(lexical))

    result = assistant.search("Does single sign-on work with Okta?", k=3)

    assert result.best_match == max(h.late_interaction_score for h in result.hits)


def test_an_index_saved_without_counts_gets_them_at_the_next_ingestion(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    first, kb, lexical = _ingested(make_assistant, tmp_path)
    _without_counts(lexical).save(kb.lexical_dir)  # as an older version saved it
    first.close()

    reopened = make_assistant()
    before = reopened._kb("default").retriever.lexical
    assert before is not None and before.term_weights is None
    report = reopened.ingest([str(tmp_path / "docs")])  # nothing changed

    assert {outcome.status for outcome in report.outcomes} == {"unchanged"}
    after = reopened._kb("default").retriever.lexical
    assert after is not None and after.term_weights is not None
    assert after.term_weights.documents == len(after)
