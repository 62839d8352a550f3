"""ColBERT checkpoints as token encoders for the late-interaction rerank.

Two layouts are read, from a local directory or a Hugging Face hub id:

- ``pylate`` (PyLate / sentence-transformers, e.g. ``lightonai/colbertv2.0``): ``modules.json``
  lists a Transformer module and Dense projections (``1_Dense/config.json`` + weights); the
  settings live in ``config_sentence_transformers.json`` (``query_prefix``, ``document_prefix``,
  ``query_length``, ``document_length``, ``do_query_expansion``, ``attend_to_expansion_tokens``,
  ``skiplist_words``), PyLate's defaults where a field is absent.
- ``stanford`` (``colbert-ir/colbertv2.0``): BERT weights that also hold the projection
  ``linear.weight`` (dim × hidden, no bias); settings in ``artifact.metadata`` (``query_token_id``,
  ``doc_token_id``, ``query_maxlen``, ``doc_maxlen``, ``mask_punctuation``,
  ``attend_to_mask_tokens``), ColBERT's defaults where absent.

Both encode alike: a marker token follows the first token ([CLS]); a query is padded to its full
length with [MASK] (query augmentation) and every position gives a vector; a document keeps its
real tokens minus the skiplisted ones (punctuation). A vector is the last hidden state, projected,
then L2-normalised.

Example::

    encoder = ColBERTEncoder("colbert-ir/colbertv2.0")
    encoder.encode_query_tokens("how do I reset my password?").shape  # (32, 128)
    encoder.encode_document_tokens(["Open Settings, then Security."])[0].shape  # (7, 128)
"""

from __future__ import annotations

import json
import logging
import string
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
from safetensors import safe_open
from torch.nn.utils.rnn import pad_sequence
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from assistant.errors import ConfigError, EncoderError
from assistant.knowledge.encoder import resolve_model_path

__all__ = ["ColBERTEncoder", "ColBERTLayout", "is_colbert_checkpoint"]

logger = logging.getLogger(__name__)

ColBERTLayout = Literal["pylate", "stanford"]
"""``pylate``: sentence-transformers modules; ``stanford``: BERT weights with ``linear.weight``."""

_Value = TypeVar("_Value", str, int, bool)
# A hub download fetches configs, tokenizer files and ColBERT metadata along with the weights.
_SMALL_FILES = ["*.json", "*.txt", "*.model", "*artifact.metadata"]
# Parameter-free activations a Dense module may name; any other would need code from the
# checkpoint or weights it does not have.
_ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    kind.__name__: kind
    for kind in (torch.nn.Identity, torch.nn.Tanh, torch.nn.ReLU, torch.nn.GELU, torch.nn.Sigmoid)
}


@dataclass(frozen=True)
class _Config:
    """One JSON config of the checkpoint (empty when the file is absent)."""

    values: Mapping[str, object]
    source: Path

    @classmethod
    def read(cls, path: Path) -> _Config:
        return cls(_read_json(path) if path.is_file() else {}, path)

    def get(self, name: str, default: _Value) -> _Value:
        """The field, checked to have the type of ``default``; absent or null gives ``default``."""
        value = self.values.get(name)
        if value is None:
            return default
        if type(value) is not type(default):
            raise EncoderError(
                f"{self.source}: {name!r} must be of type {type(default).__name__}, got {value!r}; "
                "fix or remove the field"
            )
        return value


@dataclass(frozen=True)
class _Settings:
    """How texts become model inputs and which output rows are kept."""

    query_marker_id: int | None
    document_marker_id: int | None
    query_length: int
    document_length: int
    query_expansion: bool
    attend_to_expansion_tokens: bool
    skiplist_ids: frozenset[int]
    lowercase: bool


def is_colbert_checkpoint(path_or_id: str) -> bool:
    """Whether ``path_or_id`` is a local directory holding a ColBERT checkpoint of either layout.

    Reads file names, JSON configs and weight names, no tensor data. A hub id that is not a local
    directory gives False.
    """
    directory = Path(path_or_id).expanduser()
    try:
        return directory.is_dir() and _detect_layout(directory) is not None
    except EncoderError:
        return False


