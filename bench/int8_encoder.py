"""Questions encoded by an int8 copy of the encoder: faster, but do the rankings hold?

The product encodes every question with its float32 ONNX model on one thread; reading that
model's 90 MB of weights is most of a short question's encoding. An int8 copy of the exported
model reads a quarter of it. Two are made here:

  * ``dynamic int8``: ONNX Runtime's dynamic quantisation of every MatMul (int8 weights per
    output channel, activations quantised on the fly);
  * ``8-bit blocks``: 8-bit weights in blocks of 32 with int8 compute (``MatMulNBits``,
    accuracy level 4). Its quantiser needs the ``onnx_ir`` package; without it the variant is
    skipped.

Each variant encodes the questions of the docs sites (the knowledge bases ``bench/sites.py``
ingested into the same data dir) while the passages stay as the float model embedded them, as a
question-side switch would ship, and is measured side by side with the float model:

  * a question's encoding, p50 ms (one thread, as the product's query session);
  * the cosine of its dense vector and of its token vectors to the float model's (mean, least);
  * page hit@1 and MRR@10 of the dense stage and of the shipped ranking, per kind of question.

    python bench/int8_encoder.py [--data-dir .bench-data/sites] [--site django ...] [--json F]

The issue's bar for a faster encoder is rankings that stay the same (page hit@1 within 0.005).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.common  # noqa: F401  # isort: skip

import numpy as np
from rich.console import Console

from assistant.core import Assistant
from assistant.evaluation import evaluate_site, load_question_set
from assistant.knowledge.encoder import Encoder
from assistant.knowledge.onnx_runtime import OnnxForward, open_session
from assistant.settings import Settings
from bench.common import ROOT, machine_facts, table, write_json

SITES = ROOT / "bench" / "sites"
DEFAULT_DATA = ROOT / ".bench-data" / "sites"
STAGES = ("dense", "fused")
KINDS = ("direct", "paraphrased")

console = Console(width=None if sys.stdout.isatty() else 160)


def dynamic_int8(source: Path, target: Path) -> Path:
    """Every MatMul in int8, weights per output channel (reduced range: the CPU kernels'
    int16 sums must not saturate)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul"],
    )
    return target


def blocks_8bit(source: Path, target: Path) -> Path | None:
    """8-bit weights in blocks of 32, int8 compute; None without ``onnx_ir``."""
    try:
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError:
        return None
    quantizer = MatMulNBitsQuantizer(
        onnx.load(source), bits=8, block_size=32, is_symmetric=True, accuracy_level=4
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(target), use_external_data_format=False)
    return target


def cosines(reference: list[np.ndarray], other: list[np.ndarray]) -> dict[str, float]:
    """Mean and least cosine of paired rows (each pair: unit vectors of equal shape)."""
    values = [float((a * b).sum(axis=-1).mean()) for a, b in zip(reference, other, strict=True)]
    return {"mean": round(statistics.fmean(values), 5), "least": round(min(values), 5)}


def encode_p50(encode: Callable[[str], object], questions: list[str]) -> float:
    """p50 ms of encoding each question (three rounds, the first untimed)."""
    samples = []
    for round_ in range(3):
        for question in questions:
            started = time.perf_counter()
            encode(question)
            if round_:
                samples.append((time.perf_counter() - started) * 1000.0)
    return round(float(np.median(samples)), 2)


def measure(
    assistant: Assistant, encoder: Encoder, sites: list[str], questions: list[str]
) -> dict[str, Any]:
    """One variant (the forward pass ``encoder`` holds now) on every site."""
    result: dict[str, Any] = {"encode_p50_ms": encode_p50(encoder.encode_query, questions)}
    encoded = [encoder.encode_query(question) for question in questions]
    result["vectors"] = [e.dense.numpy() for e in encoded], [e.tokens.numpy() for e in encoded]
    result["sites"] = {}
    for site in sites:
        report = evaluate_site(
            assistant,
            load_question_set(SITES / site),
            kb=site,
            follow_ups=False,
            no_answer=False,
        ).to_json(with_pools=False)
        stages = cast("dict[str, dict[str, Any]]", report["stages"])
        result["sites"][site] = {
            stage: {kind: stages[stage][kind] for kind in KINDS} for stage in STAGES
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="bench/sites.py's")
    parser.add_argument("--site", action="append", help="default: django, git and python")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sites: list[str] = args.site or ["django", "git", "python"]
    # No question encoding is kept: each variant must encode every question itself.
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=args.data_dir.resolve(), query_cache_bytes=0
    )
    questions = [q.text for s in sites for q in load_question_set(SITES / s).questions]
    results: dict[str, Any] = {"machine": machine_facts(), "questions": len(questions)}
    with Assistant(settings) as assistant, tempfile.TemporaryDirectory() as scratch:
        encoder = assistant.encoder
        # The forward pass is swapped under the encoder, so tokenising, pooling and the token
        # rows are the product's own for every variant.
        original = getattr(encoder, "_forward", None)
        if not isinstance(original, OnnxForward):
            raise SystemExit("the encoder does not run on ONNX Runtime here; nothing to compare")
        made = {
            "dynamic int8": dynamic_int8(original.path, Path(scratch) / "dynamic.onnx"),
            "8-bit blocks": blocks_8bit(original.path, Path(scratch) / "blocks.onnx"),
        }
        variants = {"float32": original}
        for name, path in made.items():
            if path is None:
                console.print(f"{name}: skipped (pip install onnx_ir to measure it)")
                continue
            variants[name] = OnnxForward(open_session(path, threads=1), original.inputs, path)
        measured: dict[str, dict[str, Any]] = {}
        for name, forward in variants.items():
            console.print(f"measuring {name} on {len(questions)} questions", highlight=False)
            encoder._forward = forward  # type: ignore[attr-defined]
            measured[name] = measure(assistant, encoder, sites, questions)
        encoder._forward = original  # type: ignore[attr-defined]
    dense_ref, tokens_ref = measured["float32"].pop("vectors")
    for name, values in measured.items():
        if name != "float32":
            dense, tokens = values.pop("vectors")
            values["dense_cosine"] = cosines(dense_ref, dense)
            values["token_cosine"] = cosines(tokens_ref, tokens)
    results["variants"] = measured
    print_tables(measured, sites)
    if args.json:
        write_json(args.json, results)
        console.print(f"wrote {args.json}")


def print_tables(measured: dict[str, dict[str, Any]], sites: list[str]) -> None:
    """Encoding speed and vectors per variant; then hit@1 / MRR@10 per site, stage and kind."""
    console.print(
        table(
            "question encoding",
            ["variant", "p50 ms", "dense cosine mean / least", "token cosine mean / least"],
            [
                [
                    name,
                    f"{values['encode_p50_ms']:.2f}",
                    _pair(values.get("dense_cosine")),
                    _pair(values.get("token_cosine")),
                ]
                for name, values in measured.items()
            ],
        )
    )
    columns = [f"{site} {kind}" for site in sites for kind in KINDS]
    rows = []
    for name, values in measured.items():
        for stage in STAGES:
            cells = []
            for site in sites:
                for kind in KINDS:
                    figures = values["sites"][site][stage][kind]
                    cells.append(f"{figures['hit@1']:.3f} / {figures['mrr@10']:.3f}")
            rows.append([name, stage, *cells])
    console.print(table("page hit@1 / MRR@10", ["variant", "stage", *columns], rows))


def _pair(values: dict[str, float] | None) -> str:
    return "-" if values is None else f"{values['mean']:.4f} / {values['least']:.4f}"


if __name__ == "__main__":
    main()
