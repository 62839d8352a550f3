"""Search speed and quality on a real documentation site, stage by stage.

Python's HTML docs (Debian's python3.11-doc: tutorial, howto, faq, reference and using) are
served on loopback with a generated sitemap and ingested once into a kept data dir (``--data``),
together with SciFact from ``../shared/eval``. Each run then:

  * copies the token matrices from the data dir's SQLite cache into a throwaway redis-server,
    and reports Redis bytes per chunk (and per 100,000 chunks);
  * times ``Assistant.search`` over the questions in ``bench/data/pydocs_questions.tsv`` (each
    with the page that answers it), ``--repeat`` times, with the token cache in Redis only and
    with the in-process tier in front: whole-search and per-stage p50/p99, and the
    late-interaction share (token cache + MaxSim + fusion);
  * measures quality in the same run: hit@1 and MRR@10 by page on the site questions, and
    nDCG@10 of the shipped ranking on SciFact (``assistant.evaluation.evaluate``).

    python bench/search_real.py --data ~/.cache/assistant-bench/real --json search_real.json

The first run ingests (minutes); later runs reuse the data dir. ``--profile FILE`` writes a
cProfile of the timed site searches (Redis mode).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.common  # noqa: F401  # isort: skip

import redis
import torch
from rich.console import Console

from assistant.core import Assistant
from assistant.evaluation.runner import evaluate
from assistant.knowledge.encoder import Encoder
from assistant.settings import Settings
from assistant.wiring import build_encoder
from bench.common import (
    ROOT,
    Latency,
    format_bytes,
    load_average,
    machine_facts,
    process_rss,
    table,
    write_json,
)
from tests.support.servers import StaticSite, free_loopback_port, start_redis, stop

DOCS = Path("/usr/share/doc/python3.11/html")
SECTIONS = ("tutorial", "howto", "faq", "reference", "using")
QUESTIONS = ROOT / "bench" / "data" / "pydocs_questions.tsv"
SCIFACT = ROOT.parent / "shared" / "eval" / "scifact"
KB = "pydocs"
STAGES = ("encode", "recall", "cache", "maxsim", "fuse")
LATE_STAGES = ("cache", "maxsim", "fuse")
REDIS_PREFIX = "assistant:tok:"
TARGET_P50_MS, TARGET_P99_MS, LATE_SHARE = 30.0, 60.0, 0.25

console = Console(width=None if sys.stdout.isatty() else 160)


def load_questions(path: Path) -> list[tuple[str, str]]:
    """(question, page) pairs from a tab-separated file; ``#`` lines are comments."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            question, page = line.split("\t")
            pairs.append((question.strip(), page.strip()))
    return pairs


def serve_docs(scratch: Path, data: Path) -> StaticSite:
    """The chosen sections of the docs behind a sitemap that lists every page of them.

    The port is kept in the data dir: page URLs include it, and a page ingested again under
    another URL would be a new document.
    """
    for section in SECTIONS:
        (scratch / section).symlink_to(DOCS / section)
    port_file = data / "site-port.txt"
    if not port_file.exists():
        data.mkdir(parents=True, exist_ok=True)
        port_file.write_text(str(free_loopback_port()), encoding="ascii")
    site = StaticSite(scratch, port=int(port_file.read_text(encoding="ascii")))
    pages = sorted(p.relative_to(scratch) for s in SECTIONS for p in (scratch / s).glob("*.html"))
    urls = "".join(f"<url><loc>{site.url}{page}</loc></url>" for page in pages)
    (scratch / "sitemap.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>',
        encoding="utf-8",
    )
    return site


