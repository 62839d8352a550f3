"""MaxSim scoring and padding of token matrices."""

from __future__ import annotations

import doctest

import pytest
import torch

from assistant.knowledge import maxsim
from assistant.knowledge.maxsim import (
    PackedTokens,
    maxsim_scores,
    maxsim_scores_packed,
    maxsim_scores_ragged,
    pack_token_matrices,
    pad_token_matrices,
)


def reference_maxsim(
    query: torch.Tensor, documents: list[torch.Tensor], query_mask: list[bool] | None = None
) -> list[float]:
    """MaxSim written as plain loops over unpadded matrices: the definition, not the fast path."""
    real_query_rows = [
        row for index, row in enumerate(query) if query_mask is None or query_mask[index]
    ]
    scores = []
    for document in documents:
        if document.shape[0] == 0 or not real_query_rows:
            scores.append(0.0)
            continue
        total = 0.0
        for query_row in real_query_rows:
            best = max(float(torch.dot(query_row, document_row)) for document_row in document)
            total += best
        scores.append(total / len(real_query_rows))
    return scores


def unit_rows(generator: torch.Generator, rows: int, dimension: int) -> torch.Tensor:
    matrix = torch.randn(rows, dimension, generator=generator)
    return torch.nn.functional.normalize(matrix, dim=1)


def test_hand_computed_scores() -> None:
    # Query tokens q1 = (1, 0), q2 = (0.6, 0.8).
    query = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # Document A: (0, 1), (0.8, 0.6).
    #   q1: max(0, 0.8) = 0.8;  q2: max(0.8, 0.48 + 0.48 = 0.96) = 0.96;  mean 0.88.
    # Document B: (-1, 0) only.
    #   q1: -1;  q2: -0.6;  mean -0.8.
    # Document C: (1, 0), (0.6, 0.8): both query tokens match exactly, mean 1.0.
    documents, mask = pad_token_matrices(
        [
            torch.tensor([[0.0, 1.0], [0.8, 0.6]]),
            torch.tensor([[-1.0, 0.0]]),
            torch.tensor([[1.0, 0.0], [0.6, 0.8]]),
        ]
    )
    scores = maxsim_scores(query, documents, mask)
    torch.testing.assert_close(scores, torch.tensor([0.88, -0.8, 1.0]))
    # Only q2 counts with a query mask: A 0.96, B -0.6, C 1.0.
    masked = maxsim_scores(query, documents, mask, torch.tensor([False, True]))
    torch.testing.assert_close(masked, torch.tensor([0.96, -0.6, 1.0]))


