"""Chat-turn overhead: from the request to the first text event, with a provider that answers at once.

For each N in ``--chunks``, ``bench/retrieval.py``'s synthetic knowledge base of N chunks is
built, with every token matrix in the cache. A ``ChatOrchestrator`` is composed of the parts
``Assistant`` uses (the ``Retriever``, ``RuleBasedCondenser``, the token counter, the default
``TurnBudget``, a ``ConversationStore`` on the default SQLite database), with ``InstantProvider``
as the model. Each question starts a conversation and is followed up; every conversation runs
once untimed, then once timed. Goal: **p50 <= 50 ms, p99 <= 120 ms** to the first text.

    python bench/chat.py --chunks 10000 100000 [--redis-url URL] --json chat.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, the repository root must be importable; bench.common comes first because
# importing it keeps the model libraries off the hub.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.common  # noqa: F401  # isort: skip

from assistant.chat.answerer import Answerer, Brand
from assistant.chat.condense import RuleBasedCondenser
from assistant.chat.conversations import ConversationStore
from assistant.chat.events import DoneEvent, ErrorEvent, TextDelta, Usage
from assistant.chat.orchestrator import ChatOrchestrator, TurnBudget
from assistant.chat.provider import ChatRequest, ProviderEvent
from assistant.chat.tokens import counter_for
from assistant.database.engine import Database, database_url
from assistant.knowledge.encoder import TransformerEncoder
from assistant.knowledge.redis_token_cache import RedisTokenCache
from assistant.knowledge.retriever import Retriever, SearchResult
from assistant.knowledge.token_cache import InProcessTokenCache, TokenCache
from bench import retrieval
from bench.common import (
    Latency,
    Stopwatch,
    add_run_arguments,
    available_memory_bytes,
    finish_results,
    format_bytes,
    load_average,
    new_results,
    pass_fail,
    product_encoder,
    progress_bar,
    table,
    write_json,
)

# One console, so the progress bars of the build and of the turns do not overlap.
console = retrieval.console
KB_NAME = "bench"
TARGET_P50_MS, TARGET_P99_MS = 50.0, 120.0
# Scores are in -1..1, so every turn with at least one hit is answered.
ANSWER_EVERY_TURN = -1.0
REDIS_PREFIX = "bench:chat:"
FOLLOW_UPS = (
    "and how much does it cost?",
    "what about on mobile?",
    "does it work offline too?",
    "how do I turn it off?",
    "can admins change that?",
    "is it available on the free plan?",
)
BEFORE_TEXT = ("history", "condense", "encode", "recall", "cache", "maxsim", "fuse", "context")
# "other": first_token less the stages before it (thread hand-offs, the prompt, the events).
STAGES = (*BEFORE_TEXT, "other", "first_token", "store")
TURNS = ("first", "follow-up")


class InstantProvider:
    """A provider that answers at once: one text delta citing source 1, then done."""

    name = "instant"
    model: str | None = None

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield ``"ok [1]"`` and a ``DoneEvent`` without waiting for anything."""
        yield TextDelta("ok [1]")
        yield DoneEvent(Usage(), self.name)


def build_orchestrator(
    search: Callable[[str, int], SearchResult], conversations: ConversationStore
) -> ChatOrchestrator:
    """The parts ``Assistant._orchestrator`` composes, with ``InstantProvider`` as the model."""
    provider = InstantProvider()
    return ChatOrchestrator(
        assistant=KB_NAME,
        search=search,
        answerer=Answerer([provider], brand=Brand(assistant_name=KB_NAME, company=KB_NAME)),
        condenser=RuleBasedCondenser(ignored_terms=[KB_NAME]),
        counter=counter_for(provider.name, provider.model),
        conversations=conversations,
        budget=TurnBudget(),
        no_answer_threshold=ANSWER_EVERY_TURN,
        decline_unknown_names=False,
    )


@dataclass
class TurnSamples:
    """What the timed turns of one kind took."""

    first_text_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    stages: Stopwatch = field(default_factory=Stopwatch)
    outcomes: Counter[str] = field(default_factory=Counter)
    cache_misses: int = 0


async def run_turn(
    orchestrator: ChatOrchestrator, message: str, conversation_id: str | None, samples: TurnSamples
) -> str:
    """One turn, timed from the call of ``stream`` to the first text and to ``done``."""
    first_text: float | None = None
    done: DoneEvent | None = None
    started = time.perf_counter()
    turn = await orchestrator.prepare(message, conversation_id=conversation_id)
    events = orchestrator.respond(turn)
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, TextDelta) and first_text is None:
                first_text = time.perf_counter()
            elif isinstance(event, DoneEvent):
                done = event
            elif isinstance(event, ErrorEvent):
                raise SystemExit(f"the turn failed: {event.code}: {event.message}")
    finished = time.perf_counter()
    if done is None or first_text is None or done.conversation_id is None:
        raise SystemExit("the turn ended without text, a done event or a conversation id")
    samples.first_text_ms.append((first_text - started) * 1000.0)
    samples.total_ms.append((finished - started) * 1000.0)
    timings = done.timings_ms
    for stage, milliseconds in timings.items():
        samples.stages.add(stage, milliseconds)
    samples.stages.add(
        "other", timings["first_token"] - sum(timings.get(s, 0.0) for s in BEFORE_TEXT)
    )
    samples.outcomes[done.outcome] += 1
    samples.cache_misses += turn.retrieval.trace.cache_misses
    return done.conversation_id