def settings(data: Path, **values: Any) -> Settings:
    """Settings on ``data``, ignoring any ``.env`` and the loopback fetch refusal. No question
    encoding is kept (``query_cache_bytes=0``): every timed search encodes its question, as a
    question not asked before does."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data,
        fetch_allow_hosts=("127.0.0.1",),
        query_cache_bytes=0,
        **values,
    )


def prepare(data: Path, encoder: Encoder, scifact: bool) -> dict[str, Any]:
    """Ingest the site (and SciFact) into ``data``; pages already there are skipped."""
    facts: dict[str, Any] = {}
    with Assistant(settings(data, token_cache_bytes=0), encoder=encoder) as assistant:
        with tempfile.TemporaryDirectory() as scratch, serve_docs(Path(scratch), data) as site:
            started = time.perf_counter()
            report = assistant.ingest([site.url + "sitemap.xml"], kb=KB)
            seconds = time.perf_counter() - started
        if report.chunks_embedded:
            facts["site_ingest"] = {
                "pages": report.count("added"),
                "chunks": report.chunks_embedded,
                "seconds": round(seconds, 1),
                "chunks_per_s": round(report.chunks_embedded / seconds, 1),
            }
            console.print(f"ingested the site: {facts['site_ingest']}")
        if scifact and SCIFACT.exists():
            evaluate(assistant, SCIFACT, max_queries=1)  # ingests on the first run only
        facts["chunks"] = {
            name: sum(len(d.chunk_ids) for d in assistant.documents(kb=name))
            for name in assistant.knowledge_bases()
        }
    return facts


def fill_redis(data: Path, client: redis.Redis) -> dict[str, float]:
    """Copy every token matrix of the SQLite cache into Redis; Redis bytes per chunk."""
    before = int(cast("dict[str, Any]", client.info("memory"))["used_memory"])
    connection = sqlite3.connect(data / "token-cache.sqlite3")
    count = payload = 0
    pipeline = client.pipeline(transaction=False)
    for key, value in connection.execute("SELECT key, value FROM token_cache"):
        pipeline.set(REDIS_PREFIX + key, bytes(value))
        count += 1
        payload += len(value)
        if count % 1000 == 0:
            pipeline.execute()
    pipeline.execute()
    connection.close()
    used = int(cast("dict[str, Any]", client.info("memory"))["used_memory"]) - before
    return {
        "entries": count,
        "value_bytes": payload,
        "redis_bytes": used,
        "redis_bytes_per_chunk": round(used / max(count, 1), 1),
        "redis_bytes_per_100k_chunks": round(used / max(count, 1) * 100_000),
    }


def page_of(url: str) -> str:
    """The docs path of a hit's URL (the loopback port changes from run to run)."""
    return urlsplit(url).path.lstrip("/")


def time_searches(
    assistant: Assistant, questions: Sequence[tuple[str, str]], repeat: int, profile: Path | None
) -> dict[str, Any]:
    """Whole-search and per-stage latency, pool size and page quality over the questions."""
    for question, _ in questions:  # warm-up: model, Chroma pages, in-process tier
        assistant.search(question, kb=KB, k=10)
    whole: list[float] = []
    cpu: list[float] = []
    stages: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "late_interaction")}
    pools: list[int] = []
    misses = 0
    hit1 = reciprocal = 0.0
    rankings: dict[str, list[str]] = {}
    profiler = cProfile.Profile() if profile else None
    for round_ in range(repeat):
        for question, page in questions:
            if profiler:
                profiler.enable()
            started, started_cpu = time.perf_counter(), time.process_time()
            result = assistant.search(question, kb=KB, k=10)
            whole.append((time.perf_counter() - started) * 1000.0)
            cpu.append((time.process_time() - started_cpu) * 1000.0)
            if profiler:
                profiler.disable()
            timings = result.trace.timings_ms
            for stage in STAGES:
                stages[stage].append(timings.get(stage, 0.0))
            stages["late_interaction"].append(sum(timings.get(s, 0.0) for s in LATE_STAGES))
            pools.append(result.trace.candidates)
            misses += result.trace.cache_misses
            if round_ == 0:
                rankings[question] = [hit.chunk_id for hit in result.hits]
                ranked = list(dict.fromkeys(page_of(hit.url) for hit in result.hits))
                hit1 += ranked[:1] == [page]
                reciprocal += 1.0 / (ranked.index(page) + 1) if page in ranked[:10] else 0.0
    if profiler and profile:
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        profile.write_text(stream.getvalue(), encoding="utf-8")
    summary = {stage: Latency.of(values).as_dict() for stage, values in stages.items()}
    total = Latency.of(whole)
    return {
        "search": total.as_dict(),
        # CPU time of the process per search: less sensitive than wall time to other work on
        # a shared machine.
        "search_cpu": Latency.of(cpu).as_dict(),
        "stages": summary,
        "late_share_p50": round(summary["late_interaction"]["p50_ms"] / total.p50_ms, 3),
        "candidates_mean": round(sum(pools) / len(pools), 1),
        "cache_misses": misses,
        "hit@1": round(hit1 / len(questions), 4),
        "mrr@10": round(reciprocal / len(questions), 4),
        "questions": len(questions),
        "searches": len(whole),
        "rankings": rankings,
    }


def code_version() -> str:
    """The commit of the code measured (with ``+dirty`` for uncommitted changes)."""

    def git(*command: str) -> str:
        run = subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True)
        return run.stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain") else "")


