"""Late-interaction (ColBERT-style MaxSim) scoring over per-token embeddings.

Pure torch functions: no model, no cache. Token vectors are expected to be L2-normalised, so a dot
product is a cosine similarity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from assistant.knowledge.document_parts import (
    LEAD_ROWS,
    MIN_PART_ROWS,
    document_parts,
    run_in_parts,
)
from assistant.knowledge.int8_matmul import int8_query
from assistant.knowledge.thread_pools import thread_pools

__all__ = [
    "PackedTokens",
    "maxsim_scores",
    "maxsim_scores_packed",
    "maxsim_scores_ragged",
    "maxsim_span_scores",
    "pack_token_matrices",
    "pad_token_matrices",
    "token_maxima",
    "weighted_mean",
]


def maxsim_scores(
    query_embeddings: torch.Tensor,
    documents_embeddings: torch.Tensor,
    documents_mask: torch.Tensor,
    query_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Score every candidate document against one query by MaxSim.

    For document ``j``: for each real query token take the highest dot product with any real
    token of the document, then average over the real query tokens. All candidates are scored by
    one batched matrix product in float32.

    Args:
        query_embeddings: (Lq, d) token vectors of the query.
        documents_embeddings: (N, Ld, d) token vectors of N documents, padded to Ld rows.
        documents_mask: (N, Ld) bool, True where a row is a real token. Padding rows never take
            part in a maximum, whatever their values.
        query_mask: (Lq,) bool, True where a query row is a real token; None means all are real.

    Returns:
        (N,) float32 scores. A document with no real token scores 0.0, and so does every
        document when the query has no real token.

    Raises:
        ValueError: the shapes do not fit together.

    Example (two query tokens, two documents; the second has one real token and one padding row
    that would win every maximum if it were not masked)::

        query (1, 0), (0, 1); document 0: (1, 0), (0.6, 0.8); document 1: (0.8, 0.6), pad (9, 9)
        document 0: max(1, 0.6) = 1.0 and max(0, 0.8) = 0.8, mean 0.9
        document 1: 0.8 and 0.6, mean 0.7

        >>> query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> documents = torch.tensor([[[1.0, 0.0], [0.6, 0.8]], [[0.8, 0.6], [9.0, 9.0]]])
        >>> mask = torch.tensor([[True, True], [True, False]])
        >>> maxsim_scores(query, documents, mask)
        tensor([0.9000, 0.7000])
    """
    if query_embeddings.dim() != 2:
        raise ValueError(f"query_embeddings must be (Lq, d), got {tuple(query_embeddings.shape)}")
    if documents_embeddings.dim() != 3:
        raise ValueError(
            f"documents_embeddings must be (N, Ld, d), got {tuple(documents_embeddings.shape)}"
        )
    count, document_length, dimension = documents_embeddings.shape
    if query_embeddings.shape[1] != dimension:
        raise ValueError(
            f"query dimension {query_embeddings.shape[1]} differs from document dimension "
            f"{dimension}"
        )
    if tuple(documents_mask.shape) != (count, document_length):
        raise ValueError(
            f"documents_mask must be {(count, document_length)}, got {tuple(documents_mask.shape)}"
        )
    if query_mask is not None and tuple(query_mask.shape) != (query_embeddings.shape[0],):
        raise ValueError(
            f"query_mask must be ({query_embeddings.shape[0]},), got {tuple(query_mask.shape)}"
        )

    query = query_embeddings.to(torch.float32)
    documents = documents_embeddings.to(device=query.device, dtype=torch.float32)
    real_tokens = documents_mask.to(device=query.device, dtype=torch.bool)
    # (N, Ld, d) @ (d, Lq) runs as a single (N·Ld, d) x (d, Lq) product.
    similarities = torch.matmul(documents, query.T)  # (N, Ld, Lq)
    similarities = similarities.masked_fill(~real_tokens.unsqueeze(-1), float("-inf"))
    best = similarities.amax(dim=1) if document_length > 0 else similarities.sum(dim=1)
    # Rows of an empty document are all -inf; zero them so the mean is 0.0, not -inf or NaN.
    has_tokens = real_tokens.any(dim=1, keepdim=True)  # (N, 1)
    best = torch.where(has_tokens, best, torch.zeros_like(best))  # (N, Lq)
    if query_mask is None:
        query_weights = torch.ones(query.shape[0], dtype=torch.float32, device=query.device)
    else:
        query_weights = query_mask.to(device=query.device, dtype=torch.float32)
    real_query_tokens = query_weights.sum().clamp(min=1.0)
    return (best * query_weights).sum(dim=1) / real_query_tokens