class ColBERTEncoder:
    """Per-token encoder over a ColBERT checkpoint, ``layout`` "pylate" or "stanford".

    ``token_dimension`` is the projection's output size; ``query_length`` and ``document_length``
    count every token (special tokens and marker included).

    Thread safety: instances may be shared between threads; forward passes run concurrently and
    tokenizer calls are serialised by a lock (the fast tokenizer changes its truncation settings
    on every call).

    Raises:
        EncoderError: the checkpoint is missing, not a ColBERT checkpoint, inconsistent, or cannot
            be downloaded.
        ConfigError: ``batch_size`` is below 1.
    """

    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        directory = _checkpoint_directory(model)
        layout = _detect_layout(directory)
        if layout is None:
            raise EncoderError(
                f"not a ColBERT checkpoint: {model!r} ({directory}) has neither a modules.json "
                "with a Dense module and no Pooling (PyLate) nor artifact.metadata or a "
                "'linear.weight' projection in its weights (Stanford ColBERT). Give a ColBERT "
                "checkpoint such as 'colbert-ir/colbertv2.0'; use TransformerEncoder for a plain "
                "sentence-transformers model"
            )
        source = _transformer_directory(directory) if layout == "pylate" else directory
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            module, loading = AutoModel.from_pretrained(
                source, local_files_only=True, output_loading_info=True
            )
            # transformers fills missing weights with random values and only logs it; a pooler
            # is never used here, anything else would make every vector noise.
            missing = [key for key in loading["missing_keys"] if not key.startswith("pooler.")]
            if missing:
                raise EncoderError(
                    f"ColBERT checkpoint {model!r} lacks transformer weights ({missing[:3]}...); "
                    "the weights file does not match config.json, download the checkpoint again"
                )
            if layout == "pylate":
                projection, dimension = _pylate_projection(directory, module.config.hidden_size)
                settings = _pylate_settings(directory, source, tokenizer)
            else:
                projection, dimension, settings = _stanford_parts(directory, tokenizer)
            self.device = torch.device(device)
            module = module.to(self.device).float().eval()
            projection = projection.to(self.device).float().eval()
        except EncoderError:
            raise
        except Exception as exc:
            # transformers, safetensors and torch report a broken checkpoint or a missing device
            # with many exception types (OSError, ValueError, KeyError, RuntimeError, ...).
            raise EncoderError(
                f"could not load ColBERT checkpoint {model!r} from {directory} on device "
                f"{device!r}: {exc}. Check that the directory is complete (config.json, tokenizer "
                "files, weights) and that the device exists"
            ) from exc
        positions = int(getattr(module.config, "max_position_embeddings", 512))
        for length in (settings.query_length, settings.document_length):
            if not 3 <= length <= positions:
                raise EncoderError(
                    f"ColBERT checkpoint {model!r} sets a query or document length of {length}; "
                    f"it must be between 3 and the model's {positions} positions"
                )
        self.model_id = model
        self.layout: ColBERTLayout = layout
        self.token_dimension = dimension
        self.query_length = settings.query_length
        self.document_length = settings.document_length
        self.batch_size = batch_size
        self.tokenizer: PreTrainedTokenizerBase = tokenizer
        self._settings = settings
        self._module = module
        self._projection = projection
        self._tokenizer_lock = threading.Lock()
        # Query augmentation pads with [MASK] (PyLate falls back to EOS, then to padding).
        candidates = (tokenizer.mask_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
        self._expansion_id = next((int(c) for c in candidates if c is not None), 0)
        self._pad_id = int(tokenizer.pad_token_id or 0)
        logger.info("loaded ColBERT %s (%s, %d-d)", model, layout, self.token_dimension)

    def query_token_ids(self, text: str) -> list[int]:
        """Token ids the model reads for a query: special tokens, marker and expansion included."""
        ids = self._marked_ids(text, is_query=True)
        return ids + self._expansion(ids)

    def document_token_ids(self, text: str) -> list[int]:
        """Token ids the model reads for a document: special tokens and marker included."""
        return self._marked_ids(text, is_query=False)

    def encode_query_tokens(self, text: str) -> torch.Tensor:
        """Encode one query: (n, token_dimension) float32 on CPU, rows unit norm.

        With query expansion (both layouts' default) n == ``query_length``: the [MASK] positions
        are kept, since ColBERT scores with them.
        """
        ids = self._marked_ids(text, is_query=True)
        expansion = self._expansion(ids)
        # Unless attend_to_expansion_tokens is set, the query's own tokens do not attend to the
        # expansion tokens, but those still attend to the query and each gives a vector.
        attended = [True] * len(ids) + [self._settings.attend_to_expansion_tokens] * len(expansion)
        attention_mask = torch.tensor([attended])
        keep = torch.ones_like(attention_mask)
        return self._encode(torch.tensor([ids + expansion]), attention_mask, keep)[0]

    def encode_document_tokens(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """Encode passages: item i is (n_i, token_dimension) float32 on CPU for ``texts[i]``.

        Padding and skiplisted tokens (punctuation) are left out; rows are unit norm. A text is cut
        at ``document_length`` tokens.
        """
        sequences = [self.document_token_ids(text) for text in texts]
        # Similar lengths in one batch waste less compute on padding.
        order = sorted(range(len(texts)), key=lambda index: len(sequences[index]))
        skiplist = torch.tensor(sorted(self._settings.skiplist_ids), dtype=torch.long)
        results: list[torch.Tensor] = [torch.empty(0)] * len(texts)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            rows = [torch.tensor(sequences[index]) for index in batch]
            input_ids = pad_sequence(rows, batch_first=True, padding_value=self._pad_id)  # (B, L)
            lengths = torch.tensor([len(row) for row in rows])
            attention_mask = torch.arange(input_ids.shape[1]) < lengths.unsqueeze(1)  # (B, L)
            keep = attention_mask & ~torch.isin(input_ids, skiplist)
            matrices = self._encode(input_ids, attention_mask, keep)
            for index, matrix in zip(batch, matrices, strict=True):
                results[index] = matrix
        return results

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` without special tokens, marker or truncation."""
        return self.count_tokens_many([text])[0]

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """``count_tokens`` of each of ``texts``, in one call to the tokenizer."""
        if not texts:
            return []
        with self._tokenizer_lock:
            encoded = self.tokenizer(
                list(texts), add_special_tokens=False, truncation=False, verbose=False
            )
        return [len(ids) for ids in encoded["input_ids"]]

    def _expansion(self, ids: list[int]) -> list[int]:
        """The [MASK] tokens that fill a query up to ``query_length`` (none without expansion)."""
        if not self._settings.query_expansion:
            return []
        return [self._expansion_id] * (self.query_length - len(ids))

    def _marked_ids(self, text: str, *, is_query: bool) -> list[int]:
        """Ids of the text with special tokens and marker, cut at the query or document length."""
        settings = self._settings
        marker = settings.query_marker_id if is_query else settings.document_marker_id
        length = settings.query_length if is_query else settings.document_length
        if self.layout == "stanford":
            # Stanford ColBERT tokenizes ". " + text and overwrites the "." with the marker.
            text, limit = ". " + text, length
        else:
            # sentence-transformers strips (and may lowercase) texts before tokenizing.
            text = text.strip().lower() if settings.lowercase else text.strip()
            limit = length if marker is None else length - 1
        with self._tokenizer_lock:
            ids = list(self.tokenizer(text, truncation=True, max_length=limit)["input_ids"])
        if marker is not None:
            ids[1:2] = [marker] if self.layout == "stanford" else [marker, ids[1]]
        return ids

    def _encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor
    ) -> list[torch.Tensor]:
        """input_ids, attention_mask, keep: (B, L). Returns B tensors (kept_b, token_dimension)."""
        with torch.inference_mode():
            hidden = self._module(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(device=self.device, dtype=torch.long),
            ).last_hidden_state.float()  # (B, L, hidden)
            tokens = torch.nn.functional.normalize(self._projection(hidden), dim=-1)  # (B, L, d)
            rows = [tokens[row][keep[row].to(self.device)].cpu() for row in range(len(tokens))]
        # Cloning outside inference mode gives ordinary tensors that callers may modify.
        return [matrix.clone() for matrix in rows]


def _checkpoint_directory(model: str) -> Path:
    """A local directory for ``model``: the path itself, or a hub download."""
    path = Path(resolve_model_path(model))
    if path.is_dir():
        return path
    if path.exists():
        raise EncoderError(f"model path {model!r} is a file; give the checkpoint's directory")
    try:
        from huggingface_hub import snapshot_download

        directory = Path(snapshot_download(model, allow_patterns=[*_SMALL_FILES, "*.safetensors"]))
        # A module folder (config.json) without safetensors keeps its weights in a .bin file.
        if any(not any(c.parent.glob("*.safetensors")) for c in directory.rglob("config.json")):
            directory = Path(snapshot_download(model, allow_patterns=["*pytorch_model.bin"]))
    except Exception as exc:
        # huggingface_hub raises validation, HTTP, connection and cache errors alike.
        raise EncoderError(
            f"could not download ColBERT checkpoint {model!r} from the Hugging Face hub: "
            f"{str(exc).rstrip('.')}. "
            "The model must be downloadable (hub reachable, HF_TOKEN set for gated models) or "
            "given as a local directory path"
        ) from exc
    return directory


def _detect_layout(directory: Path) -> ColBERTLayout | None:
    if (directory / "modules.json").is_file():
        kinds = [str(entry.get("type", "")).rsplit(".", 1)[-1] for entry in _modules(directory)]
        if "Dense" in kinds and "Pooling" not in kinds:
            return "pylate"
    if not (directory / "config.json").is_file():
        return None
    architectures = _read_json(directory / "config.json").get("architectures") or []
    if (directory / "artifact.metadata").is_file() or "HF_ColBERT" in architectures:
        return "stanford"
    return "stanford" if "linear.weight" in _read_tensors(directory, None) else None


def _read_json(path: Path, *, listing: bool = False) -> Any:
    """The JSON object in ``path`` (a list of objects when ``listing``), checked for its shape."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EncoderError(f"could not read {path}: {exc}; restore it from the checkpoint") from exc
    entries = value if listing else [value]
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise EncoderError(f"{path} is not a checkpoint config; restore it from the checkpoint")
    return value


def _modules(directory: Path) -> list[dict[str, object]]:
    """The entries of modules.json, in order."""
    return list(_read_json(directory / "modules.json", listing=True))


def _read_tensors(directory: Path, names: Sequence[str] | None) -> dict[str, torch.Tensor]:
    """The named tensors of the directory's weights, missing names left out.

    With ``names`` None every name maps to an empty tensor, and of a safetensors file only the
    header is read.
    """
    files = [directory / "model.safetensors", directory / "pytorch_model.bin"]
    path = next((file for file in files if file.is_file()), None)
    if path is None:
        return {}
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as weights:
                present = set(weights.keys())
                if names is None:
                    return dict.fromkeys(present, torch.empty(0))
                return {name: weights.get_tensor(name) for name in names if name in present}
        # mmap leaves a large pytorch_model.bin on disk except for the tensors read.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise EncoderError(f"could not read the weights in {path}: {exc}") from exc
    return {name: state[name] for name in (state if names is None else names) if name in state}


def _linear(weights: Mapping[str, torch.Tensor], bias: bool, source: Path) -> torch.nn.Linear:
    """A Linear layer from ``linear.weight`` (out, in) and, with ``bias``, ``linear.bias``."""
    weight, bias_vector = weights.get("linear.weight"), weights.get("linear.bias")
    if weight is None or weight.dim() != 2 or (bias and bias_vector is None):
        raise EncoderError(f"{source}: the projection weights (linear.*) are missing or malformed")
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias)
    linear.load_state_dict({"weight": weight} | ({"bias": bias_vector} if bias else {}))
    return linear


def _transformer_directory(directory: Path) -> Path:
    for entry in _modules(directory):
        if str(entry.get("type", "")).endswith("Transformer"):
            return directory / str(entry.get("path", ""))
    raise EncoderError(f"{directory / 'modules.json'} lists no Transformer module")


def _pylate_projection(directory: Path, hidden_size: int) -> tuple[torch.nn.Sequential, int]:
    """The Dense modules of modules.json in order, (..., hidden_size) -> (..., dim), and dim."""
    layers: list[torch.nn.Module] = []
    features = hidden_size
    for entry in _modules(directory):
        if not str(entry.get("type", "")).endswith("Dense"):
            continue
        module_directory = directory / str(entry.get("path", ""))
        config = _Config.read(module_directory / "config.json")
        if config.get("use_residual", False):
            raise EncoderError(f"{config.source}: residual Dense projections are not supported")
        weights = _read_tensors(module_directory, ["linear.weight", "linear.bias"])
        linear = _linear(weights, config.get("bias", True), module_directory)
        if linear.in_features != features:
            raise EncoderError(
                f"{module_directory}: the projection takes {linear.in_features} features but "
                f"receives {features}; this Dense module does not belong to the model"
            )
        name = config.get("activation_function", "torch.nn.modules.linear.Identity")
        activation = (
            _ACTIVATIONS.get(name.rsplit(".", 1)[-1]) if name.startswith("torch.") else None
        )
        if activation is None:
            raise EncoderError(
                f"{config.source}: activation_function {name!r} is not supported; it must be one "
                f"of torch.nn's {', '.join(_ACTIVATIONS)}"
            )
        layers += [linear, activation()]
        features = linear.out_features
    return torch.nn.Sequential(*layers), features


def _marker_id(tokenizer: PreTrainedTokenizerBase, token: str, source: Path) -> int | None:
    """The id of a marker token; None for an empty marker (no marker)."""
    if token == "":
        return None
    vocabulary = tokenizer.get_vocab()
    if token not in vocabulary:
        raise EncoderError(
            f"{source}: marker token {token!r} is not in the checkpoint's tokenizer; save the "
            "tokenizer with the model (the markers are among its added tokens)"
        )
    return int(vocabulary[token])


def _pylate_settings(
    directory: Path, transformer_directory: Path, tokenizer: PreTrainedTokenizerBase
) -> _Settings:
    config = _Config.read(directory / "config_sentence_transformers.json")
    words = config.values.get("skiplist_words")
    words = list(string.punctuation) if words is None else words
    if not isinstance(words, list) or not all(isinstance(word, str) for word in words):
        raise EncoderError(f"{config.source}: 'skiplist_words' must be a list of strings")
    vocabulary = tokenizer.get_vocab()
    # PyLate maps an unknown skiplist word to the unknown token's id; here it is left out.
    skiplist = frozenset(int(vocabulary[word]) for word in words if word in vocabulary)
    expansion = config.get("do_query_expansion", True)
    module_config = _Config.read(transformer_directory / "sentence_bert_config.json")
    return _Settings(
        query_marker_id=_marker_id(tokenizer, config.get("query_prefix", "[Q] "), config.source),
        document_marker_id=_marker_id(
            tokenizer, config.get("document_prefix", "[D] "), config.source
        ),
        query_length=config.get("query_length", 32),
        document_length=config.get("document_length", 180),
        query_expansion=expansion,
        attend_to_expansion_tokens=expansion and config.get("attend_to_expansion_tokens", False),
        skiplist_ids=skiplist,
        lowercase=module_config.get("do_lower_case", False),
    )


def _stanford_parts(
    directory: Path, tokenizer: PreTrainedTokenizerBase
) -> tuple[torch.nn.Sequential, int, _Settings]:
    """Projection (..., hidden) -> (..., dim), dim and settings of a Stanford checkpoint."""
    linear = _linear(_read_tensors(directory, ["linear.weight"]), False, directory)
    metadata = _Config.read(directory / "artifact.metadata")
    if metadata.get("dim", linear.out_features) != linear.out_features:
        raise EncoderError(
            f"{metadata.source}: 'dim' differs from the {linear.out_features} rows of linear.weight"
        )
    skiplist: set[int] = set()
    if metadata.get("mask_punctuation", True):
        # Stanford ColBERT skips the first token of each punctuation character.
        for symbol in string.punctuation:
            skiplist.update(tokenizer(symbol, add_special_tokens=False)["input_ids"][:1])
    markers = [
        _marker_id(tokenizer, metadata.get(name, default), metadata.source)
        for name, default in (("query_token_id", "[unused0]"), ("doc_token_id", "[unused1]"))
    ]
    if None in markers:
        raise EncoderError(f"{metadata.source}: query_token_id and doc_token_id must not be empty")
    settings = _Settings(
        query_marker_id=markers[0],
        document_marker_id=markers[1],
        query_length=metadata.get("query_maxlen", 32),
        document_length=metadata.get("doc_maxlen", 220),
        query_expansion=True,
        attend_to_expansion_tokens=metadata.get("attend_to_mask_tokens", False),
        skiplist_ids=frozenset(skiplist),
        lowercase=False,
    )
    return torch.nn.Sequential(linear), linear.out_features, settings
