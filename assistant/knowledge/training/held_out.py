"""The held-out check of tuning: the shipped ranking, run on a copy of the index.

Each held-out pseudo-query is searched as ``Retriever.search`` would search it — dense top-k ∪
BM25 top-k (``recall_union``), MaxSim with the query's tokens weighted by their rarity in the
copy (``TermWeights``), then ``rank_candidates`` with the knowledge base's weights and its
long pages lowered (``page_breadth``) — on a copy of the index from which the query's own text
is taken out (see ``pseudo_pairs.held_out_index_texts``). Several stages (the current token
vectors and a candidate head's projection of them) are judged on the same pools, so only the
late-interaction signal differs between them. The score is document-level MRR@10, as in
BEIR: any chunk of the query's document counts. Each query's reciprocal rank is kept, so two
stages are compared query by query (``HeldOutGain``): the gain's standard error says how much
of it is the luck of the sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from assistant.knowledge.encoder import row_token_ids
from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.maxsim import pack_token_matrices, token_maxima, weighted_mean
from assistant.knowledge.page_breadth import PageSizes
from assistant.knowledge.ranking import rank_candidates, recall_union
from assistant.knowledge.ranking_metrics import mrr_at_k
from assistant.knowledge.results import TURN_HITS
from assistant.knowledge.term_weights import count_term_weights, query_token_weights
from assistant.knowledge.training.encoding import (
    REBUILD_BATCH,
    BaseTokens,
    TuneProgressCallback,
    TuneStep,
    encode_texts,
)
from assistant.knowledge.training.pseudo_pairs import PseudoPair
from assistant.knowledge.vector_store import StoredChunk

__all__ = [
    "HeldOutGain",
    "HeldOutIndex",
    "HeldOutScores",
    "Projection",
    "StageRankings",
    "held_out_mrr",
]

Projection = Callable[[torch.Tensor], torch.Tensor]
"""Maps (n_tokens, base dimension) token vectors to a stage's own; ``None`` keeps them."""


@dataclass(slots=True)
class _Pool:
    """One query's candidate rows, in pool order, and their dense and lexical scores."""

    rows: list[int]
    dense: torch.Tensor
    lexical: torch.Tensor | None
    breadth: torch.Tensor | None = None
    """Each candidate's page breadth (``PageSizes.breadth``), as the retriever lowers it."""