def agreement(results: dict[str, Any], other: dict[str, Any]) -> dict[str, float]:
    """How many questions got the same top 10 (and the same first hit) as in ``other``."""
    same = first = total = 0
    for mode, measured in results["modes"].items():
        before = other.get("modes", {}).get(mode, {}).get("rankings", {})
        for question, ranking in measured["rankings"].items():
            if question in before:
                total += 1
                same += ranking == before[question]
                first += ranking[:1] == before[question][:1]
    return {"compared": total, "same_top10": same, "same_first": first}


def print_tables(results: dict[str, Any]) -> None:
    """The per-mode stage table and the quality and memory figures."""
    modes = results["modes"]
    rows = []
    for stage in ("search", "search_cpu", *STAGES, "late_interaction"):
        row = [stage]
        for mode in modes.values():
            latency = mode[stage] if stage.startswith("search") else mode["stages"][stage]
            row.append(f"{latency['p50_ms']:.1f} / {latency['p99_ms']:.1f}")
        rows.append(row)
    rows.append(["late share of p50", *(f"{m['late_share_p50']:.0%}" for m in modes.values())])
    rows.append(["candidates (mean)", *(f"{m['candidates_mean']:.0f}" for m in modes.values())])
    rows.append(
        ["hit@1 / MRR@10", *(f"{m['hit@1']:.3f} / {m['mrr@10']:.3f}" for m in modes.values())]
    )
    console.print(table("search on the docs site, p50 / p99 ms", ["stage", *modes], rows))
    memory = results["redis"]
    quality = results.get("scifact", {})
    console.print(
        table(
            "quality and memory",
            ["figure", "value"],
            [
                ["SciFact nDCG@10 (late_interaction)", str(quality.get("ndcg@10", "n/a"))],
                ["SciFact search p50 (trace total, ms)", str(quality.get("total_ms", "n/a"))],
                ["Redis bytes per chunk", f"{memory['redis_bytes_per_chunk']:,.0f}"],
                ["Redis per 100k chunks", format_bytes(memory["redis_bytes_per_100k_chunks"])],
                ["process RSS", format_bytes(results["rss_bytes"])],
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache/assistant-bench/real")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds over the questions")
    parser.add_argument("--modes", nargs="+", default=["redis", "tiered"])
    parser.add_argument("--no-scifact", action="store_true", help="skip SciFact nDCG@10")
    parser.add_argument("--prepare-only", action="store_true", help="ingest, then stop")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the searches here")
    parser.add_argument("--compare", type=Path, help="a JSON of an earlier run: same rankings?")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads first")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if not (DOCS / "tutorial" / "index.html").exists():
        raise SystemExit("Python's HTML docs are missing: apt-get install python3.11-doc")
    started = time.perf_counter()
    # The product's encoder (ASSISTANT_ENCODER_RUNTIME chooses ONNX Runtime or torch).
    encoder = build_encoder(settings(args.data))
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "settings": {
            "repeat": args.repeat,
            "modes": args.modes,
            "code": code_version(),
            "encoder_runtime": getattr(encoder, "runtime", "torch"),
        },
    }
    results["data"] = prepare(args.data, encoder, not args.no_scifact)
    if args.prepare_only:
        console.print(results["data"])
        return
    questions = load_questions(QUESTIONS)
    port = free_loopback_port()
    with tempfile.TemporaryDirectory() as scratch:
        server = start_redis(port, Path(scratch) / "redis.log")
        try:
            url = f"redis://127.0.0.1:{port}/0"
            client = redis.Redis(port=port)
            results["redis"] = fill_redis(args.data, client)
            results["modes"] = {}
            for mode in args.modes:
                cache_bytes = 0 if mode == "redis" else 512 * 2**20
                values = {"redis_url": url, "token_cache_bytes": cache_bytes}
                with Assistant(settings(args.data, **values), encoder=encoder) as assistant:
                    profile = args.profile if mode == args.modes[0] else None
                    results["modes"][mode] = time_searches(
                        assistant, questions, args.repeat, profile
                    )
                    if mode == args.modes[0] and not args.no_scifact and SCIFACT.exists():
                        report = evaluate(assistant, SCIFACT).to_json()
                        results["scifact"] = {
                            "ndcg@10": report["runs"]["late_interaction"]["ndcg@10"],  # type: ignore[index]
                            "total_ms": report["timings_ms"].get("total"),  # type: ignore[attr-defined]
                            "timings_ms": report["timings_ms"],
                        }
            results["rss_bytes"] = process_rss()
            client.close()
        finally:
            stop(server)
    if args.compare:
        results["agreement"] = agreement(results, json.loads(args.compare.read_text("utf-8")))
        console.print(f"rankings against {args.compare}: {results['agreement']}")
    results["load_average_end"] = load_average()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    print_tables(results)
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
