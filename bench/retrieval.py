"""Retrieval latency at scale: every stage of a search, the whole search, and what each costs.

For each N in ``--chunks`` a synthetic knowledge base of N chunks is built in a temporary
directory: random unit-norm 384-d dense vectors in an embedded Chroma collection, texts drawn
from a Zipf distribution over the encoder's own word vocabulary in a BM25 index, and random
unit-norm token matrices (60-180 tokens) in the token caches (in-process and a throwaway
redis-server on loopback), in the shipped int8 format. Then, over real short questions:

  * per stage p50/p99: query encode, Chroma recall, BM25, the fetch of the candidates' token
    matrices (in-process and Redis, int8 and fp16), MaxSim, fusion;
  * the whole ``Retriever.search`` with a warm cache, in-process and Redis, against the targets
    p50 <= 30 ms and p99 <= 60 ms at 100,000 chunks; in process also with every chunk read
    from Chroma instead of the chunk table, the two alternated question by question;
  * memory: codec bytes per token and per chunk, Redis ``used_memory`` for the N matrices.

Once per run: a MiniLM-L6 cross-encoder scoring 100 (query, passage) pairs against the
late-interaction stage (cache fetch + MaxSim) for the same 100 passages, and ``maxsim_scores``
against a plain matrix product of the same FLOPs.

    python bench/retrieval.py --chunks 10000 100000 --json retrieval.json
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, the repository root must be importable; bench.common comes first because
# importing it keeps the model libraries off the hub.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.common  # noqa: F401  # isort: skip

import numpy as np
import redis
import torch
from rich.console import Console

from assistant.knowledge.chunk_table import ChunkTable, gather_pages
from assistant.knowledge.chunking import Chunk
from assistant.knowledge.encoder import TransformerEncoder, resolve_model_path
from assistant.knowledge.fusion import DEFAULT_WEIGHTS
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.maxsim import (
    maxsim_scores,
    maxsim_scores_ragged,
    pad_token_matrices,
)
from assistant.knowledge.ranking import rank_candidates
from assistant.knowledge.redis_token_cache import RedisTokenCache
from assistant.knowledge.retriever import Retriever
from assistant.knowledge.token_cache import (
    InProcessTokenCache,
    TokenCache,
    cache_key,
    token_space,
)
from assistant.knowledge.token_codec import (
    HEADER_SIZE,
    TOKEN_FORMATS,
    bytes_per_token,
    encode_tokens,
)
from assistant.knowledge.vector_store import ChromaStore, ChunkRecord, chroma_client
from bench.common import (
    ROOT,
    Latency,
    Stopwatch,
    add_run_arguments,
    available_memory_bytes,
    finish_results,
    format_bytes,
    load_average,
    minor_page_faults,
    new_results,
    pass_fail,
    product_encoder,
    progress_bar,
    table,
    timed_runs,
    write_json,
)
from tests.support.servers import free_loopback_port, start_redis, stop

DIMENSION = 384
RECALL_K = 100
RESULTS_K = 10
HEAD_VERSION = "base"
MIN_TOKENS, MAX_TOKENS = 60, 180
ZIPF_EXPONENT = 1.0
BUILD_BATCH = 1000
TARGET_SCALE = 100_000
TARGET_P50_MS, TARGET_P99_MS = 30.0, 60.0
CROSS_ENCODER_GOAL = 50.0
MAXSIM_GOAL = 2.0
PAIRS, PASSAGE_TOKENS = 100, 180
# A Redis value costs more than its bytes (key, dict entry, allocator rounding).
REDIS_OVERHEAD = 1.1
DEFAULT_QUESTIONS = (
    ROOT / "examples" / "questions.txt",
    ROOT.parent / "shared" / "eval" / "cranfield" / "queries.jsonl",
    ROOT.parent / "shared" / "eval" / "scifact" / "queries.jsonl",
)

BUILD_PHASES = ("texts", "chroma", "lexical", "chunk_table", "in_process_cache", "redis_cache")
TRACE_STAGES = ("encode", "recall", "cache", "maxsim", "fuse")

console = Console(width=None if sys.stdout.isatty() else 160)


class ZipfVocabulary:
    """Whole words of the encoder's vocabulary, drawn with Zipf frequencies.

    BERT's vocabulary lists words roughly by frequency, so the id order serves as the rank. Each
    word is one token of the encoder, so a text of ``n`` words is ``n`` tokens long.
    """

    def __init__(self, vocabulary: dict[str, int], exponent: float = ZIPF_EXPONENT) -> None:
        ranked = sorted(
            (i, word) for word, i in vocabulary.items() if re.fullmatch(r"[a-z]{2,}", word)
        )
        self.words = [word for _, word in ranked]
        weights = np.arange(1, len(self.words) + 1, dtype=np.float64) ** -exponent
        self._cumulative = np.cumsum(weights / weights.sum())

    def text(self, words: int, rng: np.random.Generator) -> str:
        """``words`` words drawn independently."""
        picks = np.searchsorted(self._cumulative, rng.random(words))
        picks = np.minimum(picks, len(self.words) - 1)
        return " ".join(self.words[i] for i in picks)


def token_matrix(seed: int, index: int, length: int) -> torch.Tensor:
    """A reproducible (length, 384) matrix of unit-norm rows for chunk ``index``."""
    values = np.random.default_rng((seed, index)).standard_normal((length, DIMENSION), np.float32)
    values /= np.linalg.norm(values, axis=1, keepdims=True)
    return torch.from_numpy(values)


def chunk_index(chunk_id: str) -> int:
    """The position of a synthetic chunk, from its id."""
    return int(chunk_id.removeprefix("c"))


def write_candidate_matrices(
    kb: KnowledgeBase, encoder: TransformerEncoder, cache: TokenCache, question: str, seed: int
) -> None:
    """Write the token matrices of ``question``'s candidate pool (the dense top-k from Chroma
    and the BM25 top-k), so that a search for it finds every candidate cached."""
    dense = encoder.encode_query(question).dense
    ids = [chunk.chunk_id for chunk, _ in kb.store.query(dense, RECALL_K)]
    ids += [chunk_id for chunk_id, _ in kb.lexical.query(question).top(RECALL_K)]
    indices = {chunk_index(chunk_id) for chunk_id in ids}
    cache.put_many({kb.keys[i]: token_matrix(seed, i, int(kb.lengths[i])) for i in indices})


def load_questions(paths: Sequence[Path], needed: int) -> list[str]:
    """Short questions from text files (one per line) and BEIR ``queries.jsonl`` files."""
    questions: list[str] = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            text = str(json.loads(line)["text"]) if path.suffix == ".jsonl" else line
            if text.strip() and len(text.split()) <= 40:
                questions.append(text.strip())
    if not questions:
        raise SystemExit("no questions found; pass --questions FILE (one question per line)")
    if len(questions) < needed:
        console.print(f"[yellow]only {len(questions)} distinct questions; reusing them[/yellow]")
    return [questions[i % len(questions)] for i in range(needed)]


@dataclass
class KnowledgeBase:
    """A built synthetic knowledge base and what it took to build."""

    size: int
    chroma: Any
    store: ChromaStore
    lexical: LexicalIndex
    lengths: np.ndarray
    keys: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def build_knowledge_base(
    size: int, directory: Path, encoder: TransformerEncoder, vocabulary: ZipfVocabulary, seed: int
) -> KnowledgeBase:
    """Chunks, dense vectors in Chroma and a BM25 index for ``size`` synthetic chunks."""
    rng = np.random.default_rng((seed, size))
    generator = torch.Generator().manual_seed(seed)
    lengths = rng.integers(MIN_TOKENS, MAX_TOKENS + 1, size)
    chroma = chroma_client(path=str(directory / "chroma"))
    store = ChromaStore.open(
        chroma,
        "bench",
        embedding_model=encoder.model_id,
        dimension=DIMENSION,
    )
    keys: list[str] = []
    seconds = {"texts": 0.0, "chroma": 0.0}
    with progress_bar(console) as progress:
        task = progress.add_task(f"Chroma add, {size:,} chunks", total=size)
        for start in range(0, size, BUILD_BATCH):
            stop_at = min(size, start + BUILD_BATCH)
            started = time.perf_counter()
            records = [
                ChunkRecord(
                    chunk=Chunk(
                        chunk_id=f"c{i:07d}",
                        document_source=f"https://docs.example.com/page-{i // 8}",
                        title=f"Page {i // 8}",
                        heading_path=(f"Section {i % 8}",),
                        text=vocabulary.text(int(lengths[i]) - 2, rng),
                        position=i % 8,
                    ),
                    source="bench",
                    document_hash=f"{i // 8:016x}",
                    content_type="text/html",
                    fetched_at="2025-01-01T00:00:00+00:00",
                )
                for i in range(start, stop_at)
            ]
            for record in records:
                keys.append(
                    cache_key(token_space(encoder), HEAD_VERSION, record.chunk.content_hash)
                )
            dense = torch.nn.functional.normalize(
                torch.randn(len(records), DIMENSION, generator=generator), dim=-1
            )
            added = time.perf_counter()
            store.add(records, dense)
            seconds["texts"] += added - started
            seconds["chroma"] += time.perf_counter() - added
            progress.advance(task, len(records))
    # As the product's lexical build: every chunk read back, indexed, and kept in the table.
    started = time.perf_counter()
    chunks, dense_rows = gather_pages(store.iter_embedded_chunks(), DIMENSION)
    table = ChunkTable.build(chunks, dense_rows)
    read = time.perf_counter()
    pairs = [(chunk.chunk_id, chunk.chunk.embedding_text) for chunk in chunks]
    # Where the product looks for knowledge base "bench" in a data dir (``serve_load.py``).
    lexical_dir = directory / "lexical" / "bench"
    LexicalIndex.build(pairs, chunk_table=table).save(lexical_dir)
    del chunks, dense_rows, table, pairs
    lexical = LexicalIndex.load(lexical_dir)
    assert lexical is not None and lexical.chunk_table is not None
    store.use_table(lexical.chunk_table)
    seconds["chunk_table"] = read - started
    seconds["lexical"] = time.perf_counter() - read
    console.log(
        f"built {size:,} chunks: texts {seconds['texts']:.1f} s, Chroma {seconds['chroma']:.1f} s, "
        f"chunk table {seconds['chunk_table']:.1f} s, BM25 {seconds['lexical']:.1f} s"
    )
    return KnowledgeBase(size, chroma, store, lexical, lengths, keys, seconds)


def fill_caches(kb: KnowledgeBase, caches: Sequence[TokenCache], seed: int, label: str) -> float:
    """Write every chunk's token matrix into ``caches``; seconds taken."""
    started = time.perf_counter()
    with progress_bar(console) as progress:
        task = progress.add_task(f"token caches ({label}), {kb.size:,} chunks", total=kb.size)
        for start in range(0, kb.size, BUILD_BATCH):
            indices = range(start, min(kb.size, start + BUILD_BATCH))
            items = {kb.keys[i]: token_matrix(seed, i, int(kb.lengths[i])) for i in indices}
            for cache in caches:
                cache.put_many(items)
            progress.advance(task, len(indices))
    return time.perf_counter() - started