@dataclass(slots=True)
class HeldOutIndex:
    """The index as the held-out queries must meet it: some chunks' texts replaced."""

    chunks: list[StoredChunk]
    dense: torch.Tensor
    lexical: LexicalIndex | None
    replaced_tokens: dict[int, torch.Tensor]
    queries: list[str]
    query_dense: torch.Tensor
    query_tokens: list[torch.Tensor]
    base: BaseTokens
    rows: dict[str, int]
    query_weights: list[np.ndarray | None]
    """Each query's token weights, as the retriever weighs them (``None``: plain MaxSim)."""

    @classmethod
    def build(
        cls,
        chunks: list[StoredChunk],
        dense: torch.Tensor,
        replaced_texts: Mapping[int, str],
        queries: Sequence[str],
        base: BaseTokens,
        use_lexical: bool,
        notify: TuneProgressCallback,
    ) -> HeldOutIndex:
        """The index of ``chunks`` (unit-norm dense vectors (N, d)) with the chunk at each
        index of ``replaced_texts`` holding that text instead, searched by ``queries``."""
        rows = sorted(replaced_texts)
        # The shipped index reads up to the encoder's own limit, not the training cut.
        replaced_dense, replaced_tokens = encode_texts(
            base,
            [replaced_texts[row] for row in rows],
            queries=False,
            max_tokens=None,
            notify=notify,
        )
        mirrored = dense.clone()
        if rows:
            mirrored[rows] = torch.nn.functional.normalize(replaced_dense, dim=-1)
        query_dense, query_tokens = encode_texts(
            base, list(queries), queries=True, max_tokens=None, notify=notify
        )
        texts = [
            replaced_texts.get(index, chunk.chunk.embedding_text)
            for index, chunk in enumerate(chunks)
        ]
        # The shipped index counts token rarity with its lexical index (``KnowledgeBase``).
        encoder = row_token_ids(base.late, base.encoder)
        counts = count_term_weights(encoder, texts) if use_lexical and encoder else None
        lexical = (
            LexicalIndex.build(
                ((chunk.chunk_id, text) for chunk, text in zip(chunks, texts, strict=True)),
                term_weights=counts,
                # As the shipped index counts them: long pages rank lower (``page_breadth``).
                page_sizes=PageSizes.count(chunk.url for chunk in chunks),
            )
            if use_lexical
            else None
        )
        return cls(
            chunks=chunks,
            dense=mirrored,
            lexical=lexical,
            replaced_tokens=dict(zip(rows, replaced_tokens, strict=True)),
            queries=list(queries),
            query_dense=query_dense,
            query_tokens=[tokens.to(torch.float32) for tokens in query_tokens],
            base=base,
            rows={chunk.chunk_id: row for row, chunk in enumerate(chunks)},
            query_weights=[
                query_token_weights(counts, encoder, query, int(tokens.shape[0]))
                for query, tokens in zip(queries, query_tokens, strict=True)
            ],
        )

    def recall(self, number: int, recall_k: int) -> _Pool:
        """Query ``number``'s candidate pool: dense top-k ∪ BM25 top-k, as the retriever's."""
        similarities = self.dense @ self.query_dense[number]
        depth = min(recall_k, int(similarities.shape[0]))
        dense_rows: list[int] = similarities.topk(depth).indices.tolist()
        if self.lexical is None:
            return _Pool(dense_rows, similarities[dense_rows], None)
        scores = self.lexical.query(self.queries[number])
        lexical_rows = [self.rows[chunk_id] for chunk_id, _ in scores.top(recall_k)]
        pool = recall_union(dense_rows, lexical_rows)
        lexical = torch.tensor(scores.of([self.chunks[row].chunk_id for row in pool]))
        sizes = self.lexical.page_sizes
        breadth = (
            None
            if sizes is None
            else torch.tensor([sizes.breadth(self.chunks[row].url) for row in pool])
        )
        return _Pool(pool, similarities[pool], lexical, breadth)

    def tokens(self, rows: list[int]) -> list[torch.Tensor]:
        """Base token vectors of the chunks at ``rows`` as this copy of the index holds them."""
        stored = [row for row in rows if row not in self.replaced_tokens]
        from_cache = dict(
            zip(stored, self.base.of([self.chunks[row] for row in stored]), strict=True)
        )
        return [
            self.replaced_tokens[row].to(torch.float32)
            if row in self.replaced_tokens
            else from_cache[row]
            for row in rows
        ]

    def rankings(
        self,
        stages: Sequence[Projection | None],
        weights: FusionWeights,
        recall_k: int,
        notify: TuneProgressCallback,
        match_k: int = TURN_HITS,
    ) -> list[StageRankings]:
        """Every query's ranked pool (chunk rows, best first) under each stage's projection,
        and its best match: the best plain MaxSim among the first ``match_k`` rows, as
        ``SearchResult.best_match`` reads it for the no-answer rule.

        Pools are recalled first; then each pooled chunk's token vectors are read and
        projected once, for every query whose pool holds it.
        """
        pools = [self.recall(number, recall_k) for number in range(len(self.queries))]
        needs: dict[int, list[tuple[int, int]]] = {}
        for number, pool in enumerate(pools):
            for position, row in enumerate(pool.rows):
                needs.setdefault(row, []).append((number, position))
        queries = [
            [tokens if project is None else project(tokens) for tokens in self.query_tokens]
            for project in stages
        ]
        late = [[torch.zeros(len(pool.rows)) for pool in pools] for _ in stages]
        plain = [[np.zeros(len(pool.rows)) for pool in pools] for _ in stages]
        rows = sorted(needs)
        notify(TuneStep("evaluation", 0, total=len(rows)))
        for start in range(0, len(rows), REBUILD_BATCH):
            batch = rows[start : start + REBUILD_BATCH]
            base_matrices = self.tokens(batch)
            for stage, project in enumerate(stages):
                matrices = (
                    base_matrices if project is None else _project_all(project, base_matrices)
                )
                for row, matrix in zip(batch, matrices, strict=True):
                    packed = pack_token_matrices([matrix], int(matrix.shape[1]))
                    for number, position in needs[row]:
                        maxima = token_maxima(queries[stage][number], packed)
                        late[stage][number][position] = float(
                            weighted_mean(maxima, self.query_weights[number])[0]
                        )
                        plain[stage][number][position] = float(weighted_mean(maxima)[0])
            notify(TuneStep("evaluation", len(batch)))
        results = []
        for stage in range(len(stages)):
            ranked: list[list[int]] = []
            best = np.zeros(len(pools))
            for number, (pool, scores) in enumerate(zip(pools, late[stage], strict=True)):
                order = rank_candidates(
                    pool.dense, scores, weights, pool.lexical, pool.breadth
                ).order
                ranked.append([pool.rows[i] for i in order])
                if order:
                    best[number] = max(plain[stage][number][i] for i in order[:match_k])
            results.append(StageRankings(ranked, best))
        return results