async def run_conversations(
    orchestrator: ChatOrchestrator, questions: Sequence[str], follow_ups: int, label: str
) -> dict[str, TurnSamples]:
    """Each question as a new conversation's first turn, then ``follow_ups`` follow-ups."""
    samples = {turn: TurnSamples() for turn in TURNS}
    with progress_bar(console) as progress:
        task = progress.add_task(label, total=len(questions))
        for position, question in enumerate(questions):
            conversation_id = await run_turn(orchestrator, question, None, samples["first"])
            for offset in range(follow_ups):
                message = FOLLOW_UPS[(position + offset) % len(FOLLOW_UPS)]
                await run_turn(orchestrator, message, conversation_id, samples["follow-up"])
            progress.advance(task)
    return samples


def summarise(samples: TurnSamples) -> dict[str, object]:
    """Latencies, goals, stage p50s, outcomes and cache misses of one kind of turn."""
    first_text = Latency.of(samples.first_text_ms)
    return {
        "first_text": first_text.as_dict(),
        "turn_total": Latency.of(samples.total_ms).as_dict(),
        "stages": {stage: lat.as_dict() for stage, lat in samples.stages.summary().items()},
        "outcomes": dict(samples.outcomes),
        "cache_misses": samples.cache_misses,
        "meets_p50": first_text.p50_ms <= TARGET_P50_MS,
        "meets_p99": first_text.p99_ms <= TARGET_P99_MS,
    }


def measure_cache(
    kb: retrieval.KnowledgeBase,
    encoder: TransformerEncoder,
    cache: TokenCache,
    full: bool,
    conversations: ConversationStore,
    questions: Sequence[str],
    follow_ups: int,
    seed: int,
    label: str,
) -> dict[str, object]:
    """Every conversation once untimed, then once timed, over ``cache``."""
    retriever = Retriever(
        kb.store, encoder, cache, lexical=kb.lexical, head_version=retrieval.HEAD_VERSION
    )

    def warming_search(query: str, k: int) -> SearchResult:
        if not full:
            # The cache holds only what was written: write this query's candidate pool first.
            retrieval.write_candidate_matrices(kb, encoder, cache, query, seed)
        return retriever.search(query, k=k)

    warming = build_orchestrator(warming_search, conversations)
    timed = build_orchestrator(lambda query, k: retriever.search(query, k=k), conversations)

    async def both() -> dict[str, TurnSamples]:
        await run_conversations(warming, questions, follow_ups, f"warm-up ({label})")
        return await run_conversations(timed, questions, follow_ups, f"timed ({label})")

    samples = asyncio.run(both())
    return {turn: summarise(samples[turn]) for turn in TURNS}


def clear_prefix(cache: RedisTokenCache) -> None:
    """Delete this benchmark's keys, and only those, from the Redis server."""
    keys = list(cache.client.scan_iter(match=cache.prefix + "*", count=1000))
    for start in range(0, len(keys), 1000):
        cache.client.delete(*keys[start : start + 1000])