def stored_bytes(lengths: np.ndarray, format: str) -> int:
    """Encoded bytes of matrices of ``lengths`` tokens in ``format``."""
    return int(lengths.size * HEADER_SIZE + lengths.sum() * bytes_per_token(DIMENSION, format))


def redis_used_memory(client: redis.Redis) -> int:
    """Redis ``used_memory`` from INFO memory."""
    return int(client.info("memory")["used_memory"])


@dataclass
class ScaleCaches:
    """The caches measured at one scale and whether each holds all N chunks."""

    in_process: InProcessTokenCache
    redis_int8: RedisTokenCache
    in_process_fp16: InProcessTokenCache
    redis_fp16: RedisTokenCache
    in_process_full: bool
    redis_full: bool


def measure_stages(
    kb: KnowledgeBase,
    encoder: TransformerEncoder,
    caches: ScaleCaches,
    questions: Sequence[str],
    warmup: int,
    seed: int,
) -> tuple[Stopwatch, dict[str, float]]:
    """Time every stage of a search separately, question by question."""
    watch = Stopwatch()
    pool_sizes: list[int] = []
    pad_faults: list[int] = []
    working_set: set[str] = set()
    with progress_bar(console) as progress:
        task = progress.add_task(f"stages, {kb.size:,} chunks", total=len(questions))
        for position, question in enumerate(questions):
            record = position >= warmup
            with watch.time("encode", record=record):
                encoded = encoder.encode_query(question)
            with watch.time("recall (Chroma top-100)", record=record):
                dense_hits = kb.store.query(encoded.dense, RECALL_K)
            started = time.perf_counter()
            lexical = kb.lexical.query(question)
            top = lexical.top(RECALL_K)
            lexical_ms = (time.perf_counter() - started) * 1000.0
            candidates = {chunk.chunk_id: (chunk, score) for chunk, score in dense_hits}
            missing = [chunk_id for chunk_id, _ in top if chunk_id not in candidates]
            with watch.time("lexical-only chunks from Chroma", record=record):
                extra = kb.store.get_with_similarity(missing, encoded.dense)
            for chunk, score in extra:
                candidates[chunk.chunk_id] = (chunk, score)
            started = time.perf_counter()
            pool = list(candidates)
            pool_scores = lexical.of(pool)
            lexical_ms += (time.perf_counter() - started) * 1000.0
            if record:
                watch.add("lexical (BM25 top-100 + pool scores)", lexical_ms)
                pool_sizes.append(len(pool))
            indices = [chunk_index(chunk_id) for chunk_id in pool]
            keys = [kb.keys[i] for i in indices]
            working_set.update(keys)

            def matrices(chosen: Sequence[int]) -> dict[str, torch.Tensor]:
                return {kb.keys[i]: token_matrix(seed, i, int(kb.lengths[i])) for i in chosen}

            fetched: dict[str, list[torch.Tensor | None]] = {}
            for name, cache, full in (
                ("cache fetch, in-process int8", caches.in_process, caches.in_process_full),
                ("cache fetch, Redis int8", caches.redis_int8, caches.redis_full),
                ("cache fetch, in-process fp16", caches.in_process_fp16, False),
                ("cache fetch, Redis fp16", caches.redis_fp16, False),
            ):
                if not full:
                    # Not preloaded: make this question's candidates warm, untimed.
                    cache.put_many(matrices(indices))
                with watch.time(name, record=record):
                    fetched[name] = cache.get_many(keys)
            caches.redis_fp16.client.delete(*[caches.redis_fp16.prefix + key for key in keys])
            found = [m for m in fetched["cache fetch, in-process int8"] if m is not None]
            if len(found) != len(keys):
                raise SystemExit(f"in-process cache missed {len(keys) - len(found)} candidates")
            with watch.time("MaxSim (shipped: maxsim_scores_ragged)", record=record):
                late = maxsim_scores_ragged(encoded.tokens, found)
            # The padded batch form, for comparison: its copy of every candidate is the cost.
            faults = minor_page_faults()
            started = time.perf_counter()
            documents, mask = pad_token_matrices(found, DIMENSION)
            padded = time.perf_counter()
            if record:
                pad_faults.append(minor_page_faults() - faults)
            maxsim_scores(encoded.tokens, documents, mask)
            if record:
                watch.add(
                    "MaxSim padded (pad + maxsim_scores)", (time.perf_counter() - started) * 1e3
                )
                watch.add("  of which pad_token_matrices", (padded - started) * 1e3)
                watch.add("  of which maxsim_scores", (time.perf_counter() - padded) * 1e3)
            with watch.time("fusion (z-scores + order)", record=record):
                # As the retriever ranks: the scores as float32 arrays, fused and ordered.
                rank_candidates(
                    np.array([candidates[cid][1] for cid in pool], np.float32),
                    late,
                    DEFAULT_WEIGHTS,
                    np.array(pool_scores, np.float32),
                ).order[:RESULTS_K]
            progress.advance(task)
    pools = np.asarray(pool_sizes)
    facts = {
        "candidates_mean": float(pools.mean()),
        "candidates_min": float(pools.min()),
        "candidates_max": float(pools.max()),
        "working_set_chunks": float(len(working_set)),
        # Fresh pages of the padded batch; each one costs a page fault.
        "pad_minor_page_faults_p50": float(np.median(pad_faults)),
    }
    return watch, facts