def pad_token_matrices(
    matrices: Sequence[torch.Tensor], dimension: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token matrices of different lengths into one zero-padded batch.

    Args:
        matrices: N tensors of shape (n_i, d); n_i may be 0.
        dimension: d, required to shape the result when ``matrices`` is empty; when given, every
            matrix must have it.

    Returns:
        ``(embeddings, mask)``: embeddings (N, Lmax, d) float32 with zeros after each matrix's
        rows, mask (N, Lmax) bool, True where a row is real. Lmax = max n_i (0 for no rows).

    Raises:
        ValueError: a matrix is not 2-D or the dimensions differ.

    >>> embeddings, mask = pad_token_matrices([torch.ones(2, 3), torch.ones(1, 3)])
    >>> tuple(embeddings.shape), mask.tolist()
    ((2, 2, 3), [[True, True], [True, False]])
    """
    for matrix in matrices:
        if matrix.dim() != 2:
            raise ValueError(f"token matrices must be (n_tokens, d), got {tuple(matrix.shape)}")
    if dimension is None:
        dimension = int(matrices[0].shape[1]) if matrices else 0
    for matrix in matrices:
        if matrix.shape[1] != dimension:
            raise ValueError(f"token matrix has dimension {matrix.shape[1]}, expected {dimension}")
    device = matrices[0].device if matrices else torch.device("cpu")
    lengths = torch.tensor([matrix.shape[0] for matrix in matrices], dtype=torch.long)
    longest = int(lengths.max()) if matrices else 0
    embeddings = torch.zeros(len(matrices), longest, dimension, dtype=torch.float32, device=device)
    for row, matrix in enumerate(matrices):
        embeddings[row, : matrix.shape[0]] = matrix.to(device=device, dtype=torch.float32)
    mask = torch.arange(longest).unsqueeze(0) < lengths.unsqueeze(1)
    return embeddings, mask.to(device)


def maxsim_scores_ragged(
    query_embeddings: torch.Tensor, documents_embeddings: Sequence[torch.Tensor]
) -> torch.Tensor:
    """MaxSim of one query against documents of different lengths, without padding.

    The same scores as ``maxsim_scores`` over the padded batch: the documents are stacked row
    after row (``pack_token_matrices``) and scored by ``maxsim_scores_packed``, one product for
    all of them. At reranking sizes (a few hundred documents) this avoids both a padded copy
    of every candidate and a small product per document.

    Args:
        query_embeddings: (Lq, d) token vectors of the query; every row counts.
        documents_embeddings: N tensors of shape (Ld_i, d).

    Returns:
        (N,) float32 scores; a document with no rows scores 0.0.

    >>> query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> documents = [torch.tensor([[1.0, 0.0], [0.6, 0.8]]), torch.zeros(0, 2)]
    >>> [round(score, 6) for score in maxsim_scores_ragged(query, documents).tolist()]
    [0.9, 0.0]
    """
    if query_embeddings.dim() != 2:
        raise ValueError(f"query_embeddings must be (Lq, d), got {tuple(query_embeddings.shape)}")
    dimension = int(query_embeddings.shape[1])
    for index, document in enumerate(documents_embeddings):
        if document.shape[0] and (document.dim() != 2 or document.shape[1] != dimension):
            raise ValueError(
                f"document {index} must be (Ld, {dimension}), got {tuple(document.shape)}"
            )
    packed = pack_token_matrices(
        [d if d.shape[0] else d.reshape(0, dimension) for d in documents_embeddings], dimension
    )
    return maxsim_scores_packed(query_embeddings, packed)


@dataclass(frozen=True, slots=True)
class PackedTokens:
    """Token matrices of N documents stacked row after row, no padding.

    ``values`` is (T, d) with T = sum of ``lengths``; document ``i`` owns the ``lengths[i]``
    rows that follow those of documents ``0 .. i-1``. When ``scales`` (T,) is set, row ``t``
    of the token vectors is ``values[t] * scales[t]``: quantised rows (int8 ``values``, as the
    token cache stores them) are then scored without converting or scaling all of them first
    (a similarity is scaled instead, a (T, Lq) product rather than a (T, d) one). Without
    ``scales``, ``values`` is float32.
    """

    values: torch.Tensor
    lengths: list[int]
    scales: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def split(self) -> list[torch.Tensor]:
        """One (lengths[i], d) matrix per document (views unless rows are scaled)."""
        return [self.rows(start, end) for start, end in self.bounds()]

    def by_key(self, keys: Sequence[str]) -> Mapping[str, torch.Tensor]:
        """Document ``i``'s token vectors under ``keys[i]``, each made only when read."""
        return _PackedMatrices(self, keys)

    def bounds(self) -> list[tuple[int, int]]:
        """Each document's ``(start, end)`` rows in ``values``."""
        ends = np.cumsum(self.lengths, dtype=np.int64).tolist()
        return [(end - length, end) for end, length in zip(ends, self.lengths, strict=True)]

    def rows(self, start: int, end: int) -> torch.Tensor:
        """Token vectors ``start:end`` in float32 (a view unless rows are scaled)."""
        values = self.values[start:end]
        if self.scales is None:
            return values
        # In numpy: torch would spread a document's ~40,000 values over its thread pool, whose
        # threads then spin on, and this runs on the server's event loop for each cited passage.
        scales = self.scales[start:end].detach().cpu().numpy().astype(np.float32, copy=False)
        rows = values.detach().cpu().numpy().astype(np.float32)
        return torch.from_numpy(rows * scales[:, None])


class _PackedMatrices(Mapping[str, torch.Tensor]):
    """A read-only mapping of keys to the documents of a ``PackedTokens``.

    A search keeps every candidate's vectors but the answerer reads only a few; scaling
    quantised rows for the rest would be wasted work.
    """

    def __init__(self, packed: PackedTokens, keys: Sequence[str]) -> None:
        if len(keys) != len(packed.lengths):
            raise ValueError(f"{len(keys)} keys for {len(packed.lengths)} documents")
        self._packed = packed
        self._bounds = dict(zip(keys, packed.bounds(), strict=True))

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._packed.rows(*self._bounds[key])

    def __contains__(self, key: object) -> bool:
        # Mapping's own would read the rows (through __getitem__) only to say they are there.
        return key in self._bounds

    def __iter__(self) -> Iterator[str]:
        return iter(self._bounds)

    def __len__(self) -> int:
        return len(self._bounds)


def pack_token_matrices(matrices: Sequence[torch.Tensor], dimension: int) -> PackedTokens:
    """Stack (n_i, d) matrices into one ``PackedTokens`` (one copy, float32).

    >>> pack_token_matrices([torch.ones(2, 3), torch.zeros(0, 3)], 3).lengths
    [2, 0]
    """
    lengths = [int(matrix.shape[0]) for matrix in matrices]
    if not matrices:
        return PackedTokens(torch.zeros(0, dimension), lengths)
    values = torch.cat([matrix.to(torch.float32) for matrix in matrices])
    return PackedTokens(values, lengths)


def maxsim_scores_packed(query_embeddings: torch.Tensor, packed: PackedTokens) -> torch.Tensor:
    """MaxSim of one query against every document of ``packed``: each query token's best match
    in a document (``token_maxima``), averaged over the query's tokens.

    Returns:
        (N,) float32 scores; a document with no rows scores 0.0, and every document scores 0.0
        for a query with no rows.

    >>> query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> packed = pack_token_matrices([torch.tensor([[1.0, 0.0], [0.6, 0.8]]), torch.zeros(0, 2)], 2)
    >>> [round(score, 6) for score in maxsim_scores_packed(query, packed).tolist()]
    [0.9, 0.0]
    """
    return torch.from_numpy(weighted_mean(token_maxima(query_embeddings, packed)))


def weighted_mean(maxima: np.ndarray, token_weights: np.ndarray | None = None) -> np.ndarray:
    """(N,) float32: the rows of ``maxima`` (N, Lq) averaged, weighted by ``token_weights``
    (Lq,) when given; 0.0 for every row when there is no column."""
    if maxima.shape[1] == 0:
        return np.zeros(maxima.shape[0], dtype=np.float32)
    if token_weights is None:
        mean: np.ndarray = maxima.mean(axis=1, dtype=np.float32)
        return mean
    weights = np.asarray(token_weights, dtype=np.float32)
    if weights.shape != (maxima.shape[1],):
        raise ValueError(f"token_weights must be ({maxima.shape[1]},), got {weights.shape}")
    total = float(weights.sum())
    if total <= 0.0:
        raise ValueError("token_weights must not all be 0")
    weighted: np.ndarray = (maxima @ (weights / total)).astype(np.float32, copy=False)
    return weighted


def token_maxima(query_embeddings: torch.Tensor, packed: PackedTokens) -> np.ndarray:
    """Each query token's best similarity in every document of ``packed``: (N, Lq) float32.

    One product of the T rows with the query gives every similarity; the maximum over each
    document's rows is a segmented reduction (``numpy.maximum.reduceat``), so no Python work is
    done per document. Quantised (int8) rows are multiplied in integer products with the query split
    into int8 parts (``int8_matmul``), within about 1e-5 of the float product, and many of them
    are split into parts by documents, each part on a core of its own (``document_parts``). Where
    integer products are not available the rows are converted to float32 a block at a time,
    each block multiplied while it is still in the CPU's cache: converting all of them first
    would write and read back four times their size, which costs more than the product itself.
    A document with no rows gets 0.0 for every query token.
    """
    query = query_embeddings.to(torch.float32)
    if query.dim() != 2:
        raise ValueError(f"query_embeddings must be (Lq, d), got {tuple(query.shape)}")
    if packed.values.dim() != 2 or packed.values.shape[1] != query.shape[1]:
        raise ValueError(
            f"packed token values must be (T, {query.shape[1]}), got {tuple(packed.values.shape)}"
        )
    maxima = np.zeros((len(packed.lengths), query.shape[0]), dtype=np.float32)
    lengths = np.asarray(packed.lengths, dtype=np.int64)
    present = np.flatnonzero(lengths)
    if query.shape[0] == 0 or present.size == 0:
        return maxima
    values = packed.values.detach().cpu().numpy()
    query_rows = query.detach().cpu().numpy()
    row_scales = (
        None if packed.scales is None else packed.scales.detach().to(torch.float32).cpu().numpy()
    )
    starts = (np.cumsum(lengths) - lengths)[present]
    ends = starts + lengths[present]
    # int8 rows (the token cache's) are multiplied in integers, without a float copy of them.
    integer_query = int8_query(query_rows) if values.dtype == np.int8 else None
    query_t = np.ascontiguousarray(query_rows.T)

    def score(first: int, last: int) -> None:
        """The maxima of present documents ``first .. last - 1``, from their rows alone."""
        top, bottom = int(starts[first]), int(ends[last - 1])
        rows = values[top:bottom]
        scales = None if row_scales is None else row_scales[top:bottom]
        offsets = starts[first:last] - top
        integer = None if integer_query is None else integer_query.products(rows)
        if integer is not None:
            # Query first, (Lq, rows): each pass below runs along rows of the products. Each
            # query column's scale is positive, so it is applied after the maximum over a
            # document's rows: one float pass over the products (the rows' scales), not three.
            if scales is None:
                products = integer.values.astype(np.float32)
            else:
                products = np.multiply(integer.values, scales, dtype=np.float32)
            best = np.maximum.reduceat(products, offsets, axis=1)
            maxima[present[first:last]] = (best * integer.column_scales[:, None]).T
            return
        products = _row_products(rows, query_t)  # (rows, Lq)
        if scales is not None:
            products *= scales[:, None]
        maxima[present[first:last]] = np.maximum.reduceat(products, offsets, axis=0)

    parts = 1
    if integer_query is not None:
        # The float path is left whole: its BLAS thread limit is process-wide, and parts
        # running at once would undo each other's.
        threads = torch.get_num_threads()
        if threads > 1:
            parts = max(1, min(threads, int(ends[-1]) // MIN_PART_ROWS))
    run_in_parts(score, document_parts(ends, parts, lead=LEAD_ROWS))
    return maxima


_BLOCK_ROWS = 2048
"""Rows converted to float32 at a time: 3 MiB at d = 384, so a block stays in cache."""


def _row_products(values: np.ndarray, query_t: np.ndarray) -> np.ndarray:
    """``values @ query_t`` in float32: ``values`` (T, d) of any dtype, ``query_t`` (d, Lq).

    numpy's BLAS (OpenBLAS) ran these tall, narrow products faster than torch's on the CPUs
    measured (about 40% off the late-interaction stage of bench/search_real.py).
    """
    query_t = np.ascontiguousarray(query_t, dtype=np.float32)
    # One BLAS thread: a second saves about a millisecond here, then spins on after the
    # product, taking the CPU the rest of the turn (and other visitors' turns) needs; the
    # offline answer cost 60% more CPU time with it (bench/answerer.py). The limit is
    # process-wide while it lasts, so concurrent searches may leave it at one thread.
    with thread_pools().limit(limits=1, user_api="blas"):
        if values.dtype == np.float32:
            product: np.ndarray = np.matmul(values, query_t)
            return product
        total = values.shape[0]
        products = np.empty((total, query_t.shape[1]), dtype=np.float32)
        block = np.empty((min(_BLOCK_ROWS, total), values.shape[1]), dtype=np.float32)
        for start in range(0, total, _BLOCK_ROWS):
            end = min(start + _BLOCK_ROWS, total)
            rows = block[: end - start]
            rows[...] = values[start:end]
            np.matmul(rows, query_t, out=products[start:end])
        return products


def maxsim_span_scores(
    query_embeddings: torch.Tensor,
    document_embeddings: torch.Tensor,
    spans: Sequence[range],
    query_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """MaxSim of one query against spans of one document's token vectors.

    A span scores like a document made of just its rows, with the vectors the whole document
    gave them (each token still carries its context): the mean over query rows of the best
    similarity among the span's rows. One product serves every span.

    Args:
        query_embeddings: (Lq, d) token vectors of the query; every row counts.
        document_embeddings: (Ld, d) token vectors of the document.
        spans: S ranges of row indices into ``document_embeddings``.
        query_weights: (Lq,) non-negative weight of each query row in the mean (``None``: all
            1), to make some query tokens count less.

    Returns:
        (S,) float32 scores; an empty span scores 0.0.

    >>> query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> document = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    >>> [round(s, 6) for s in maxsim_span_scores(query, document, [range(0, 2), range(2, 3)]).tolist()]
    [0.9, 0.5]
    """
    query = query_embeddings.to(torch.float32)
    if query.dim() != 2 or document_embeddings.dim() != 2:
        raise ValueError("query and document embeddings must both be (L, d)")
    if query.shape[1] != document_embeddings.shape[1]:
        raise ValueError(
            f"query dimension {query.shape[1]} differs from document dimension "
            f"{document_embeddings.shape[1]}"
        )
    scores = np.zeros(len(spans), dtype=np.float32)
    if query.shape[0] == 0 or not spans:
        return torch.from_numpy(scores)
    # One torch product (numpy's BLAS would spin a second thread after it), then each span's
    # maximum in numpy: a torch call per span hands the GIL back and waits to take it again
    # behind the server's event loop, and the offline answerer scores every sentence here.
    product = query @ document_embeddings.to(torch.float32).T
    similarities = product.detach().cpu().numpy()  # (Lq, Ld)
    if query_weights is None:
        weights = np.full(query.shape[0], 1.0 / query.shape[0], dtype=np.float32)
    else:
        raw = query_weights.detach().cpu().numpy().astype(np.float32, copy=False)
        weights = raw / max(float(raw.sum()), 1e-6)
    for index, span in enumerate(spans):
        if len(span):
            scores[index] = similarities[:, span.start : span.stop].max(axis=1) @ weights
    return torch.from_numpy(scores)
