"""Domain adaptation of the late-interaction stage: a projection head trained on a knowledge base.

``tune_knowledge_base`` makes pseudo-queries from the knowledge base's own chunks
(``pseudo_pairs``), trains a ``ProjectionHead`` over the frozen base encoder's token vectors,
and keeps it only if the full shipped ranking (dense ∪ lexical recall → MaxSim → fusion with the
knowledge base's weights) ranks held-out pseudo-queries better with it than the current stage, by
at least ``min_gain`` of MRR@10 and by more than ``noise_factor`` standard errors of the
per-query gain. A head changes every ranking of the knowledge base, so a gain within the noise
of which queries were held out is not worth it: on three documentation sites, heads kept for
gains of 0.001-0.006 ranked the sites' real visitor questions no better (bench/README.md). A
kept head records where its best matches fall against the base vectors' on the held-out queries
(``match_scale``), so the no-answer threshold keeps its meaning.

Training: base token vectors of every query, positive and hard negative are computed once
(positives cut at 180 tokens); each query is scored by MaxSim against the batch's positives and
hard negatives (columns from its own document left out) with cross-entropy at temperature 0.05;
AdamW, lr 1e-3, 20 warm-up steps then linear decay, 2 epochs of batches of 32. The hard negative
of a query is a chunk of another document at dense rank 4–30.

The held-out check (``held_out``) searches a copy of the index from which each held-out query's
own text is taken out, ranking with the retriever's own ``rank_candidates``, and scores
document-level MRR@10, as in BEIR: any chunk of the query's document counts.

Example::

    report = tune_knowledge_base(store, encoder, cache, heads_dir=Path("data/heads/docs"),
                                 weights=retriever.weights, use_lexical=True, recall_k=100)
    report.mrr_before, report.mrr_after, report.kept
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from assistant.errors import ConfigError
from assistant.knowledge.encoder import Encoder, TokenEncoder
from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.token_cache import TokenCache, cache_key, token_space
from assistant.knowledge.token_codec import DEFAULT_FORMAT, bytes_per_token
from assistant.knowledge.training.encoding import (
    REBUILD_BATCH,
    BaseTokens,
    TuneProgressCallback,
    TuneStep,
    encode_texts,
    load_chunks,
)
from assistant.knowledge.training.head import (
    ACTIVE_HEAD_KEY,
    ProjectedTokenEncoder,
    ProjectionHead,
    head_path,
)
from assistant.knowledge.training.head_training import (
    TrainingSchedule,
    TrainingSet,
    train_projection_head,
)
from assistant.knowledge.training.held_out import HeldOutGain, HeldOutIndex, held_out_mrr
from assistant.knowledge.training.match_scale import MatchScale
from assistant.knowledge.training.pseudo_pairs import (
    PairOptions,
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


@dataclass(frozen=True, slots=True)
class TuneOptions:
    """How a head is trained and checked; the defaults train 10k chunks in minutes on a CPU.

    ``pairs.seed`` seeds everything random (pairs, negatives, batch order), so a run repeats.
    ``max_steps`` caps training steps; ``require_improvement=False`` keeps the head whatever
    the held-out check says. ``min_gain`` and ``noise_factor``: how much better than the
    current stage a head must rank the held-out queries to be kept (``HeldOutGain``).
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
    min_gain: float = 0.005
    noise_factor: float = 2.0


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
    gain_standard_error: float
    """Of the mean per-query gain ``mrr_after - mrr_before``."""
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
    """Train a head on ``store``'s chunks; keep it if it ranks held-out queries better than the
    current stage by more than their noise (``TuneOptions.min_gain``, ``noise_factor``).

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
    chunks, dense = load_chunks(store)
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
    base = BaseTokens(encoder, late_base or encoder, token_cache)
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
    index = HeldOutIndex.build(
        chunks,
        dense,
        held_out_index_texts(chunks, pairs.held_out),
        [pair.query for pair in pairs.held_out],
        base,
        use_lexical,
        notify,
    )
    # The base vectors are always a stage: the head's best matches are mapped to their scale.
    stages = [None, head.project, *([current.project] if current is not None else [])]
    base_scores, scores_after, *current_scores = held_out_mrr(
        index, pairs.held_out, stages, weights, recall_k, notify
    )
    scores_before = current_scores[0] if current_scores else base_scores
    gain = HeldOutGain.paired(scores_before.reciprocal_ranks, scores_after.reciprocal_ranks)
    kept = gain.beyond_noise(options.min_gain, options.noise_factor)
    kept = kept or not options.require_improvement
    logger.info(
        "held-out MRR@10 %.4f → %.4f (standard error of the gain %.4f); head %s kept: %s",
        gain.before,
        gain.after,
        gain.standard_error,
        head.version,
        kept,
    )
    if kept:
        head.match_scale = MatchScale.from_samples(scores_after.best_match, base_scores.best_match)
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
        mrr_before=gain.before,
        mrr_after=gain.after,
        gain_standard_error=gain.standard_error,
        kept=kept,
        head_version=head.version,
        bytes_per_token_before=bytes_per_token(token_dimension, token_format),
        bytes_per_token_after=bytes_per_token(head.out_dimension, token_format),
    )


def _training_data(
    pairs: PseudoPairs,
    chunks: list[StoredChunk],
    dense: torch.Tensor,
    base: BaseTokens,
    options: TuneOptions,
    notify: TuneProgressCallback,
) -> TrainingSet:
    train = pairs.train
    replaced = len(held_out_index_texts(chunks, pairs.held_out))
    notify(TuneStep("encoding", 0, total=2 * len(train) + len(pairs.held_out) + replaced))
    limit = options.max_document_tokens
    query_dense, queries = encode_texts(
        base, [p.query for p in train], queries=True, max_tokens=None, notify=notify
    )
    _, positives = encode_texts(
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
    for start in range(0, len(wanted), REBUILD_BATCH):
        batch = wanted[start : start + REBUILD_BATCH]
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


def _rebuild_cache(
    chunks: list[StoredChunk],
    head: ProjectionHead,
    base: BaseTokens,
    notify: TuneProgressCallback,
) -> None:
    """Cache every chunk's projected token vectors under the head's version."""
    notify(TuneStep("cache", 0, total=len(chunks)))
    model_id, version = token_space(base.late), head.version
    for start in range(0, len(chunks), REBUILD_BATCH):
        batch = chunks[start : start + REBUILD_BATCH]
        base_matrices = base.of(batch)
        base.cache.put_many(
            {
                cache_key(model_id, version, chunk.chunk_hash): head.project(matrix)
                for chunk, matrix in zip(batch, base_matrices, strict=True)
                if chunk.chunk_hash
            }
        )
        notify(TuneStep("cache", len(batch)))