def measure_search(
    retrievers: Sequence[tuple[str, Retriever]], questions: Sequence[str], warmup: int
) -> dict[str, dict[str, object]]:
    """Time ``Retriever.search`` end to end and keep its own per-stage trace, for each of
    ``retrievers`` by label; several are alternated question by question, each starting in
    turn, so they share the machine's state."""
    wall: dict[str, list[float]] = {label: [] for label, _ in retrievers}
    trace_watch = {label: Stopwatch() for label, _ in retrievers}
    misses = dict.fromkeys(wall, 0)
    faults: dict[str, list[int]] = {label: [] for label in wall}
    labels = ", ".join(wall)
    with progress_bar(console) as progress:
        task = progress.add_task(f"Retriever.search ({labels})", total=len(questions))
        for position, question in enumerate(questions):
            turn = position % len(retrievers)
            for label, retriever in [*retrievers[turn:], *retrievers[:turn]]:
                faults_before = minor_page_faults()
                started = time.perf_counter()
                result = retriever.search(question, k=RESULTS_K)
                elapsed = (time.perf_counter() - started) * 1000.0
                if position >= warmup:
                    faults[label].append(minor_page_faults() - faults_before)
                    wall[label].append(elapsed)
                    misses[label] += result.trace.cache_misses
                    for stage, milliseconds in result.trace.timings_ms.items():
                        trace_watch[label].add(stage, milliseconds)
            progress.advance(task)
    results: dict[str, dict[str, object]] = {}
    for label in wall:
        total = Latency.of(wall[label])
        results[label] = {
            "latency": total.as_dict(),
            "trace": {stage: lat.as_dict() for stage, lat in trace_watch[label].summary().items()},
            "cache_misses": misses[label],
            "minor_page_faults_p50": float(np.median(faults[label])),
            "meets_p50": total.p50_ms <= TARGET_P50_MS,
            "meets_p99": total.p99_ms <= TARGET_P99_MS,
        }
    return results


