"""Token-cache storage formats: bytes per token against ranking quality, side by side.

For each BEIR collection (ingested into the data dir on first use, as `assistant eval` does), every
query's whole candidate pool is scored with token vectors computed fresh in float32 and then
round-tripped through each storage format; the pool is re-fused with the shipped weights and
nDCG@10 is compared with fp16's. Nothing is tuned.

    python bench/token_formats.py ../shared/eval/cranfield ../shared/eval/scifact \
        [--max-queries N] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from assistant.core import Assistant  # noqa: E402
from assistant.evaluation import (  # noqa: E402
    default_kb_name,
    document_ranking,
    load_beir,
    rerank,
)
from assistant.knowledge.fusion import FusionWeights  # noqa: E402
from assistant.knowledge.maxsim import maxsim_scores_ragged  # noqa: E402
from assistant.knowledge.ranking_metrics import mean, ndcg_at_k  # noqa: E402
from assistant.knowledge.token_codec import (  # noqa: E402
    bytes_per_token,
    decode_tokens,
    encode_tokens,
)
from assistant.settings import Settings  # noqa: E402
from connectors.beir import BeirConnector  # noqa: E402

FORMATS = ("fp32", "fp16", "int8", "int4")


def _round_trip(matrix: torch.Tensor, format: str) -> torch.Tensor:
    return matrix if format == "fp32" else decode_tokens(encode_tokens(matrix, format))


def measure(assistant: Assistant, dataset_dir: Path, max_queries: int | None) -> dict[str, object]:
    """nDCG@10 of the shipped ranking with each storage format, on one collection."""
    dataset = load_beir(dataset_dir)
    kb = default_kb_name(dataset.name)
    connector = BeirConnector(dataset)
    assistant.ingest_connectors([connector], kb=kb)
    queries = dataset.judged_queries()[:max_queries]
    fresh: dict[str, torch.Tensor] = {}
    scores: dict[str, list[float]] = {format: [] for format in FORMATS}
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(f"{dataset.name}: queries", total=len(queries))
        for query_id, text in queries:
            result = assistant.search(text, kb=kb, k=2 * assistant.settings.recall_k)
            hits = result.candidates
            missing = [hit for hit in hits if hit.chunk_id not in fresh]
            if missing:
                chunks = assistant._kb(kb).store.get([hit.chunk_id for hit in missing])
                encoded = assistant.encoder.encode_document_tokens(
                    [chunk.chunk.embedding_text for chunk in chunks]
                )
                fresh.update(zip([c.chunk_id for c in chunks], encoded, strict=True))
            assert result.query_tokens is not None
            weights = FusionWeights(**result.trace.weights)
            for format in FORMATS:
                matrices = [_round_trip(fresh[hit.chunk_id], format) for hit in hits]
                late = maxsim_scores_ragged(result.query_tokens, matrices).tolist()
                rescored = [
                    dataclasses.replace(hit, late_interaction_score=score)
                    for hit, score in zip(hits, late, strict=True)
                ]
                ranking = document_ranking(rerank(rescored, weights), connector.source + "/")
                scores[format].append(ndcg_at_k(ranking, dataset.qrels[query_id], 10))
            progress.advance(task)
    dimension = assistant.encoder.token_dimension
    reference = mean(scores["fp16"])
    return {
        "dataset": dataset.name,
        "queries": len(queries),
        "chunks_encoded": len(fresh),
        "formats": {
            format: {
                "bytes_per_token": 4 * dimension
                if format == "fp32"
                else bytes_per_token(dimension, format),
                "of_fp16": round(
                    (4 * dimension if format == "fp32" else bytes_per_token(dimension, format))
                    / bytes_per_token(dimension, "fp16"),
                    4,
                ),
                "ndcg@10": round(mean(values), 4),
                "points_vs_fp16": round(100 * (mean(values) - reference), 2),
            }
            for format, values in scores.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    assistant = Assistant(Settings())
    results = [measure(assistant, path, args.max_queries) for path in args.datasets]
    table = Table(title="token storage formats (nDCG@10 of the shipped ranking)")
    for column in ("dataset", "format", "bytes/token", "of fp16", "nDCG@10", "Δ points vs fp16"):
        table.add_column(column)
    for result in results:
        formats = result["formats"]
        assert isinstance(formats, dict)
        for format, row in formats.items():
            table.add_row(
                str(result["dataset"]),
                format,
                str(row["bytes_per_token"]),
                f"{row['of_fp16']:.3f}",
                f"{row['ndcg@10']:.4f}",
                f"{row['points_vs_fp16']:+.2f}",
            )
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