def run_scale(
    size: int,
    encoder: TransformerEncoder,
    vocabulary: retrieval.ZipfVocabulary,
    questions: Sequence[str],
    follow_ups: int,
    redis_url: str | None,
    seed: int,
) -> dict[str, Any]:
    """Build a knowledge base of ``size`` chunks and time chat turns over each cache."""
    console.rule(f"{size:,} chunks")
    results: dict[str, Any] = {"chunks": size, "load_average_before": load_average()}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as scratch:
        data_dir = Path(scratch)
        kb = retrieval.build_knowledge_base(size, data_dir, encoder, vocabulary, seed)
        int8_bytes = retrieval.stored_bytes(kb.lengths, "int8")
        available = available_memory_bytes()
        full = available is None or int8_bytes <= available / 2
        caches: list[tuple[str, TokenCache, bool]] = []
        # Not full: half the available memory for the questions' candidates (~10 MB each turn);
        # what does not fit is evicted and shows as misses.
        room = int8_bytes + 2**30 if available is None or full else max(2**30, available // 2)
        in_process = InProcessTokenCache(room, format="int8")
        if full:
            kb.seconds["in_process_cache"] = retrieval.fill_caches(
                kb, [in_process], seed, "in-process"
            )
        else:
            notes.append(
                f"the token cache holds only the questions' candidates: {format_bytes(int8_bytes)} "
                f"for all chunks is over half of {format_bytes(available)} available"
            )
        caches.append(("in-process int8", in_process, full))
        redis_cache: RedisTokenCache | None = None
        loader: RedisTokenCache | None = None
        if redis_url:
            redis_cache = RedisTokenCache.from_url(redis_url, prefix=REDIS_PREFIX)
            loader = RedisTokenCache.from_url(redis_url, prefix=REDIS_PREFIX, timeout_seconds=30)
            clear_prefix(loader)
            if full:
                kb.seconds["redis_cache"] = retrieval.fill_caches(kb, [loader], seed, "Redis")
            caches.append(("Redis int8", redis_cache, full))
        database = Database.open(database_url(None, data_dir))
        try:
            conversations = ConversationStore(database)
            results["build_seconds"] = {name: round(value, 2) for name, value in kb.seconds.items()}
            results["caches"] = {
                name: measure_cache(
                    kb, encoder, cache, filled, conversations, questions, follow_ups, seed, name
                )
                for name, cache, filled in caches
            }
            errors = {name: cache.stats().errors for name, cache, _ in caches}
            results["cache_errors"] = errors
        finally:
            database.close()
            if redis_cache is not None and loader is not None:
                clear_prefix(loader)
                redis_cache.close()
                loader.close()
        del kb, caches, in_process
        gc.collect()
    results["notes"] = notes
    results["load_average_after"] = load_average()
    return results


def _p50_p99(latency: dict[str, float]) -> str:
    return f"{latency['p50_ms']:,.1f} / {latency['p99_ms']:,.1f}"


def print_tables(scales: Sequence[dict[str, Any]]) -> None:
    """First-text latency against the goal, and the p50 of each stage."""
    rows, stage_rows = [], []
    for scale in scales:
        for cache, turns in scale["caches"].items():
            for turn, result in turns.items():
                head, first_text = [f"{scale['chunks']:,}", cache, turn], result["first_text"]
                rows.append(
                    [
                        *(*head, f"{first_text['p50_ms']:,.1f}", pass_fail(result["meets_p50"])),
                        *(f"{first_text['p99_ms']:,.1f}", pass_fail(result["meets_p99"])),
                        *(f"{first_text['mean_ms']:,.1f}", _p50_p99(result["turn_total"])),
                        str(int(first_text["count"])),
                        ", ".join(f"{k} {v}" for k, v in result["outcomes"].items()),
                        str(result["cache_misses"]),
                    ]
                )
                stages = result["stages"]
                stage_rows.append(
                    [
                        *head,
                        *(f"{stages[s]['p50_ms']:,.1f}" if s in stages else "-" for s in STAGES),
                    ]
                )
    console.print(
        table(
            "stream(...) to the first text event, ms (instant provider, real store, warm cache)",
            [
                *("chunks", "cache", "turn", "p50", f"<= {TARGET_P50_MS:.0f}", "p99"),
                *(f"<= {TARGET_P99_MS:.0f}", "mean", "to done p50 / p99", "turns"),
                *("outcomes", "misses"),
            ],
            rows,
        )
    )
    console.print(
        table(
            "p50 per stage, ms, from the done event (first_token counts from the request; "
            "other is first_token less the stages before it)",
            ["chunks", "cache", "turn", *STAGES],
            stage_rows,
        )
    )
    for scale in scales:
        for note in scale["notes"]:
            console.print(f"[yellow]{scale['chunks']:,} chunks: {note}[/yellow]")


def main(argv: Sequence[str] | None = None, *, encoder: TransformerEncoder | None = None) -> None:
    """Parse arguments, measure each scale, print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="conversations per scale")
    parser.add_argument("--follow-ups", type=int, default=1, help="follow-up turns each")
    parser.add_argument("--redis-url", help="also measure a Redis token cache at this URL")
    add_run_arguments(parser, retrieval.DEFAULT_QUESTIONS)
    args = parser.parse_args(argv)
    if min(args.chunks) < retrieval.RECALL_K or args.queries < 1 or args.follow_ups < 1:
        parser.error(
            f"--chunks must be at least {retrieval.RECALL_K}; --queries, --follow-ups at least 1"
        )
    started = time.perf_counter()
    results = new_results(
        args,
        redis_url=bool(args.redis_url),  # a URL may hold a password
        turn_budget=dataclasses.asdict(TurnBudget()),
    )
    results["scales"] = []
    encoder = encoder or product_encoder()
    results["encoder_runtime"] = encoder.runtime
    vocabulary = retrieval.ZipfVocabulary(encoder.tokenizer.get_vocab())
    questions = retrieval.load_questions(args.questions, args.queries)
    console.log(f"{len(set(questions))} distinct questions, load average {load_average()}")
    for size in args.chunks:
        results["scales"].append(
            run_scale(
                size, encoder, vocabulary, questions, args.follow_ups, args.redis_url, args.seed
            )
        )
        if args.json:
            write_json(args.json, results)
    finish_results(results, started, args.json)
    print_tables(results["scales"])
    console.print(f"total {results['total_seconds']:.0f} s, load average {load_average()}")


if __name__ == "__main__":
    main()