def run_scale(
    size: int,
    encoder: TransformerEncoder,
    vocabulary: ZipfVocabulary,
    redis_client: redis.Redis,
    redis_url: str,
    questions: Sequence[str],
    warmup: int,
    seed: int,
) -> dict[str, object]:
    """Build a knowledge base of ``size`` chunks and measure it."""
    console.rule(f"{size:,} chunks")
    results: dict[str, object] = {"load_average_before": load_average()}
    redis_client.flushall()
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as scratch:
        kb = build_knowledge_base(size, Path(scratch), encoder, vocabulary, seed)
        int8_bytes = stored_bytes(kb.lengths, "int8")
        notes: list[str] = []
        available = available_memory_bytes()
        in_process_full = available is None or int8_bytes <= available / 2
        in_process = InProcessTokenCache(max_bytes=int8_bytes + 2**30, format="int8")
        if not in_process_full:
            notes.append(
                f"in-process cache holds only the questions' candidates: {format_bytes(int8_bytes)} "
                f"for all chunks is over half of {format_bytes(available)} available"
            )
        fill_seconds = fill_caches(kb, [in_process], seed, "in-process") if in_process_full else 0.0
        available = available_memory_bytes()
        redis_full = available is None or int8_bytes * REDIS_OVERHEAD <= available / 2
        redis_int8 = RedisTokenCache.from_url(redis_url, timeout_seconds=0.5)
        loader = RedisTokenCache.from_url(redis_url, timeout_seconds=30.0)
        before = redis_used_memory(redis_client)
        redis_fill_seconds = 0.0
        if redis_full:
            redis_fill_seconds = fill_caches(kb, [loader], seed, "Redis")
            if int(redis_client.dbsize()) != size:
                raise SystemExit(f"Redis holds {redis_client.dbsize()} of {size} matrices")
        else:
            notes.append(
                f"Redis not loaded with all chunks: about {format_bytes(int8_bytes * REDIS_OVERHEAD)} "
                f"is over half of {format_bytes(available)} available; its memory is extrapolated "
                "from the questions' candidates"
            )
        caches = ScaleCaches(
            in_process=in_process,
            redis_int8=redis_int8,
            in_process_fp16=InProcessTokenCache(max_bytes=2**30, format="fp16"),
            redis_fp16=RedisTokenCache.from_url(redis_url, prefix="bench:fp16:", format="fp16"),
            in_process_full=in_process_full,
            redis_full=redis_full,
        )
        watch, pool_facts = measure_stages(kb, encoder, caches, questions, warmup, seed)
        after = redis_used_memory(redis_client)
        loaded = size if redis_full else int(redis_client.dbsize())
        redis_per_chunk = (after - before) / max(loaded, 1)
        # Both start with nothing read: the stages above filled the store's memo.
        kb.store.forget_reads()
        from_chroma = ChromaStore.open(
            kb.chroma, "bench", embedding_model=encoder.model_id, dimension=DIMENSION
        )
        searches = measure_search(
            [
                (
                    "in-process int8",
                    Retriever(
                        kb.store, encoder, in_process, lexical=kb.lexical, head_version=HEAD_VERSION
                    ),
                ),
                (
                    "in-process int8, chunks from Chroma",
                    Retriever(
                        from_chroma,
                        encoder,
                        in_process,
                        lexical=kb.lexical,
                        head_version=HEAD_VERSION,
                    ),
                ),
            ],
            questions,
            warmup,
        )
        searches.update(
            measure_search(
                [
                    (
                        "Redis int8",
                        Retriever(
                            kb.store,
                            encoder,
                            redis_int8,
                            lexical=kb.lexical,
                            head_version=HEAD_VERSION,
                        ),
                    )
                ],
                questions,
                warmup,
            )
        )
        stats = {"in-process": in_process.stats(), "Redis": redis_int8.stats()}
        results.update(
            {
                "chunks": size,
                "build_seconds": {
                    **{name: round(value, 2) for name, value in kb.seconds.items()},
                    "in_process_cache": round(fill_seconds, 2),
                    "redis_cache": round(redis_fill_seconds, 2),
                },
                "candidates": pool_facts,
                "stages": {stage: lat.as_dict() for stage, lat in watch.summary().items()},
                "search": searches,
                "cache_errors": {name: stat.errors for name, stat in stats.items()},
                "memory": {
                    "tokens_mean": float(kb.lengths.mean()),
                    "codec_bytes_all_chunks": {
                        f: stored_bytes(kb.lengths, f) for f in TOKEN_FORMATS
                    },
                    "in_process_cache_bytes": in_process.bytes_used,
                    "redis_used_memory_before": before,
                    "redis_used_memory_after": after,
                    "redis_chunks_loaded": loaded,
                    "redis_bytes_per_chunk": round(redis_per_chunk, 1),
                    "redis_bytes_all_chunks": round(redis_per_chunk * size),
                    "redis_bytes_measured": redis_full,
                },
                "notes": notes,
                "load_average_after": load_average(),
            }
        )
        for cache in (redis_int8, loader, caches.redis_fp16):
            cache.close()
        del kb, caches, in_process
        gc.collect()
    redis_client.flushall()
    return results


