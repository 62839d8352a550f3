"""Load on ``assistant serve``: streamed chat turns over HTTP from concurrent clients.

The synthetic knowledge base of ``bench/retrieval.py`` (N chunks: random unit-norm dense vectors
in embedded Chroma, Zipf texts in a BM25 index, random token matrices in the token cache) is
built in a fresh data dir by a child process, where the server looks for it: the Chroma
collection of knowledge base ``bench`` in ``DATA_DIR/chroma``, the BM25 index in
``DATA_DIR/lexical/bench`` and the token matrices in ``DATA_DIR/token-cache.sqlite3``. Then
``assistant serve`` runs as a subprocess on loopback with that data dir, and assistant ``bench``
is set (through the API) to answer with the ``openai`` provider, pointed by ``OPENAI_BASE_URL``
at a fake OpenAI-compatible server in this process that streams ``"Answer text [1]."`` at once.
So the timings are the server's own: authentication, rate limit, conversation storage, search
over N chunks, the prompt, the provider's HTTP stream and the server-sent events.

Clients (``httpx.AsyncClient``, the assistant's secret key) send ``POST
/api/assistants/bench/chat`` with ``stream: true``, each turn a new conversation, and time the
first ``text`` event and the whole turn. After an untimed warm-up, each level of
``--concurrency`` runs ``--turns`` turns with that many clients at once. The goal is
**>= 50 turns/s and TTFT p99 <= 250 ms at 10 concurrent clients**.

On real pages: ``--real DIR`` serves the data dir ``bench/search_real.py`` keeps (Python's docs,
knowledge base ``pydocs``) instead of building a synthetic one, and asks its questions
(``bench/data/pydocs_questions.tsv``); the conversations are stored in that data dir.
``--answerer offline`` answers with the default offline answerer instead of the provider (what
ships without an API key; on synthetic chunks it would re-encode every sentence, since their
random token matrices match no text, so it needs ``--real``).

    python bench/serve_load.py --chunks 100000 --concurrency 1 10 50 --turns 200 --json serve.json
    python bench/serve_load.py --real ~/.cache/assistant-bench/real --answerer offline \
        --concurrency 1 10 --turns 200 --warmup 30
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, the repository root must be importable; bench.common comes first because
# importing it keeps the model libraries off the hub.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.common  # noqa: F401  # isort: skip

import httpx
import redis

from assistant.knowledge.encoder import TransformerEncoder
from assistant.knowledge.token_cache import SQLiteTokenCache
from assistant.settings import Settings
from bench.common import (
    Latency,
    Stopwatch,
    add_run_arguments,
    finish_results,
    format_bytes,
    load_average,
    new_results,
    pass_fail,
    process_rss,
    table,
    write_json,
)
from bench.retrieval import (
    DEFAULT_QUESTIONS,
    RECALL_K,
    ZipfVocabulary,
    build_knowledge_base,
    console,
    fill_caches,
    load_questions,
    write_candidate_matrices,
)
from bench.search_real import fill_redis
from bench.search_real import load_questions as load_site_questions
from tests.chat.fake_openai import FakeOpenAIServer, Stream
from tests.support.servers import (
    child_pids,
    chroma_server,
    free_loopback_port,
    start_redis,
    stop,
)

KB_NAME = "bench"  # the collection bench/retrieval.py builds
REAL_KB_NAME = "pydocs"  # the knowledge base bench/search_real.py ingests
REAL_QUESTIONS = Path(__file__).resolve().parent / "data" / "pydocs_questions.tsv"
MODEL = "gpt-4o-mini"
ANSWER = ("Answer ", "text [1].")
GOAL_CONCURRENCY = 10
GOAL_TURNS_PER_SECOND = 50.0
GOAL_TTFT_P99_MS = 250.0
SERVER_START_SECONDS = 180.0
BEFORE_PROVIDER = ("history", "condense", "encode", "recall", "cache", "maxsim", "fuse", "context")
# The time to the first token that no stage accounts for: waiting for a worker thread or the
# event loop, the prompt, and the provider's round trip to its first chunk.
PROVIDER_STAGE = "other"
STAGES = (*BEFORE_PROVIDER, PROVIDER_STAGE, "first_token")


def prepare_data_dir(
    data_dir: Path, size: int, seed: int, fill: str, questions: list[str]
) -> dict[str, float]:
    """Build the knowledge base where the server looks for it; seconds per build phase.

    Runs in a child process, so Chroma's files are complete and closed when the server opens
    them, and the build's memory is returned before the load starts. ``fill`` ``all`` writes
    every chunk's token matrix; ``candidates`` only those of the questions' candidate pools
    (dense and BM25 top-100), which is all the turns read.
    """
    settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
    encoder = TransformerEncoder(settings.embedding_model)
    vocabulary = ZipfVocabulary(encoder.tokenizer.get_vocab())
    # Its BM25 index and chunk table are saved in DATA_DIR/lexical/bench.
    kb = build_knowledge_base(size, data_dir, encoder, vocabulary, seed)
    cache = SQLiteTokenCache(settings.token_cache_path, format=settings.token_cache_format)
    try:
        if fill == "all":
            kb.seconds["token_cache"] = fill_caches(kb, [cache], seed, "SQLite")
        else:
            started = time.perf_counter()
            for question in dict.fromkeys(questions):
                write_candidate_matrices(kb, encoder, cache, question, seed)
            kb.seconds["token_cache"] = time.perf_counter() - started
    finally:
        cache.close()
    return {phase: round(seconds, 2) for phase, seconds in kb.seconds.items()}


def build_in_child(
    data_dir: Path, size: int, seed: int, fill: str, questions: list[str]
) -> dict[str, float]:
    """``prepare_data_dir`` in a fresh process that exits when it is done."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(prepare_data_dir, data_dir, size, seed, fill, questions).result()


