"""Domain adaptation of the late-interaction stage: a projection head trained on a knowledge base.

``tune_knowledge_base`` makes pseudo-queries from the knowledge base's own chunks
(``pseudo_pairs``), trains a ``ProjectionHead`` over the frozen base encoder's token vectors,
and keeps it only if the full shipped ranking (dense ∪ lexical recall → MaxSim → fusion with the
knowledge base's weights) ranks held-out pseudo-queries better with it than the current stage.

Training: base token vectors of every query, positive and hard negative are computed once
(positives cut at 180 tokens); each query is scored by MaxSim against the batch's positives and
hard negatives (columns from its own document left out) with cross-entropy at temperature 0.05;
AdamW, lr 1e-3, 20 warm-up steps then linear decay, 2 epochs of batches of 32. The hard negative
of a query is a chunk of another document at dense rank 4–30.

The held-out check searches a copy of the index from which each held-out query's own text is
taken out (see ``held_out_index_texts``) and scores document-level MRR@10, as in BEIR: any chunk
of the query's document counts.

Example::

    report = tune_knowledge_base(store, encoder, cache, heads_dir=Path("data/heads/docs"),
                                 weights=retriever.weights, use_lexical=True, recall_k=100)
    report.mrr_before, report.mrr_after, report.kept
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from assistant.errors import ConfigError
from assistant.evaluation.metrics import mrr_at_k
from assistant.knowledge.encoder import EncodedText, Encoder, TokenEncoder, TransformerEncoder
from assistant.knowledge.fusion import FusionWeights, fuse
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.token_cache import TokenCache, cache_key
from assistant.knowledge.token_codec import DEFAULT_FORMAT, bytes_per_token
from assistant.knowledge.training.head import (
    ACTIVE_HEAD_KEY,
    BASE_HEAD_VERSION,
    ProjectedTokenEncoder,
    ProjectionHead,
    head_path,
)
from assistant.knowledge.training.head_training import (
    TrainingSchedule,
    TrainingSet,
    train_projection_head,
)
from assistant.knowledge.training.pseudo_pairs import (
    PairOptions,
    PseudoPair,
    PseudoPairs,
    held_out_index_texts,
    make_pseudo_pairs,
    mine_hard_negatives,
)
from assistant.knowledge.vector_store import KnowledgeBaseAdmin, StoredChunk

__all__ = [
    "TuneOptions",
    "TuneProgressCallback",
    "TuneReport",
    "TuneStep",
    "tune_knowledge_base",
]

logger = logging.getLogger(__name__)

_ENCODE_BATCH = 256  # texts per encoder call, so progress moves while the encoder batches inside
_REBUILD_BATCH = 256  # chunks per cache read/write while rebuilding


@dataclass(frozen=True, slots=True)
class TuneOptions:
    """How a head is trained and checked; the defaults train 10k chunks in minutes on a CPU.

    ``pairs.seed`` seeds everything random (pairs, negatives, batch order), so a run repeats.
    ``max_steps`` caps training steps; ``require_improvement=False`` keeps the head whatever
    the held-out check says.
    """

    pairs: PairOptions = field(default_factory=PairOptions)
    min_chunks: int = 50
    out_dimension: int = 128
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 20
    temperature: float = 0.05
    max_document_tokens: int = 180
    max_steps: int | None = None
    principal_sample_tokens: int = 50_000
    hard_negative_ranks: tuple[int, int] = (4, 30)
    require_improvement: bool = True


@dataclass(frozen=True, slots=True)
class TuneStep:
    """Progress of tuning: ``advance`` more of ``task`` done (``total`` when known)."""

    task: Literal["encoding", "training", "evaluation", "cache"]
    advance: int
    total: int | None = None


TuneProgressCallback = Callable[[TuneStep], None]


@dataclass(frozen=True, slots=True)
class TuneReport:
    """What tuning did and measured. ``head_version`` is the trained head, kept or not."""

    knowledge_base: str
    pairs: int
    steps: int
    seconds: float
    held_out_queries: int
    mrr_before: float
    mrr_after: float
    kept: bool
    head_version: str
    bytes_per_token_before: int
    bytes_per_token_after: int


def tune_knowledge_base(
    store: KnowledgeBaseAdmin,
    encoder: Encoder,
    token_cache: TokenCache,
    *,
    late_base: TokenEncoder | None = None,
    heads_dir: Path,
    weights: FusionWeights,
    use_lexical: bool,
    recall_k: int = 100,
    current: ProjectedTokenEncoder | None = None,
    token_format: str = DEFAULT_FORMAT,
    options: TuneOptions | None = None,
    progress: TuneProgressCallback | None = None,
) -> TuneReport:
    """Train a head on ``store``'s chunks; keep it if held-out MRR@10 beats the current stage.

    ``late_base`` makes the token vectors the head reads (default: ``encoder``'s own pass; a
    ColBERT checkpoint when one is configured); ``encoder`` gives the dense vectors of recall.
    ``current`` is the late encoder in use (``None``: ``late_base``'s vectors as they are). When the head is kept
    (or ``options.require_improvement`` is off) it is written under ``heads_dir``, every chunk's
    token vectors are cached under its version, and it is recorded as the knowledge base's
    active head. Callers must then rebuild their retriever and ingestor.

    Raises:
        ConfigError: the knowledge base has fewer than ``options.min_chunks`` chunks, or its
            text gives too few pseudo-queries.
    """
    options = options or TuneOptions()
    notify: TuneProgressCallback = progress or (lambda step: None)
    started = time.perf_counter()
    chunks, dense = _load_chunks(store)
    if len(chunks) < options.min_chunks:
        raise ConfigError(
            f"knowledge base {store.name!r} has {len(chunks)} chunks; tuning needs at least "
            f"{options.min_chunks}. Ingest more content, then run `assistant tune` again"
        )
    pairs = make_pseudo_pairs(chunks, options.pairs)
    if len(pairs.train) < options.batch_size or not pairs.held_out:
        raise ConfigError(
            f"knowledge base {store.name!r} gives {len(pairs.train)} training pairs and "
            f"{len(pairs.held_out)} held-out queries: too few sentences of "
            f"{options.pairs.min_sentence_words}-{options.pairs.max_sentence_words} words or titles. "
            "Ingest more prose, then run `assistant tune` again"
        )
    base = _BaseTokens(encoder, late_base or encoder, token_cache)
    data = _training_data(pairs, chunks, dense, base, options, notify)
    sample = _token_sample(data.positives, options)
    head = ProjectionHead.from_principal_components(sample, options.out_dimension)
    total = options.epochs * math.ceil(len(data.queries) / options.batch_size)
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    notify(TuneStep("training", 0, total=total))
    steps = train_projection_head(
        head,
        data,
        TrainingSchedule(
            steps=total,
            batch_size=options.batch_size,
            learning_rate=options.learning_rate,
            warmup_steps=options.warmup_steps,
            temperature=options.temperature,
            seed=options.pairs.seed,
        ),
        on_step=lambda: notify(TuneStep("training", 1)),
    )
    mirror = _Mirror.build(chunks, dense, pairs.held_out, base, use_lexical, notify)
    before, after = _held_out_mrr(
        mirror,
        pairs.held_out,
        [current.project if current is not None else None, head.project],
        weights,
        recall_k,
        notify,
    )
    kept = after > before or not options.require_improvement
    logger.info("held-out MRR@10 %.4f → %.4f; head %s kept: %s", before, after, head.version, kept)
    if kept:
        head.save(head_path(heads_dir, head.version), model_id=base.late.model_id)
        _rebuild_cache(chunks, head, base, notify)
        store.update_kb_metadata({ACTIVE_HEAD_KEY: head.version})
    token_dimension = current.token_dimension if current is not None else base.late.token_dimension
    return TuneReport(
        knowledge_base=store.name,
        pairs=len(pairs.train),
        steps=steps,
        seconds=time.perf_counter() - started,
        held_out_queries=len(pairs.held_out),
        mrr_before=before,
        mrr_after=after,
        kept=kept,
        head_version=head.version,
        bytes_per_token_before=bytes_per_token(token_dimension, token_format),
        bytes_per_token_after=bytes_per_token(head.out_dimension, token_format),
    )


# Token vectors.


class _BaseTokens:
    """The encoders, and base token vectors of stored chunks (cached under the base key)."""

    def __init__(self, encoder: Encoder, late: TokenEncoder, cache: TokenCache) -> None:
        self.encoder = encoder
        self.late = late
        self.cache = cache

    def of(self, chunks: Sequence[StoredChunk]) -> list[torch.Tensor]:
        """(n_tokens, base dimension) per chunk, in order; misses are encoded and cached."""
        model_id = self.late.model_id
        keys = [
            cache_key(model_id, BASE_HEAD_VERSION, chunk.chunk_hash) if chunk.chunk_hash else ""
            for chunk in chunks
        ]
        found = self.cache.get_many([key for key in keys if key])
        matrices: list[torch.Tensor | None] = []
        cached = iter(found)
        for key in keys:
            matrices.append(next(cached) if key else None)
        missing = [index for index, matrix in enumerate(matrices) if matrix is None]
        if missing:
            encoded = self.late.encode_document_tokens(
                [chunks[index].chunk.embedding_text for index in missing]
            )
            fresh: dict[str, torch.Tensor] = {}
            for index, matrix in zip(missing, encoded, strict=True):
                matrices[index] = matrix
                if keys[index]:
                    fresh[keys[index]] = matrix
            self.cache.put_many(fresh)
        return [matrix for matrix in matrices if matrix is not None]


def _encode(
    base: _BaseTokens,
    texts: Sequence[str],
    *,
    queries: bool,
    max_tokens: int | None,
    notify: TuneProgressCallback,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Dense vectors (n, d) and float16 base token matrices (cut at ``max_tokens``) of texts.

    With no separate late-interaction model, one encoder pass gives both.
    """
    dense: list[torch.Tensor] = []
    tokens: list[torch.Tensor] = []
    encoder = base.encoder
    for start in range(0, len(texts), _ENCODE_BATCH):
        batch = list(texts[start : start + _ENCODE_BATCH])
        encoded: list[EncodedText]
        if queries and not isinstance(encoder, TransformerEncoder):
            # Other encoders may mark queries differently from passages; one call per query.
            encoded = [encoder.encode_query(text) for text in batch]
        else:
            # TransformerEncoder encodes a query exactly as a passage, so queries batch too.
            encoded = encoder.encode_documents(batch)
        dense.extend(item.dense for item in encoded)
        if base.late is encoder:
            matrices = [item.tokens for item in encoded]
        elif queries:
            matrices = [base.late.encode_query_tokens(text) for text in batch]
        else:
            matrices = base.late.encode_document_tokens(batch)
        tokens.extend(matrix[:max_tokens].to(torch.float16) for matrix in matrices)
        notify(TuneStep("encoding", len(batch)))
    return (torch.stack(dense) if dense else torch.zeros(0, encoder.dimension)), tokens


def _load_chunks(store: KnowledgeBaseAdmin) -> tuple[list[StoredChunk], torch.Tensor]:
    """Every chunk (sorted by id, so runs repeat) and its unit-norm dense vector (N, d)."""
    chunks: list[StoredChunk] = []
    pages: list[torch.Tensor] = []
    for page, vectors in store.iter_embedded_chunks():
        chunks.extend(page)
        pages.append(vectors)
    if not chunks:
        return [], torch.zeros(0, 0)
    order = sorted(range(len(chunks)), key=lambda index: chunks[index].chunk_id)
    dense = torch.nn.functional.normalize(torch.cat(pages)[order], dim=-1)
    return [chunks[index] for index in order], dense


def _training_data(
    pairs: PseudoPairs,
    chunks: list[StoredChunk],
    dense: torch.Tensor,
    base: _BaseTokens,
    options: TuneOptions,
    notify: TuneProgressCallback,
) -> TrainingSet:
    train = pairs.train
    replaced = len(held_out_index_texts(chunks, pairs.held_out))
    notify(TuneStep("encoding", 0, total=2 * len(train) + len(pairs.held_out) + replaced))
    limit = options.max_document_tokens
    query_dense, queries = _encode(
        base, [p.query for p in train], queries=True, max_tokens=None, notify=notify
    )
    _, positives = _encode(
        base, [p.positive for p in train], queries=False, max_tokens=limit, notify=notify
    )
    candidates = [i for i, chunk in enumerate(chunks) if chunk.chunk_id in pairs.train_chunk_ids]
    mined = mine_hard_negatives(
        query_dense,
        dense[candidates],
        [pair.document for pair in train],
        [chunks[index].url for index in candidates],
        ranks=options.hard_negative_ranks,
        seed=options.pairs.seed,
    )
    negative_indices = [candidates[m] if m is not None else None for m in mined]
    wanted = sorted({index for index in negative_indices if index is not None})
    matrices: dict[int, torch.Tensor] = {}
    for start in range(0, len(wanted), _REBUILD_BATCH):
        batch = wanted[start : start + _REBUILD_BATCH]
        for index, matrix in zip(batch, base.of([chunks[i] for i in batch]), strict=True):
            matrices[index] = matrix[:limit].to(torch.float16)
    return TrainingSet(
        queries=queries,
        positives=positives,
        negatives=[matrices[i] if i is not None else None for i in negative_indices],
        query_documents=[pair.document for pair in train],
        negative_documents=[chunks[i].url if i is not None else None for i in negative_indices],
    )


def _token_sample(matrices: Sequence[torch.Tensor], options: TuneOptions) -> torch.Tensor:
    """Up to ``principal_sample_tokens`` token vectors from randomly chosen matrices."""
    generator = torch.Generator().manual_seed(options.pairs.seed)
    rows: list[torch.Tensor] = []
    taken = 0
    for index in torch.randperm(len(matrices), generator=generator).tolist():
        if taken >= options.principal_sample_tokens:
            break
        rows.append(matrices[index].to(torch.float32))
        taken += int(matrices[index].shape[0])
    return torch.cat(rows)[: options.principal_sample_tokens]


# Held-out check.

_Projection = Callable[[torch.Tensor], torch.Tensor]


@dataclass(slots=True)
class _Mirror:
    """The index as the held-out queries must meet it: their own text taken out."""

    chunks: list[StoredChunk]
    dense: torch.Tensor
    lexical: LexicalIndex | None
    replaced_tokens: dict[int, torch.Tensor]
    query_dense: torch.Tensor
    query_tokens: list[torch.Tensor]
    base: _BaseTokens
    rows: dict[str, int]

    @classmethod
    def build(
        cls,
        chunks: list[StoredChunk],
        dense: torch.Tensor,
        held_out: list[PseudoPair],
        base: _BaseTokens,
        use_lexical: bool,
        notify: TuneProgressCallback,
    ) -> _Mirror:
        texts = held_out_index_texts(chunks, held_out)
        rows = sorted(texts)
        # The shipped index reads up to the encoder's own limit, not the training cut.
        replaced_dense, replaced_tokens = _encode(
            base,
            [texts[row] for row in rows],
            queries=False,
            max_tokens=None,
            notify=notify,
        )
        mirrored = dense.clone()
        if rows:
            mirrored[rows] = torch.nn.functional.normalize(replaced_dense, dim=-1)
        query_dense, query_tokens = _encode(
            base,
            [pair.query for pair in held_out],
            queries=True,
            max_tokens=None,
            notify=notify,
        )
        lexical = (
            LexicalIndex.build(
                (chunk.chunk_id, texts.get(index, chunk.chunk.embedding_text))
                for index, chunk in enumerate(chunks)
            )
            if use_lexical
            else None
        )
        return cls(
            chunks=chunks,
            dense=mirrored,
            lexical=lexical,
            replaced_tokens=dict(zip(rows, replaced_tokens, strict=True)),
            query_dense=query_dense,
            query_tokens=[tokens.to(torch.float32) for tokens in query_tokens],
            base=base,
            rows={chunk.chunk_id: row for row, chunk in enumerate(chunks)},
        )

    def recall(
        self, number: int, query: str, recall_k: int
    ) -> tuple[list[int], dict[str, torch.Tensor]]:
        """Held-out query ``number``'s candidate rows (dense top-k ∪ BM25 top-k) and signals."""
        similarities = self.dense @ self.query_dense[number]
        depth = min(recall_k, int(similarities.shape[0]))
        pool: list[int] = similarities.topk(depth).indices.tolist()
        signals: dict[str, torch.Tensor] = {}
        if self.lexical is not None:
            scores = self.lexical.query(query)
            in_pool = set(pool)
            for chunk_id, _ in scores.top(recall_k):
                row = self.rows[chunk_id]
                if row not in in_pool:
                    in_pool.add(row)
                    pool.append(row)
            signals["lexical"] = torch.tensor(
                scores.of([self.chunks[row].chunk_id for row in pool])
            )
        signals["dense"] = similarities[pool]
        return pool, signals

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


def _held_out_mrr(
    mirror: _Mirror,
    held_out: list[PseudoPair],
    stages: list[_Projection | None],
    weights: FusionWeights,
    recall_k: int,
    notify: TuneProgressCallback,
) -> list[float]:
    """Mean MRR@10 (document level) of the shipped ranking under each stage's projection.

    Candidate pools are recalled first; then each pooled chunk's token vectors are read and
    projected once, for every query whose pool holds it.
    """
    pools = [mirror.recall(number, pair.query, recall_k) for number, pair in enumerate(held_out)]
    needs: dict[int, list[tuple[int, int]]] = {}
    for number, (pool, _) in enumerate(pools):
        for position, row in enumerate(pool):
            needs.setdefault(row, []).append((number, position))
    queries = [
        [tokens if project is None else project(tokens) for tokens in mirror.query_tokens]
        for project in stages
    ]
    late = [[torch.zeros(len(pool)) for pool, _ in pools] for _ in stages]
    rows = sorted(needs)
    notify(TuneStep("evaluation", 0, total=len(rows)))
    for start in range(0, len(rows), _REBUILD_BATCH):
        batch = rows[start : start + _REBUILD_BATCH]
        base_matrices = mirror.tokens(batch)
        for stage, project in enumerate(stages):
            matrices = base_matrices if project is None else _project_all(project, base_matrices)
            for row, matrix in zip(batch, matrices, strict=True):
                for number, position in needs[row]:
                    # MaxSim of one query against one chunk, as ``maxsim_scores`` computes it.
                    similarities = queries[stage][number] @ matrix.T
                    late[stage][number][position] = similarities.max(dim=1).values.mean()
        notify(TuneStep("evaluation", len(batch)))
    totals = [0.0] * len(stages)
    for number, (pool, signals) in enumerate(pools):
        dense = signals["dense"]
        for stage in range(len(stages)):
            final = fuse({**signals, "late_interaction": late[stage][number]}, weights)
            order = sorted(range(len(pool)), key=lambda i: (-float(final[i]), -float(dense[i]), i))
            ranking = list(dict.fromkeys(mirror.chunks[pool[i]].url for i in order))
            totals[stage] += mrr_at_k(ranking, {held_out[number].document: 1}, 10)
    return [total / len(held_out) for total in totals]


def _project_all(project: _Projection, matrices: list[torch.Tensor]) -> list[torch.Tensor]:
    """Project several token matrices in one call."""
    if not matrices:
        return []
    lengths = [int(matrix.shape[0]) for matrix in matrices]
    return list(torch.split(project(torch.cat(matrices)), lengths))


def _rebuild_cache(
    chunks: list[StoredChunk],
    head: ProjectionHead,
    base: _BaseTokens,
    notify: TuneProgressCallback,
) -> None:
    """Cache every chunk's projected token vectors under the head's version."""
    notify(TuneStep("cache", 0, total=len(chunks)))
    model_id, version = base.late.model_id, head.version
    for start in range(0, len(chunks), _REBUILD_BATCH):
        batch = chunks[start : start + _REBUILD_BATCH]
        base_matrices = base.of(batch)
        base.cache.put_many(
            {
                cache_key(model_id, version, chunk.chunk_hash): head.project(matrix)
                for chunk, matrix in zip(batch, base_matrices, strict=True)
                if chunk.chunk_hash
            }
        )
        notify(TuneStep("cache", len(batch)))