def compare_cross_encoder(
    encoder: TransformerEncoder,
    vocabulary: ZipfVocabulary,
    redis_url: str,
    question: str,
    runs: int,
    seed: int,
) -> dict[str, object]:
    """A MiniLM-L6 cross-encoder on 100 pairs against cache fetch + MaxSim for the same 100."""
    from transformers import BertConfig, BertForSequenceClassification

    console.rule("cross-encoder against late interaction")
    rng = np.random.default_rng((seed, 7))
    passages = [vocabulary.text(PASSAGE_TOKENS - 2, rng) for _ in range(PAIRS)]
    keys = [cache_key(token_space(encoder), HEAD_VERSION, f"pair-{i}") for i in range(PAIRS)]
    items = {key: token_matrix(seed + 1, i, PASSAGE_TOKENS) for i, key in enumerate(keys)}
    in_process = InProcessTokenCache(max_bytes=2**30)
    redis_cache = RedisTokenCache.from_url(redis_url, prefix="bench:pairs:")
    in_process.put_many(items)
    redis_cache.put_many(items)
    query_tokens = encoder.encode_query(question).tokens

    def late(cache: TokenCache) -> Callable[[], object]:
        def score() -> object:
            found = [m for m in cache.get_many(keys) if m is not None]
            return maxsim_scores_ragged(query_tokens, found)

        return score

    late_runs = max(50, runs)
    late_latency = {
        "in-process int8": timed_runs(late(in_process), late_runs),
        "Redis int8": timed_runs(late(redis_cache), late_runs),
    }
    config = BertConfig.from_pretrained(resolve_model_path(encoder.model_id), num_labels=1)
    # Weights do not change the cost, so the untrained model stands for a trained one.
    model: torch.nn.Module = BertForSequenceClassification(config)
    model.eval()
    pair_lengths: list[int] = []

    def cross_encode(batch_size: int) -> Callable[[], object]:
        def score() -> object:
            scores = []
            for start in range(0, PAIRS, batch_size):
                batch = passages[start : start + batch_size]
                inputs = encoder.tokenizer(
                    [question] * len(batch),
                    batch,
                    truncation="only_second",
                    max_length=256,
                    padding=True,
                    return_tensors="pt",
                )
                pair_lengths.extend(int(n) for n in inputs["attention_mask"].sum(dim=1))
                with torch.inference_mode():
                    scores.append(model(**inputs).logits.squeeze(-1))
            return torch.cat(scores)

        return score

    cross_latency: dict[str, Latency] = {}
    for batch_size in (32, 100):
        console.log(f"cross-encoder, batch {batch_size}: {runs} runs of {PAIRS} pairs")
        cross_latency[f"batch {batch_size}"] = timed_runs(cross_encode(batch_size), runs, warmup=1)
    redis_cache.client.delete(*[redis_cache.prefix + key for key in keys])
    redis_cache.close()
    speedups = {
        f"{cross} / {late_name}": round(cross_lat.p50_ms / late_lat.p50_ms, 1)
        for cross, cross_lat in cross_latency.items()
        for late_name, late_lat in late_latency.items()
    }
    return {
        "pairs": PAIRS,
        "passage_tokens": PASSAGE_TOKENS,
        "pair_tokens_mean": round(float(np.mean(pair_lengths)), 1),
        "question": question,
        "query_tokens": int(query_tokens.shape[0]),
        "cross_encoder": {name: lat.as_dict() for name, lat in cross_latency.items()},
        "late_interaction": {name: lat.as_dict() for name, lat in late_latency.items()},
        "speedup_p50": speedups,
        "goal": CROSS_ENCODER_GOAL,
    }