def _log_tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@contextmanager
def running_server(
    data_dir: Path,
    provider_url: str,
    admin_key: str,
    log_path: Path,
    extra_environment: dict[str, str] | None = None,
    workers: int = 1,
) -> Iterator[tuple[str, int]]:
    """``assistant serve --workers N`` on a free loopback port over ``data_dir``; yields its
    base URL and its process id (with several workers, the supervisor's)."""
    port = free_loopback_port()
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ASSISTANT_", "OPENAI_"))
    }
    environment |= {
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_ADMIN_KEY": admin_key,
        "OPENAI_BASE_URL": provider_url,
        "OPENAI_API_KEY": "sk-bench",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    environment |= extra_environment or {}
    command = [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--workers", str(workers)]
    with log_path.open("wb") as log:
        # The data dir's parent as working directory: no .env of the checkout is read.
        process = subprocess.Popen(
            command, cwd=data_dir.parent, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                raise SystemExit(
                    f"assistant serve exited ({process.returncode}):\n{_log_tail(log_path)}"
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"assistant serve was not ready in time:\n{_log_tail(log_path)}")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        stop(process)


@contextmanager
def shared_services(data_dir: Path, scratch: Path) -> Iterator[dict[str, str]]:
    """What several API processes share, for ``--workers`` over 1: a throwaway redis-server
    holding a copy of the data dir's token matrices, and ``chroma run`` over its Chroma
    folder. Yields the server's environment for them."""
    redis_port = free_loopback_port()
    redis_server = start_redis(redis_port, scratch / "redis.log")
    try:
        copied = fill_redis(data_dir, redis.Redis(port=redis_port))
        console.log(f"token matrices copied into Redis: {copied['entries']:,}")
        with chroma_server(data_dir / "chroma", scratch / "chroma.log") as chroma_url:
            yield {
                "ASSISTANT_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "ASSISTANT_CHROMA_URL": chroma_url,
            }
    finally:
        stop(redis_server)


def tree_rss(pid: int) -> int:
    """Resident memory of process ``pid`` and its children (the API processes under
    uvicorn's supervisor), in bytes."""
    return process_rss(pid) + sum(tree_rss(child) for child in child_pids(pid))


def configure(url: str, admin_key: str, kb: str = KB_NAME, answerer: str = "provider") -> str:
    """Point assistant ``kb`` at the fake provider (``answerer="offline"``: keep the default
    offline answerer), answering every turn; a secret key."""
    settings: dict[str, Any] = {
        # Scores are in -1..1, so every turn with a hit is answered.
        "retrieval": {"no_answer_threshold": -1.0, "decline_unknown_names": False},
        "limits": {"requests_per_minute": 100_000},
    }
    # Set either way: a kept data dir (``--real``) remembers the last run's choice.
    settings["answering"] = (
        {"provider": "openai", "model": MODEL}
        if answerer == "provider"
        else {"provider": "extractive", "model": None}
    )
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        client.patch(f"/api/assistants/{kb}", json=settings, timeout=60).raise_for_status()
        created = client.post(f"/api/assistants/{kb}/keys", json={"kind": "secret"}, timeout=60)
        created.raise_for_status()
        return str(created.json()["key"])


@dataclass
class TurnResult:
    """One turn as the client saw it."""

    total_ms: float
    first_text_ms: float | None = None
    error: str | None = None
    provider: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


async def run_turn(client: httpx.AsyncClient, question: str, kb: str = KB_NAME) -> TurnResult:
    """One streamed turn, timed from sending the request to the first text and to the end."""
    started = time.perf_counter()
    first_text: float | None = None
    done: dict[str, Any] | None = None
    error: str | None = None
    try:
        async with client.stream(
            "POST", f"/api/assistants/{kb}/chat", json={"message": question, "stream": True}
        ) as response:
            if response.status_code != 200:
                await response.aread()
                error = f"HTTP {response.status_code}"
            else:
                event = ""
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        if event == "text" and first_text is None:
                            first_text = time.perf_counter()
                        elif event == "done":
                            done = json.loads(line.removeprefix("data:"))
                        elif event == "error":
                            error = "error event"
    except httpx.HTTPError as exc:
        error = type(exc).__name__
    finished = time.perf_counter()
    if error is None and (first_text is None or done is None):
        error = "no text" if first_text is None else "no done event"
    result = TurnResult(total_ms=(finished - started) * 1000.0, error=error)
    if error is None and first_text is not None and done is not None:
        result.first_text_ms = (first_text - started) * 1000.0
        result.provider = str(done.get("provider"))
        result.timings_ms = dict(done.get("timings_ms") or {})
    return result


async def run_level(
    url: str,
    key: str,
    questions: Sequence[str],
    concurrency: int,
    turns: int,
    timeout: float,
    kb: str = KB_NAME,
    fresh_connections: bool = False,
) -> tuple[list[TurnResult], float]:
    """``turns`` turns by ``concurrency`` clients at once; the results and the wall seconds.

    With ``fresh_connections`` every turn opens its own connection, as a visitor's browser
    does after the server's keep-alive has lapsed between two messages."""
    keep_alive = 0 if fresh_connections else concurrency
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=keep_alive)
    headers = {"Authorization": f"Bearer {key}"}
    results: list[TurnResult] = []
    numbers = itertools.count()
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=timeout, limits=limits
    ) as client:

        async def client_loop() -> None:
            while (number := next(numbers)) < turns:
                results.append(await run_turn(client, questions[number % len(questions)], kb))

        started = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return results, seconds


def summarise(
    concurrency: int, results: list[TurnResult], seconds: float, load: list[float]
) -> dict[str, Any]:
    """Throughput, latencies, errors and server stages of one level."""
    good = [result for result in results if result.error is None]
    server = Stopwatch()
    for result in good:
        for stage, milliseconds in result.timings_ms.items():
            server.add(stage, milliseconds)
        if "first_token" in result.timings_ms:
            before = sum(result.timings_ms.get(stage, 0.0) for stage in BEFORE_PROVIDER)
            server.add(PROVIDER_STAGE, result.timings_ms["first_token"] - before)
    summary: dict[str, Any] = {
        "concurrency": concurrency,
        "turns": len(results),
        "errors": len(results) - len(good),
        "error_kinds": dict(Counter(r.error for r in results if r.error is not None)),
        "providers": dict(Counter(r.provider for r in good)),
        "seconds": round(seconds, 3),
        "turns_per_second": round(len(good) / seconds, 2),
        "load_average_before": load,
        "server_stages_ms": {stage: lat.as_dict() for stage, lat in server.summary().items()},
    }
    if good:
        first_text = Latency.of([r.first_text_ms or 0.0 for r in good])
        summary["first_text"] = first_text.as_dict()
        summary["turn_total"] = Latency.of([r.total_ms for r in good]).as_dict()
        summary["meets_turns_per_second"] = summary["turns_per_second"] >= GOAL_TURNS_PER_SECOND
        summary["meets_first_text_p99"] = first_text.p99_ms <= GOAL_TTFT_P99_MS
    return summary


def print_tables(levels: Sequence[dict[str, Any]], answerer: str = "provider") -> None:
    """Throughput and latency per level, the server's own stage p50s, and the goal line."""
    rows, stage_rows = [], []
    for level in levels:
        first, total = level.get("first_text"), level.get("turn_total")
        rows.append(
            [
                str(level["concurrency"]),
                str(level["turns"]),
                str(level["errors"]),
                f"{level['seconds']:,.1f}",
                f"{level['turns_per_second']:,.1f}",
                pass_fail(level.get("meets_turns_per_second", False)),
                f"{first['p50_ms']:,.1f}" if first else "-",
                f"{first['p99_ms']:,.1f}" if first else "-",
                pass_fail(level.get("meets_first_text_p99", False)),
                f"{total['p50_ms']:,.1f} / {total['p99_ms']:,.1f}" if total else "-",
                " ".join(f"{value:.2f}" for value in level["load_average_before"]),
            ]
        )
        stages = level["server_stages_ms"]
        stage_rows.append(
            [str(level["concurrency"])]
            + [f"{stages[s]['p50_ms']:,.1f}" if s in stages else "-" for s in STAGES]
        )
    console.print(
        table(
            "chat turns over HTTP (streamed; "
            + ("instant fake provider" if answerer == "provider" else "offline answerer")
            + "), ms",
            [
                *("clients", "turns", "errors", "seconds", "turns/s"),
                f">= {GOAL_TURNS_PER_SECOND:.0f}",
                *("TTFT p50", "TTFT p99", f"<= {GOAL_TTFT_P99_MS:.0f}"),
                *("turn p50 / p99", "load avg before"),
            ],
            rows,
        )
    )
    console.print(
        table("server stage p50, ms (from the done event)", ["clients", *STAGES], stage_rows)
    )
    for level in levels:
        if level["concurrency"] == GOAL_CONCURRENCY:
            ok = level.get("meets_turns_per_second", False) and level.get(
                "meets_first_text_p99", False
            )
            console.print(
                f"goal at {GOAL_CONCURRENCY} clients (>= {GOAL_TURNS_PER_SECOND:.0f} turns/s, "
                f"TTFT p99 <= {GOAL_TTFT_P99_MS:.0f} ms): {pass_fail(ok)}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, build, serve, run each level, print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="chunks in the knowledge base")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--turns", type=int, default=200, help="timed turns per level")
    parser.add_argument("--warmup", type=int, default=50, help="untimed turns first, one client")
    parser.add_argument("--distinct-questions", type=int, default=50)
    parser.add_argument(
        "--fill",
        choices=["candidates", "all"],
        default="candidates",
        help="token matrices written: the questions' candidates, or every chunk's",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per turn")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the server (repeat), e.g. ASSISTANT_SEARCH_WORKERS=2",
    )
    parser.add_argument(
        "--real",
        type=Path,
        metavar="DIR",
        help="serve the data dir of bench/search_real.py (Python's docs) instead of a synthetic one",
    )
    parser.add_argument(
        "--answerer",
        choices=["provider", "offline"],
        default="provider",
        help="answer with the instant fake provider, or with the default offline answerer",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes (assistant serve --workers); over 1 also starts redis-server, "
        "with the token matrices copied in, and chroma run over the data dir",
    )
    parser.add_argument(
        "--fresh-connections",
        action="store_true",
        help="every timed turn on a new connection (visitors' messages further apart than the "
        "server's keep-alive), instead of each client keeping one",
    )
    add_run_arguments(parser, DEFAULT_QUESTIONS)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.chunks < RECALL_K or args.turns < 1 or min(args.concurrency) < 1 or args.warmup < 0:
        parser.error(f"--chunks must be at least {RECALL_K}; --turns and --concurrency at least 1")
    if args.answerer == "offline" and args.real is None:
        parser.error("--answerer offline needs --real: synthetic token matrices match no text")
    if args.real is not None and not (args.real / "lexical" / REAL_KB_NAME).is_dir():
        parser.error(f"{args.real} holds no {REAL_KB_NAME}: run bench/search_real.py --data first")
    started = time.perf_counter()
    kb = REAL_KB_NAME if args.real is not None else KB_NAME
    questions = (
        [question for question, _ in load_site_questions(REAL_QUESTIONS)]
        if args.real is not None
        else load_questions(args.questions, args.distinct_questions)
    )
    results = new_results(
        args,
        real=str(args.real) if args.real is not None else None,
        model=MODEL,
        goal={
            "concurrency": GOAL_CONCURRENCY,
            "turns_per_second": GOAL_TURNS_PER_SECOND,
            "first_text_p99_ms": GOAL_TTFT_P99_MS,
        },
    )
    results["levels"] = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        if args.real is not None:
            data_dir = args.real.resolve()
            results["build_seconds"] = 0.0
        else:
            data_dir = Path(scratch) / "data"
            console.log(f"building {args.chunks:,} chunks, load average {load_average()}")
            results["build_seconds"] = build_in_child(
                data_dir, args.chunks, args.seed, args.fill, questions
            )
        admin_key = secrets.token_urlsafe(24)
        log_path = Path(scratch) / "server.log"
        with FakeOpenAIServer() as provider, ExitStack() as services:
            provider.script(Stream(ANSWER, prompt_tokens=1000, completion_tokens=4))
            extra = {}
            if args.workers > 1:
                extra |= services.enter_context(shared_services(data_dir, Path(scratch)))
            extra |= dict(assignment.split("=", 1) for assignment in args.server_env)
            serving = running_server(
                data_dir, provider.url, admin_key, log_path, extra, args.workers
            )
            with serving as (url, pid):
                key = configure(url, admin_key, kb, args.answerer)
                if args.warmup:
                    warmed, _ = asyncio.run(
                        run_level(url, key, questions, 1, args.warmup, args.timeout, kb)
                    )
                    failed = [r.error for r in warmed if r.error is not None]
                    if failed:
                        raise SystemExit(
                            f"warm-up turns failed: {Counter(failed)}\n{_log_tail(log_path)}"
                        )
                for concurrency in args.concurrency:
                    load = load_average()
                    console.log(f"{concurrency} clients, {args.turns} turns, load average {load}")
                    turns, seconds = asyncio.run(
                        run_level(
                            url,
                            key,
                            questions,
                            concurrency,
                            args.turns,
                            args.timeout,
                            kb,
                            fresh_connections=args.fresh_connections,
                        )
                    )
                    level = summarise(concurrency, turns, seconds, load)
                    # The API process's resident memory right after the load (token-cache
                    # tier, encoder, memo and buffers included).
                    level["server_rss_bytes"] = tree_rss(pid)
                    console.log(
                        f"server RSS after the level: {format_bytes(level['server_rss_bytes'])}"
                    )
                    results["levels"].append(level)
                    if args.json:
                        write_json(args.json, results)
            results["provider_requests"] = len(provider.requests)
    finish_results(results, started, args.json)
    print_tables(results["levels"], args.answerer)
    console.print(f"total {results['total_seconds']:.0f} s, load average {load_average()}")


if __name__ == "__main__":
    main()
