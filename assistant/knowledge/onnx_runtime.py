"""Run a transformer's forward pass in ONNX Runtime instead of torch.

For the small encoders this project runs (all-MiniLM-L6-v2: 6 layers, 384-d), ONNX Runtime
computes the same last hidden state as torch (to about 1e-6) in about half the time on CPU,
most of all for short inputs such as a visitor's question, where torch's per-operator
overhead is most of the cost.

The model is exported once (``torch.onnx.export``, which needs the ``onnx`` package) to a file
named after a digest of the model's weights, configuration and input names, so a changed model
is exported again, and processes and data dirs that share a directory share the file. A file
is written under a temporary name and then renamed, so a reader never sees a half-written
model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from assistant.errors import EncoderError

__all__ = ["OnnxForward", "default_export_dir", "export_path", "open_session"]

logger = logging.getLogger(__name__)

_OPSET = 17


def default_export_dir() -> Path:
    """``$XDG_CACHE_HOME/assistant/onnx`` (``~/.cache/assistant/onnx``): shared by every data
    dir and process of the user, as an export depends only on the model."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "assistant" / "onnx"


def export_path(
    directory: Path, model_id: str, module: torch.nn.Module, inputs: Sequence[str]
) -> Path:
    """Where ``module``'s export lives in ``directory``: the model's name and a digest of what
    the export depends on (weights, configuration, input names, opset, torch version)."""
    digest = hashlib.blake2b(digest_size=10)
    config = getattr(module, "config", None)
    digest.update((config.to_json_string() if config is not None else "").encode())
    digest.update(f"{','.join(inputs)}|{_OPSET}|{torch.__version__}".encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        # The tensor's own memory, not a copy of it (the weights are about 90 MB).
        digest.update(tensor.detach().to("cpu").contiguous().numpy().data)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model_id).strip("-.") or "model"
    return directory / f"{safe}-{digest.hexdigest()}.onnx"


class _LastHiddenState(torch.nn.Module):
    """The module with positional inputs and the last hidden state as its one output."""

    def __init__(self, module: torch.nn.Module, inputs: Sequence[str]) -> None:
        super().__init__()
        self.module = module
        self.inputs = tuple(inputs)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.module(**dict(zip(self.inputs, tensors, strict=True))).last_hidden_state  # type: ignore[no-any-return]


def _export(module: torch.nn.Module, inputs: Sequence[str], target: Path) -> None:
    """Export ``module`` to ``target`` (written under a temporary name, then renamed)."""
    try:
        import onnx  # noqa: F401  # torch's exporter needs it
    except ImportError as exc:
        raise EncoderError("the ONNX runtime needs the 'onnx' package: pip install onnx") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    example = {name: torch.ones(1, 4, dtype=torch.long) for name in inputs}
    dynamic = {name: {0: "batch", 1: "tokens"} for name in (*inputs, "hidden")}
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".export-", suffix=".onnx")
    os.close(handle)
    try:
        # The tracer warns about Python branches on shapes (padding checks that hold for any
        # input this export is called with); the probe in the encoder checks the result.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(module, inputs).eval(),
                tuple(example[name] for name in inputs),
                temporary,
                input_names=list(inputs),
                output_names=["hidden"],
                dynamic_axes=dynamic,
                opset_version=_OPSET,
                dynamo=False,
            )
        os.replace(temporary, target)
    except Exception as exc:
        Path(temporary).unlink(missing_ok=True)
        raise EncoderError(f"could not export the model to ONNX: {exc}") from exc


def open_session(path: Path, *, threads: int) -> object:
    """An ONNX Runtime session on the CPU for the model at ``path``, with ``threads`` intra-op
    threads, as the encoder runs it.

    Raises:
        EncoderError: the model could not be opened.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle threads must not spin: the search's next steps (MaxSim, fusion) need the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Inputs vary in length; an arena would keep the largest batch's buffers for good.
    options.enable_cpu_mem_arena = False
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise EncoderError(f"could not open the ONNX model {path}: {exc}") from exc


class OnnxForward:
    """The last hidden state of a transformer, computed by ONNX Runtime.

    ``OnnxForward.load(module, model_id, inputs, directory)`` exports on first use and opens an
    inference session with ``threads`` intra-op threads. Calling it with the tokenizer's
    tensors returns (batch, tokens, dimension) float32. Sessions are safe to call from several
    threads at once.

    Raises:
        EncoderError: the export or the session could not be made.
    """

    def __init__(self, session: object, inputs: Sequence[str], path: Path) -> None:
        self._session = session
        self.inputs = tuple(inputs)
        self.path = path

    @classmethod
    def load(
        cls,
        module: torch.nn.Module,
        model_id: str,
        inputs: Sequence[str],
        directory: Path,
        *,
        threads: int,
    ) -> OnnxForward:
        path = export_path(directory, model_id, module, inputs)
        if not path.exists():
            logger.info("exporting %s to ONNX at %s (once)", model_id, path)
            _export(module, inputs, path)
        return cls(open_session(path, threads=threads), inputs, path)

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        feed = {name: batch[name].numpy().astype(np.int64, copy=False) for name in self.inputs}
        (hidden,) = self._session.run(["hidden"], feed)  # type: ignore[attr-defined]
        return torch.from_numpy(hidden)