def maxsim_efficiency(
    query_lengths: Sequence[int], runs: int, seed: int
) -> list[dict[str, object]]:
    """The shipped MaxSim on 100 x 180 x 384 against a matrix product of the same FLOPs."""
    console.rule("MaxSim against matmul")
    matrices = [token_matrix(seed + 2, i, PASSAGE_TOKENS) for i in range(PAIRS)]
    flat = torch.cat(matrices).T.contiguous()  # (d, 100 * 180)
    rows = []
    for length in query_lengths:
        query = token_matrix(seed + 3, length, length)

        def score(query: torch.Tensor = query) -> torch.Tensor:
            return maxsim_scores_ragged(query, matrices)

        def multiply(query: torch.Tensor = query) -> torch.Tensor:
            return torch.matmul(query, flat)  # (Lq, d) @ (d, 100 * 180)

        maxsim = timed_runs(score, runs, warmup=10)
        matmul = timed_runs(multiply, runs, warmup=10)
        flops = 2 * length * DIMENSION * PAIRS * PASSAGE_TOKENS
        rows.append(
            {
                "query_tokens": length,
                "maxsim": maxsim.as_dict(),
                "matmul": matmul.as_dict(),
                "ratio_p50": round(maxsim.p50_ms / matmul.p50_ms, 2),
                "maxsim_gflops": round(flops / maxsim.p50_ms / 1e6, 2),
                "matmul_gflops": round(flops / matmul.p50_ms / 1e6, 2),
                "goal": MAXSIM_GOAL,
            }
        )
    return rows