@dataclass(frozen=True, slots=True)
class StageRankings:
    """The held-out queries' ranked pools under one stage, and their best matches."""

    rows: list[list[int]]
    """Per query, chunk rows best first."""
    best_match: np.ndarray
    """(queries,) the best plain MaxSim among each query's first hits."""


@dataclass(frozen=True, slots=True)
class HeldOutScores:
    """What one stage scored on the held-out queries, query by query."""

    reciprocal_ranks: np.ndarray
    """(queries,) MRR@10 at the document level."""
    best_match: np.ndarray
    """(queries,) as ``StageRankings.best_match``."""


def held_out_mrr(
    index: HeldOutIndex,
    held_out: Sequence[PseudoPair],
    stages: Sequence[Projection | None],
    weights: FusionWeights,
    recall_k: int,
    notify: TuneProgressCallback,
) -> list[HeldOutScores]:
    """Each held-out query's reciprocal rank (MRR@10, document level) and best match under
    the shipped ranking with each stage's projection, the queries in order."""
    scores = []
    for stage in index.rankings(stages, weights, recall_k, notify):
        ranks = np.zeros(len(held_out), dtype=np.float64)
        for query, (pair, rows) in enumerate(zip(held_out, stage.rows, strict=True)):
            documents = list(dict.fromkeys(index.chunks[row].url for row in rows))
            ranks[query] = mrr_at_k(documents, {pair.document: 1}, 10)
        scores.append(HeldOutScores(ranks, stage.best_match))
    return scores


@dataclass(frozen=True, slots=True)
class HeldOutGain:
    """How much better a candidate stage ranks the held-out queries than the current one."""

    before: float
    """Mean reciprocal rank with the current stage."""
    after: float
    """Mean reciprocal rank with the candidate."""
    standard_error: float
    """Standard error of the mean of the per-query differences (0 for fewer than 2 queries)."""

    @classmethod
    def paired(cls, before: np.ndarray, after: np.ndarray) -> HeldOutGain:
        """The gain of ``after`` over ``before``, the same queries in the same order.

        >>> gain = HeldOutGain.paired(np.array([0.5, 1.0, 0.0]), np.array([1.0, 1.0, 0.5]))
        >>> round(gain.after - gain.before, 3), round(gain.standard_error, 3)
        (0.333, 0.167)
        """
        if before.shape != after.shape:
            raise ValueError(f"paired scores differ in shape: {before.shape} and {after.shape}")
        differences = after - before
        count = len(differences)
        error = float(differences.std(ddof=1) / math.sqrt(count)) if count > 1 else 0.0
        mean_before = float(before.mean()) if count else 0.0
        mean_after = float(after.mean()) if count else 0.0
        return cls(mean_before, mean_after, error)

    def beyond_noise(self, min_gain: float, noise_factor: float) -> bool:
        """Whether the gain is at least ``min_gain`` and ``noise_factor`` standard errors: a
        head that changes every ranking of the knowledge base must earn it by more than the
        luck of which pseudo-queries were held out.

        >>> HeldOutGain(0.546, 0.547, 0.004).beyond_noise(0.005, 2.0)
        False
        >>> HeldOutGain(0.50, 0.56, 0.01).beyond_noise(0.005, 2.0)
        True
        """
        gain = self.after - self.before
        return gain >= min_gain and gain > noise_factor * self.standard_error


def _project_all(project: Projection, matrices: list[torch.Tensor]) -> list[torch.Tensor]:
    """Project several token matrices in one call."""
    if not matrices:
        return []
    lengths = [int(matrix.shape[0]) for matrix in matrices]
    return list(torch.split(project(torch.cat(matrices)), lengths))