def test_docstring_examples() -> None:
    results = doctest.testmod(maxsim, raise_on_error=False)
    assert results.attempted >= 3
    assert results.failed == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_loop_reference_on_random_inputs(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    dimension = 16
    query = unit_rows(generator, 7, dimension)
    lengths = [int(n) for n in torch.randint(1, 40, (9,), generator=generator)] + [0]
    matrices = [unit_rows(generator, length, dimension) for length in lengths]
    query_mask = [bool(value) for value in torch.rand(7, generator=generator) > 0.3]
    query_mask[0] = True
    documents, mask = pad_token_matrices(matrices)
    # Padding rows that would beat every real token if they were not masked.
    documents[~mask] = 5.0

    scores = maxsim_scores(query, documents, mask, torch.tensor(query_mask))
    expected = reference_maxsim(query, matrices, query_mask)
    torch.testing.assert_close(scores, torch.tensor(expected), atol=1e-5, rtol=0)
    assert scores[-1].item() == 0.0

    unmasked = maxsim_scores(query, documents, mask)
    torch.testing.assert_close(
        unmasked, torch.tensor(reference_maxsim(query, matrices)), atol=1e-5, rtol=0
    )
    ragged = maxsim_scores_ragged(query, matrices)
    torch.testing.assert_close(ragged, unmasked, atol=1e-5, rtol=0)
    assert ragged[-1].item() == 0.0


def test_padding_never_wins_a_maximum() -> None:
    query = torch.tensor([[1.0, 0.0]])
    documents = torch.tensor([[[-1.0, 0.0], [100.0, 0.0]]])
    mask = torch.tensor([[True, False]])
    assert maxsim_scores(query, documents, mask).item() == pytest.approx(-1.0)
    # The same tensors without the mask would score 100: the mask is what keeps padding out.
    assert maxsim_scores(query, documents, torch.ones(1, 2, dtype=torch.bool)).item() == 100.0


def test_empty_documents_and_empty_query_score_zero() -> None:
    query = torch.tensor([[1.0, 0.0]])
    documents, mask = pad_token_matrices([torch.zeros(0, 2), torch.zeros(0, 2)])
    assert documents.shape == (2, 0, 2)
    assert maxsim_scores(query, documents, mask).tolist() == [0.0, 0.0]
    documents, mask = pad_token_matrices([torch.tensor([[1.0, 0.0]])])
    no_query_tokens = torch.tensor([False])
    assert maxsim_scores(query, documents, mask, no_query_tokens).tolist() == [0.0]


def test_no_candidates_give_no_scores() -> None:
    documents, mask = pad_token_matrices([], dimension=4)
    assert documents.shape == (0, 0, 4)
    assert mask.shape == (0, 0)
    assert maxsim_scores(torch.ones(3, 4), documents, mask).shape == (0,)


def test_half_precision_inputs_are_scored_in_float32() -> None:
    query = torch.tensor([[0.6, 0.8]], dtype=torch.float16)
    documents = torch.tensor([[[0.6, 0.8]]], dtype=torch.float16)
    scores = maxsim_scores(query, documents, torch.ones(1, 1, dtype=torch.bool))
    assert scores.dtype == torch.float32


def test_pad_token_matrices_layout() -> None:
    first = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    second = torch.tensor([[7.0, 8.0]])
    documents, mask = pad_token_matrices([first, torch.zeros(0, 2), second])
    assert documents.shape == (3, 3, 2)
    assert mask.tolist() == [[True, True, True], [False, False, False], [True, False, False]]
    torch.testing.assert_close(documents[0], first)
    torch.testing.assert_close(documents[2], torch.tensor([[7.0, 8.0], [0.0, 0.0], [0.0, 0.0]]))
    assert documents[1].abs().sum().item() == 0.0


def test_shape_errors_are_reported() -> None:
    with pytest.raises(ValueError, match="dimension 3, expected 2"):
        pad_token_matrices([torch.ones(2, 2), torch.ones(1, 3)])
    with pytest.raises(ValueError, match="dimension 2, expected 4"):
        pad_token_matrices([torch.ones(2, 2)], dimension=4)
    documents, mask = pad_token_matrices([torch.ones(2, 2)])
    with pytest.raises(ValueError, match="query dimension"):
        maxsim_scores(torch.ones(1, 3), documents, mask)
    with pytest.raises(ValueError, match="documents_mask"):
        maxsim_scores(torch.ones(1, 2), documents, mask[:, :1])
    with pytest.raises(ValueError, match="query_mask"):
        maxsim_scores(torch.ones(1, 2), documents, mask, torch.ones(2, dtype=torch.bool))


def test_packed_scores_match_the_loop_reference_with_empty_documents_anywhere() -> None:
    generator = torch.Generator().manual_seed(7)
    query = unit_rows(generator, 5, 8)
    lengths = [0, 3, 0, 0, 11, 1, 0]
    matrices = [unit_rows(generator, length, 8) for length in lengths]
    packed = pack_token_matrices(matrices, 8)

    scores = maxsim_scores_packed(query, packed)

    torch.testing.assert_close(
        scores, torch.tensor(reference_maxsim(query, matrices)), atol=1e-6, rtol=0
    )
    assert [scores[i].item() for i in (0, 2, 3, 6)] == [0.0] * 4
    assert [tuple(m.shape) for m in packed.split()] == [(n, 8) for n in lengths]
    assert maxsim_scores_packed(query[:0], packed).tolist() == [0.0] * len(lengths)
    assert maxsim_scores_packed(query, pack_token_matrices([], 8)).shape == (0,)


def test_packed_refuses_a_query_of_another_dimension() -> None:
    packed = pack_token_matrices([torch.ones(2, 4)], 4)
    with pytest.raises(ValueError, match="packed token values"):
        maxsim_scores_packed(torch.ones(1, 3), packed)


def test_scaled_rows_score_and_read_back_as_their_products() -> None:
    generator = torch.Generator().manual_seed(11)
    query = unit_rows(generator, 4, 8)
    lengths = [3, 0, 6, 2]
    matrices = [unit_rows(generator, length, 8) for length in lengths]
    plain = pack_token_matrices(matrices, 8)
    scales = torch.rand(plain.values.shape[0], generator=generator) + 0.5
    # Rows stored divided by their scale: the vectors are still ``values * scales``.
    scaled = PackedTokens(plain.values / scales.unsqueeze(1), lengths, scales)

    torch.testing.assert_close(
        maxsim_scores_packed(query, scaled),
        torch.tensor(reference_maxsim(query, matrices)),
        atol=1e-5,
        rtol=0,
    )
    by_key = scaled.by_key(["a", "b", "c", "d"])
    assert list(by_key) == ["a", "b", "c", "d"] and len(by_key) == 4
    for key, matrix, split in zip(by_key, matrices, scaled.split(), strict=True):
        torch.testing.assert_close(by_key[key], matrix, atol=1e-6, rtol=0)
        torch.testing.assert_close(split, matrix, atol=1e-6, rtol=0)
    assert "e" not in by_key
    with pytest.raises(ValueError, match="keys"):
        scaled.by_key(["a"])


@pytest.mark.parametrize("integer_products", [False, True], ids=["float blocks", "int8 products"])
def test_int8_rows_over_several_blocks_score_as_their_float_products(
    integer_products: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More rows than one conversion block, documents straddling the block edges, so every
    # block of the int8 path and its seams are checked against the float32 vectors. The
    # integer products split the query into two int8 parts: their error is about 1e-5 here.
    if not integer_products:
        monkeypatch.setattr(maxsim, "int8_query", lambda query: None)
    tolerance = 5e-5 if integer_products else 1e-6
    generator = torch.Generator().manual_seed(5)
    query = unit_rows(generator, 6, 16)
    lengths = [700, 0, 1500, 900, 3, 1400, 1]
    quantised = torch.randint(-127, 128, (sum(lengths), 16), generator=generator, dtype=torch.int8)
    scales = torch.rand(sum(lengths), generator=generator) / 127
    packed = PackedTokens(quantised, lengths, scales)
    vectors = packed.split()

    assert sum(lengths) > 2 * maxsim._BLOCK_ROWS
    assert all(v.dtype == torch.float32 for v in vectors)
    torch.testing.assert_close(
        maxsim_scores_packed(query, packed),
        maxsim_scores_packed(query, pack_token_matrices(vectors, 16)),
        atol=tolerance,
        rtol=0,
    )
    for index in (0, 2, 6):
        expected = reference_maxsim(query, [vectors[index]])[0]
        assert maxsim_scores_packed(query, packed)[index].item() == pytest.approx(
            expected, abs=max(tolerance, 1e-5)
        )


def test_tensors_that_require_grad_are_scored_as_their_values() -> None:
    # The tuner's held-out check scores vectors a head projected; they may still carry grad.
    generator = torch.Generator().manual_seed(3)
    query = unit_rows(generator, 3, 8).requires_grad_()
    documents = [unit_rows(generator, n, 8).requires_grad_() for n in (4, 2)]

    scores = maxsim_scores_ragged(query, documents)

    expected = reference_maxsim(query.detach(), [d.detach() for d in documents])
    torch.testing.assert_close(scores, torch.tensor(expected), atol=1e-6, rtol=0)