def codec_memory() -> list[dict[str, object]]:
    """Bytes per token vector and per chunk in each format, checked against the codec."""
    rows = []
    mean_tokens = (MIN_TOKENS + MAX_TOKENS) / 2
    for format in TOKEN_FORMATS:
        per_token = bytes_per_token(DIMENSION, format)
        encoded = len(encode_tokens(token_matrix(0, 0, PASSAGE_TOKENS), format))
        if encoded != HEADER_SIZE + PASSAGE_TOKENS * per_token:
            raise SystemExit(f"{format}: the codec wrote {encoded} bytes, not the documented size")
        rows.append(
            {
                "format": format,
                "bytes_per_token": per_token,
                "bytes_per_180_token_chunk": encoded,
                "bytes_per_mean_chunk": HEADER_SIZE + mean_tokens * per_token,
            }
        )
    return rows


def _ms(latency: dict[str, float] | None, key: str = "p50_ms") -> str:
    return f"{latency[key]:,.1f}" if latency and key in latency else "n/a"


def _p50_p99(latency: dict[str, float] | None) -> str:
    return f"{_ms(latency)} / {_ms(latency, 'p99_ms')}"


def print_scale_tables(scales: Sequence[dict[str, Any]]) -> None:
    """Build times, per-stage latencies, whole-search latencies and memory per scale."""
    console.print(
        table(
            "build (seconds) and candidate pool (dense top-100 ∪ BM25 top-100)",
            [
                *("chunks", "texts", "Chroma add", "BM25", "chunk table"),
                *("in-process fill", "Redis fill"),
                *("total", "pool"),
            ],
            [
                [
                    f"{s['chunks']:,}",
                    *(f"{s['build_seconds'][k]:.1f}" for k in BUILD_PHASES),
                    f"{sum(s['build_seconds'][k] for k in BUILD_PHASES):.1f}",
                    f"{s['candidates']['candidates_mean']:.0f} "
                    f"({s['candidates']['candidates_min']:.0f}-{s['candidates']['candidates_max']:.0f})",
                ]
                for s in scales
            ],
        )
    )
    console.print(
        table(
            "per-stage latency, ms (p50 / p99)",
            ["stage", *(f"{s['chunks']:,} chunks" for s in scales)],
            [
                [stage, *(_p50_p99(s["stages"].get(stage)) for s in scales)]
                for stage in scales[0]["stages"]
            ],
        )
    )
    for scale in scales:
        console.print(
            f"{scale['chunks']:,} chunks: pad_token_matrices touched "
            f"{scale['candidates']['pad_minor_page_faults_p50']:,.0f} fresh pages per query (p50)"
        )
    rows = []
    for scale in scales:
        for name, result in scale["search"].items():
            latency, trace = result["latency"], result["trace"]
            rows.append(
                [
                    f"{scale['chunks']:,}",
                    name,
                    _ms(latency),
                    pass_fail(result["meets_p50"]),
                    _ms(latency, "p99_ms"),
                    pass_fail(result["meets_p99"]),
                    *(_ms(trace.get(stage)) for stage in TRACE_STAGES),
                    str(result["cache_misses"]),
                    f"{result['minor_page_faults_p50']:,.0f}",
                ]
            )
    console.print(
        table(
            f"Retriever.search, warm cache, ms (targets apply at {TARGET_SCALE:,} chunks; "
            "stage columns are p50 from its trace)",
            [
                *("chunks", "cache", "p50", f"<= {TARGET_P50_MS:.0f}"),
                *("p99", f"<= {TARGET_P99_MS:.0f}", *TRACE_STAGES, "misses", "page faults"),
            ],
            rows,
        )
    )
    rows = []
    for scale in scales:
        facts = scale["memory"]
        extrapolated = "" if facts["redis_bytes_measured"] else " (extrapolated)"
        rows.append(
            [
                f"{scale['chunks']:,}",
                f"{facts['tokens_mean']:.1f}",
                format_bytes(facts["codec_bytes_all_chunks"]["int8"]),
                format_bytes(facts["codec_bytes_all_chunks"]["fp16"]),
                format_bytes(facts["in_process_cache_bytes"]),
                format_bytes(facts["redis_bytes_all_chunks"]) + extrapolated,
                f"{facts['redis_bytes_per_chunk']:,.0f}",
            ]
        )
    console.print(
        table(
            "token matrices of all chunks",
            [
                *("chunks", "mean tokens", "int8 codec", "fp16 codec", "in-process int8"),
                *("Redis used_memory int8", "Redis B / chunk"),
            ],
            rows,
        )
    )
    for scale in scales:
        for note in scale["notes"]:
            console.print(f"[yellow]{scale['chunks']:,} chunks: {note}[/yellow]")


