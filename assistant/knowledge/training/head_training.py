"""Training a projection head by contrastive MaxSim over precomputed base token vectors.

The base encoder is frozen, so every query, positive and hard negative is encoded once before
training and only the head's weights move. Each query is scored by MaxSim against every
positive and hard negative of its batch (in-batch negatives); columns from the query's own
document are left out, since they may answer it too. The loss is cross-entropy over those
scores divided by a temperature; AdamW with a linear warm-up then a linear decay to zero.

>>> steps = train_projection_head(head, training_set, TrainingSchedule(steps=500))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from assistant.knowledge.maxsim import pad_token_matrices
from assistant.knowledge.training.head import ProjectionHead

__all__ = [
    "TrainingSchedule",
    "TrainingSet",
    "batch_loss",
    "maxsim_matrix",
    "train_projection_head",
]


@dataclass(slots=True)
class TrainingSet:
    """Base token vectors of the training pairs, one entry per pair.

    ``queries[i]`` (Lq_i, d), ``positives[i]`` (Ld_i, d) and ``negatives[i]`` (Ln_i, d) or
    ``None``, in any float dtype (float16 keeps memory down); ``query_documents[i]`` is the
    document the query comes from, ``negative_documents[i]`` the hard negative's.
    """

    queries: list[torch.Tensor]
    positives: list[torch.Tensor]
    negatives: list[torch.Tensor | None]
    query_documents: list[str]
    negative_documents: list[str | None]


@dataclass(frozen=True, slots=True)
class TrainingSchedule:
    """Optimiser settings: ``steps`` batches of ``batch_size`` pairs, reshuffled every epoch."""

    steps: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 20
    temperature: float = 0.05
    seed: int = 0


def maxsim_matrix(
    queries: torch.Tensor,
    queries_mask: torch.Tensor,
    documents: torch.Tensor,
    documents_mask: torch.Tensor,
) -> torch.Tensor:
    """MaxSim of every query against every document: (B, Lq, d) x (N, Ld, d) → (B, N).

    Masks are bool, True for real tokens: ``queries_mask`` (B, Lq), ``documents_mask`` (N, Ld)
    with Ld ≥ 1. Rows are expected unit norm and padding rows zero (as ``pad_token_matrices``
    makes them and a projection head keeps them); padded query rows do not count in the mean.

    >>> queries = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> documents = torch.tensor([[[1.0, 0.0], [0.6, 0.8]], [[0.8, 0.6], [0.0, 0.0]]])
    >>> maxsim_matrix(queries, torch.tensor([[True, True]]), documents,
    ...               torch.tensor([[True, True], [True, False]]))
    tensor([[0.9000, 0.7000]])
    """
    count, query_length, dimension = queries.shape
    documents_count, document_length, _ = documents.shape
    # Zero padding rows score 0, and -4 added makes that -4: cosines of real tokens are at
    # least -1, so padding never wins a maximum.
    padding = torch.where(documents_mask, 0.0, -4.0).reshape(1, documents_count * document_length)
    # An additive bias and max() with indices back-propagate faster than masked_fill + amax.
    similarities = torch.addmm(
        padding.to(queries.dtype),
        queries.reshape(count * query_length, dimension),
        documents.reshape(documents_count * document_length, dimension).T,
    ).reshape(count, query_length, documents_count, document_length)
    best = similarities.max(dim=3).values  # (B, Lq, N)
    weights = queries_mask.to(best.dtype).unsqueeze(-1)  # (B, Lq, 1)
    return (best * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def batch_loss(
    head: ProjectionHead, data: TrainingSet, indices: list[int], temperature: float
) -> torch.Tensor:
    """Cross-entropy of each query of the batch over its positives and hard negatives."""
    queries, queries_mask = pad_token_matrices([data.queries[i] for i in indices])
    columns = [data.positives[i] for i in indices]
    column_documents = [data.query_documents[i] for i in indices]
    for index in indices:
        negative = data.negatives[index]
        if negative is not None:
            columns.append(negative)
            column_documents.append(data.negative_documents[index] or "")
    documents, documents_mask = pad_token_matrices(columns)
    scores = maxsim_matrix(head(queries), queries_mask, head(documents), documents_mask)
    same_document = torch.tensor(
        [
            [
                column != row and document == data.query_documents[index]
                for column, document in enumerate(column_documents)
            ]
            for row, index in enumerate(indices)
        ],
        dtype=torch.bool,
    )
    logits = (scores / temperature).masked_fill(same_document, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(indices)))


def train_projection_head(
    head: ProjectionHead,
    data: TrainingSet,
    schedule: TrainingSchedule,
    *,
    on_step: Callable[[], None] | None = None,
) -> int:
    """Train ``head`` in place for ``schedule.steps`` steps; returns the steps taken.

    Leaves the head in eval mode. Batch order is drawn from ``schedule.seed``.
    """
    count = len(data.queries)
    total = schedule.steps if count else 0
    warmup = max(1, min(schedule.warmup_steps, total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    optimizer = torch.optim.AdamW(head.parameters(), lr=schedule.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    generator = torch.Generator().manual_seed(schedule.seed)
    head.train()
    step = 0
    order: list[int] = []
    while step < total:
        if not order:
            order = torch.randperm(count, generator=generator).tolist()
        batch, order = order[: schedule.batch_size], order[schedule.batch_size :]
        loss = batch_loss(head, data, batch, schedule.temperature)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        step += 1
        if on_step is not None:
            on_step()
    head.eval()
    return step
