"""Token vectors for training and its held-out check, and the progress steps of tuning.

``BaseTokens`` reads the base encoder's token vectors of stored chunks from the token cache
(computing and caching misses); ``encode_texts`` encodes texts that are not in the index
(pseudo-queries, positives, held-out copies of chunks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from assistant.knowledge.encoder import EncodedText, Encoder, TokenEncoder, TransformerEncoder
from assistant.knowledge.token_cache import TokenCache, cache_key, token_space
from assistant.knowledge.training.head import BASE_HEAD_VERSION
from assistant.knowledge.vector_store import KnowledgeBaseAdmin, StoredChunk

__all__ = [
    "ENCODE_BATCH",
    "REBUILD_BATCH",
    "BaseTokens",
    "TuneProgressCallback",
    "TuneStep",
    "encode_texts",
    "load_chunks",
]

ENCODE_BATCH = 256  # texts per encoder call, so progress moves while the encoder batches inside
REBUILD_BATCH = 256  # chunks per cache read/write while rebuilding


@dataclass(frozen=True, slots=True)
class TuneStep:
    """Progress of tuning: ``advance`` more of ``task`` done (``total`` when known)."""

    task: Literal["encoding", "training", "evaluation", "cache"]
    advance: int
    total: int | None = None


TuneProgressCallback = Callable[[TuneStep], None]


class BaseTokens:
    """The encoders, and base token vectors of stored chunks (cached under the base key)."""

    def __init__(self, encoder: Encoder, late: TokenEncoder, cache: TokenCache) -> None:
        self.encoder = encoder
        self.late = late
        self.cache = cache

    def of(self, chunks: Sequence[StoredChunk]) -> list[torch.Tensor]:
        """(n_tokens, base dimension) per chunk, in order; misses are encoded and cached."""
        model_id = token_space(self.late)
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


def encode_texts(
    base: BaseTokens,
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
    for start in range(0, len(texts), ENCODE_BATCH):
        batch = list(texts[start : start + ENCODE_BATCH])
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


def load_chunks(store: KnowledgeBaseAdmin) -> tuple[list[StoredChunk], torch.Tensor]:
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