def print_comparison_tables(
    comparison: dict[str, Any],
    efficiency: Sequence[dict[str, Any]],
    codec: Sequence[dict[str, Any]],
) -> None:
    """Cross-encoder against late interaction, MaxSim against matmul, codec sizes."""
    rows = [
        [f"MiniLM-L6 cross-encoder, {name}", _ms(latency), _ms(latency, "p99_ms")]
        for name, latency in comparison["cross_encoder"].items()
    ] + [
        [f"cache fetch + MaxSim, {name}", _ms(latency), _ms(latency, "p99_ms")]
        for name, latency in comparison["late_interaction"].items()
    ]
    console.print(
        table(
            f"scoring {comparison['pairs']} passages of {comparison['passage_tokens']} tokens "
            f"for one query (pairs {comparison['pair_tokens_mean']:.0f} tokens), ms",
            ["scorer", "p50", "p99"],
            rows,
        )
    )
    console.print(
        table(
            f"speed-up of late interaction, p50 (goal >= {CROSS_ENCODER_GOAL:.0f}x)",
            ["cross-encoder / late interaction", "ratio", "goal"],
            [
                [name, f"{ratio:,.1f}x", pass_fail(ratio >= CROSS_ENCODER_GOAL)]
                for name, ratio in comparison["speedup_p50"].items()
            ],
        )
    )
    console.print(
        table(
            f"maxsim_scores against matmul, {PAIRS} x {PASSAGE_TOKENS} x {DIMENSION}, p50",
            [
                *("query tokens", "MaxSim ms", "matmul ms", "ratio", f"<= {MAXSIM_GOAL:.0f}x"),
                *("GFLOP/s MaxSim", "GFLOP/s matmul"),
            ],
            [
                [
                    str(row["query_tokens"]),
                    _ms(row["maxsim"]),
                    _ms(row["matmul"]),
                    f"{row['ratio_p50']:.2f}x",
                    pass_fail(row["ratio_p50"] <= MAXSIM_GOAL),
                    f"{row['maxsim_gflops']:.1f}",
                    f"{row['matmul_gflops']:.1f}",
                ]
                for row in efficiency
            ],
        )
    )
    console.print(
        table(
            f"codec sizes, {DIMENSION}-d token vectors (header {HEADER_SIZE} B)",
            ["format", "B / token", "B / 180-token chunk", "B / 120-token chunk"],
            [
                [
                    row["format"],
                    str(row["bytes_per_token"]),
                    f"{row['bytes_per_180_token_chunk']:,}",
                    f"{row['bytes_per_mean_chunk']:,.0f}",
                ]
                for row in codec
            ],
        )
    )


def main() -> None:
    """Parse arguments, run every measurement, print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="measured questions per scale")
    parser.add_argument("--warmup", type=int, default=20, help="untimed questions first")
    parser.add_argument("--cross-encoder-runs", type=int, default=10)
    parser.add_argument("--maxsim-runs", type=int, default=200)
    add_run_arguments(parser, DEFAULT_QUESTIONS)
    args = parser.parse_args()
    if min(args.chunks) < RECALL_K or args.queries < 1 or args.warmup < 0:
        parser.error(f"--chunks must be at least {RECALL_K} and --queries at least 1")

    started = time.perf_counter()
    results = new_results(
        args,
        recall_k=RECALL_K,
        dimension=DIMENSION,
        tokens_per_chunk=[MIN_TOKENS, MAX_TOKENS],
        zipf_exponent=ZIPF_EXPONENT,
    )

    def save() -> None:
        if args.json:
            write_json(args.json, results)

    encoder = product_encoder()
    results["encoder_runtime"] = encoder.runtime
    vocabulary = ZipfVocabulary(encoder.tokenizer.get_vocab())
    questions = load_questions(args.questions, args.warmup + args.queries)
    console.log(
        f"{len(vocabulary.words):,} words in the vocabulary, {len(set(questions))} distinct "
        f"questions, load average {load_average()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as scratch:
        port = free_loopback_port()
        server = start_redis(port, Path(scratch) / "redis.log")
        redis_url = f"redis://127.0.0.1:{port}/0"
        redis_client = redis.Redis(port=port, socket_timeout=60)
        try:
            comparison = compare_cross_encoder(
                encoder, vocabulary, redis_url, questions[0], args.cross_encoder_runs, args.seed
            )
            results["cross_encoder_comparison"] = comparison
            # The question's own length, and ColBERT's usual padded query length.
            lengths = sorted({int(encoder.encode_query(questions[0]).tokens.shape[0]), 32})
            results["maxsim_efficiency"] = maxsim_efficiency(lengths, args.maxsim_runs, args.seed)
            results["codec"] = codec_memory()
            save()
            results["scales"] = []
            for size in args.chunks:
                results["scales"].append(
                    run_scale(
                        size,
                        encoder,
                        vocabulary,
                        redis_client,
                        redis_url,
                        questions,
                        args.warmup,
                        args.seed,
                    )
                )
                save()
        finally:
            redis_client.close()
            stop(server)
    finish_results(results, started, args.json)
    print_comparison_tables(
        results["cross_encoder_comparison"], results["maxsim_efficiency"], results["codec"]
    )
    print_scale_tables(results["scales"])
    console.print(f"total {results['total_seconds']:.0f} s, load average {load_average()}")


if __name__ == "__main__":
    main()
