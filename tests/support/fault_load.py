"""Load on a running :mod:`tests.support.topology`: widget-style streamed chats and ingests,
and the checks a fault is judged by.

- :func:`prepare` serves a small site on loopback, creates assistant ``site`` (extractive) and
  ``llm`` (OpenAI-compatible, pointed at a fake by the topology's ``OPENAI_BASE_URL``) with a
  public widget key and a secret key each, and ingests the site into them through the API and
  the workers: ``site``'s chunks are the clean run every later ingest is compared with.
- :func:`stream_chat` is one turn as a widget (public key + ``Origin`` + visitor token) or a
  server (secret key) sends it, classified: ``ok`` (a ``done`` event), ``clean_error`` (a
  problem response or an ``error`` event), ``connection_error`` (the replica went away: the
  client may retry), ``hung`` (nothing within the timeout) or ``corrupt`` (a stream that ends
  without ``done`` or ``error``, or data that is not JSON).
- :func:`chat_load` runs clients against the replicas in turns until told to stop.
- :func:`chunk_difference` and :func:`turn_problems` find lost or duplicated chunks in Chroma
  and half-written or garbled turns in the database.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import chromadb
import httpx
import sqlalchemy

from tests.support.servers import StaticSite
from tests.support.topology import Topology

__all__ = [
    "LLM_KB",
    "ORIGIN",
    "SITE_KB",
    "ChatResult",
    "Setup",
    "Visitor",
    "add_assistants",
    "chat_load",
    "chunk_difference",
    "chunks_of",
    "prepare",
    "serve_site",
    "start_ingest",
    "stream_chat",
    "turn_problems",
    "wait_for_job",
]

SITE_KB = "site"
"""The extractive assistant; its ingest is the clean run."""
LLM_KB = "llm"
"""The assistant answered by the fake OpenAI-compatible provider (extractive fallback)."""
ORIGIN = "https://shop.example.com"
"""The page the widget-style clients pretend to be on (an allowed origin)."""

Outcome = Literal["ok", "clean_error", "connection_error", "hung", "corrupt"]

_TOPICS = [
    ("password", "reset your password from the sign-in page with the emailed link"),
    ("invoice", "download an invoice as PDF from the billing page of your account"),
    ("refund", "ask for a refund within thirty days of the purchase"),
    ("export", "export your data as CSV from the settings page"),
    ("backup", "backups run every night and are kept for two weeks"),
    ("webhook", "webhooks are signed with a secret shown once when you create them"),
    ("seat", "add a seat to your plan from the team page; it is billed the same day"),
    ("region", "pick a data region when you create the workspace; it cannot change later"),
    ("latency", "pages are served from the nearest region, under fifty milliseconds"),
    ("audit", "the audit log keeps every sign-in and change for a year"),
]

QUESTIONS = [f"How do I handle a {topic} in my account?" for topic, _ in _TOPICS] + [
    "How long are backups kept?",
    "Can I change the data region?",
]


def write_site(root: Path, pages: int) -> list[str]:
    """Write ``pages`` help pages and an index linking them; returns the pages' file names."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for number in range(pages):
        topic, fact = _TOPICS[number % len(_TOPICS)]
        paragraphs = "".join(
            f"<p>Part {part} of the {topic} guide, page {number}: you can {fact}. "
            f"If the {topic} steps fail, contact support with the page number {number} "
            f"and the time it happened; {topic} questions are answered within a day.</p>"
            for part in range(3)
        )
        name = f"{topic}-{number}.html"
        (root / name).write_text(
            f"<html><head><title>{topic.title()} guide {number}</title></head><body><main>"
            f"<h1>{topic.title()} guide {number}</h1>{paragraphs}</main></body></html>",
            encoding="utf-8",
        )
        names.append(name)
    links = "".join(f'<li><a href="{name}">{name}</a></li>' for name in names)
    (root / "index.html").write_text(
        f"<html><head><title>Help centre</title></head><body><main><h1>Help centre</h1>"
        f"<p>Guides for every part of the product.</p><ul>{links}</ul></main></body></html>",
        encoding="utf-8",
    )
    return names


@contextmanager
def serve_site(root: Path, pages: int) -> Iterator[StaticSite]:
    """The help site (``pages`` pages and an index) on a loopback port."""
    write_site(root, pages)
    with StaticSite(root) as site:
        yield site


@dataclass(frozen=True)
class Keys:
    """An assistant's widget (public) and server (secret) keys."""

    public: str
    secret: str


@dataclass
class Setup:
    """What :func:`prepare` made: the site, the assistants' keys and the clean run's chunks."""

    site: StaticSite
    pages: int
    keys: dict[str, Keys]
    baseline: Counter[tuple[str, str]]


def _create_assistant(topology: Topology, name: str, answering: dict[str, Any]) -> Keys:
    config = {
        "allowed_origins": [ORIGIN],
        "answering": answering,
        # Every turn is answered, so the provider is asked on each.
        "retrieval": {"no_answer_threshold": -1.0, "decline_unknown_names": False},
        "limits": {"requests_per_minute": 100_000, "visitor_requests_per_minute": 10_000},
    }
    with topology.admin_client() as admin:
        admin.post("/api/assistants", json={"name": name, "config": config}).raise_for_status()
        keys = {}
        for kind in ("public", "secret"):
            created = admin.post(f"/api/assistants/{name}/keys", json={"kind": kind})
            created.raise_for_status()
            keys[kind] = str(created.json()["key"])
    return Keys(public=keys["public"], secret=keys["secret"])


def start_ingest(topology: Topology, kb: str, site: StaticSite, pages: int) -> str:
    """Start a crawl of ``site`` into ``kb`` through the next replica; returns the job id."""
    body = {"url": f"{site.url}index.html", "kind": "crawl", "max_pages": pages + 1}
    with topology.admin_client() as admin:
        created = admin.post(f"/api/assistants/{kb}/sources", json=body)
    created.raise_for_status()
    return str(created.json()["id"])


def job_state(topology: Topology, kb: str, job_id: str) -> dict[str, Any] | None:
    """The job as the API shows it, or None while no replica can answer."""
    try:
        with topology.admin_client(timeout=10) as admin:
            response = admin.get(f"/api/assistants/{kb}/jobs/{job_id}")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    state: dict[str, Any] = response.json()
    return state


def wait_for_job(
    topology: Topology, kb: str, job_id: str, timeout: float = 240.0, progress: int | None = None
) -> dict[str, Any]:
    """Poll the job until it has finished (or, with ``progress``, handled that many
    documents); returns its state. Raises ``TimeoutError`` with the workers' logs."""
    deadline = time.monotonic() + timeout
    while True:
        state = job_state(topology, kb, job_id)
        if state is not None:
            if progress is not None and state["progress_done"] >= progress:
                return state
            if state["status"] in ("succeeded", "failed", "cancelled"):
                return state
        if time.monotonic() > deadline:
            logs = "\n".join(topology.log(name) for name in topology.worker_names)
            raise TimeoutError(f"job {job_id} is {state}; workers:\n{logs}")
        time.sleep(0.25)


def chunks_of(topology: Topology, kb: str) -> Counter[tuple[str, str]]:
    """Every chunk of ``kb`` in the Chroma server as (page URL, text), counted."""
    port = int(topology.chroma_url.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    try:
        collection = client.get_collection(f"kb_{kb}")
    except Exception:  # no collection: nothing was stored
        return Counter()
    stored = collection.get(include=["documents", "metadatas"])
    return Counter(
        (str((meta or {}).get("url", "")), str(text))
        for meta, text in zip(stored["metadatas"] or [], stored["documents"] or [], strict=True)
    )


def chunk_difference(
    baseline: Counter[tuple[str, str]], stored: Counter[tuple[str, str]]
) -> tuple[int, int]:
    """How many of the clean run's chunks are missing from ``stored``, and how many stored
    chunks are extra (duplicated or unexpected)."""
    return sum((baseline - stored).values()), sum((stored - baseline).values())


_ANSWERING = {
    SITE_KB: {"provider": "extractive"},
    LLM_KB: {"provider": "openai", "model": "gpt-4o-mini"},
}


def prepare(
    topology: Topology, site: StaticSite, pages: int, assistants: Sequence[str] = (SITE_KB, LLM_KB)
) -> Setup:
    """Create ``assistants`` (``site`` at least) and ingest the site into each at once;
    ``site``'s chunks are the clean run."""
    if SITE_KB not in assistants:
        raise ValueError(f"the clean run is {SITE_KB!r}'s ingest")
    setup = Setup(site=site, pages=pages, keys={}, baseline=Counter())
    add_assistants(topology, setup, assistants)
    setup.baseline = chunks_of(topology, SITE_KB)
    if not setup.baseline:
        raise RuntimeError("the clean ingest stored no chunk")
    return setup


def add_assistants(topology: Topology, setup: Setup, assistants: Sequence[str]) -> None:
    """Create ``assistants`` (``site`` or ``llm``), ingest the site into them, and wait."""
    for kb in assistants:
        setup.keys[kb] = _create_assistant(topology, kb, _ANSWERING[kb])
    jobs = {kb: start_ingest(topology, kb, setup.site, setup.pages) for kb in assistants}
    for kb, job_id in jobs.items():
        state = wait_for_job(topology, kb, job_id)
        if state["status"] != "succeeded":
            raise RuntimeError(f"the clean ingest into {kb} did not succeed: {state}")


@dataclass
class ChatResult:
    """One turn as its client saw it."""

    outcome: Outcome
    detail: str = ""
    api: str = ""
    public: bool = False
    text: str = ""
    conversation_id: str | None = None
    turn_id: int | None = None
    retried: int = 0
    seconds: float = 0.0
    started: float = 0.0
    """When the turn was sent (``time.monotonic()``)."""


@dataclass
class Visitor:
    """One client's identity: its key, and for a widget the visitor token the server issued."""

    key: str
    public: bool
    token: str | None = None
    conversation_id: str | None = None
    turns: int = 0


async def stream_chat(
    client: httpx.AsyncClient, url: str, kb: str, visitor: Visitor, question: str
) -> ChatResult:
    """One streamed turn at replica ``url`` as ``visitor``, classified (see the module)."""
    headers = {"Authorization": f"Bearer {visitor.key}"}
    if visitor.public:
        headers["Origin"] = ORIGIN
        if visitor.token:
            headers["X-Visitor-Token"] = visitor.token
    body: dict[str, Any] = {"message": question, "stream": True}
    if visitor.conversation_id:
        body["conversation_id"] = visitor.conversation_id
    result = ChatResult(outcome="corrupt", api=url, public=visitor.public)
    received = False
    try:
        async with client.stream(
            "POST", f"{url}/api/assistants/{kb}/chat", json=body, headers=headers
        ) as response:
            received = True
            if response.headers.get("x-visitor-token"):
                visitor.token = response.headers["x-visitor-token"]
            if response.status_code != 200:
                raw = await response.aread()
                try:
                    problem = json.loads(raw)
                except ValueError:
                    return _with(result, "corrupt", f"HTTP {response.status_code}, not JSON")
                code = problem.get("code", "") if isinstance(problem, dict) else ""
                return _with(result, "clean_error", f"HTTP {response.status_code} {code}")
            return await _read_events(response, result)
    except httpx.TimeoutException:
        return _with(result, "hung", "no answer within the client's timeout")
    except httpx.ConnectError as exc:
        return _with(result, "connection_error", f"connect: {type(exc).__name__}")
    except httpx.TransportError as exc:
        where = "mid-stream" if received else "before the response"
        return _with(result, "connection_error", f"{where}: {type(exc).__name__}")


async def _read_events(response: httpx.Response, result: ChatResult) -> ChatResult:
    event, texts = "", []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            try:
                data = json.loads(line.removeprefix("data:"))
            except ValueError:
                return _with(result, "corrupt", f"{event} event data is not JSON")
            if event == "sources":
                result.conversation_id = data.get("conversation_id")
            elif event == "text":
                texts.append(str(data.get("text", "")))
            elif event == "error":
                result.text = "".join(texts)
                return _with(result, "clean_error", f"error event: {data.get('code', '')}")
            elif event == "done":
                result.text = "".join(texts)
                result.conversation_id = data.get("conversation_id") or result.conversation_id
                turn_id = data.get("turn_id")
                result.turn_id = int(turn_id) if isinstance(turn_id, int) else None
                return _with(result, "ok", str(data.get("provider", "")))
    return _with(result, "corrupt", "the stream ended without a done or error event")


def _with(result: ChatResult, outcome: Outcome, detail: str) -> ChatResult:
    result.outcome, result.detail = outcome, detail
    return result


@dataclass
class LoadRun:
    """What :func:`chat_load` collects; ``stop`` ends it after each client's current turn."""

    results: list[ChatResult] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def chat_load(
    topology: Topology,
    keys: Keys,
    kb: str,
    clients: int,
    run: LoadRun,
    *,
    timeout: float = 60.0,
    turns_per_conversation: int = 3,
) -> None:
    """``clients`` clients chatting with ``kb`` until ``run.stop`` is set, each turn on the
    next replica; even-numbered clients are widgets (public key), odd ones servers.

    A refused connection (a replica that is down) is retried once on the next replica, as a
    load balancer would; a turn cut after its request reached a replica is not retried.
    Each client continues its conversation for ``turns_per_conversation`` turns, then starts
    another; after a failed turn it starts another at once.
    """
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def one_client(number: int) -> None:
            public = number % 2 == 0
            visitor = Visitor(key=keys.public if public else keys.secret, public=public)
            turn = 0
            while not run.stop.is_set():
                question = QUESTIONS[(number + turn) % len(QUESTIONS)]
                turn += 1
                started = time.perf_counter()
                try:
                    result = await asyncio.wait_for(
                        _turn_with_retry(client, topology, kb, visitor, question), timeout + 5
                    )
                except TimeoutError:
                    result = ChatResult(outcome="hung", detail="no end within the timeout")
                result.seconds = time.perf_counter() - started
                result.started = time.monotonic() - result.seconds
                run.results.append(result)
                visitor.turns += 1
                if result.outcome != "ok" or visitor.turns >= turns_per_conversation:
                    visitor.conversation_id, visitor.turns = None, 0
                else:
                    visitor.conversation_id = result.conversation_id

        await asyncio.gather(*(one_client(number) for number in range(clients)))


async def _turn_with_retry(
    client: httpx.AsyncClient, topology: Topology, kb: str, visitor: Visitor, question: str
) -> ChatResult:
    result = await stream_chat(client, topology.next_api(), kb, visitor, question)
    if result.outcome == "connection_error" and result.detail.startswith("connect"):
        retried = await stream_chat(client, topology.next_api(), kb, visitor, question)
        retried.retried = 1
        return retried
    return result


def turn_problems(topology: Topology, results: list[ChatResult]) -> list[str]:
    """Half-written or garbled turns in the database: an answered turn without an answer,
    two turns at one position of a conversation, and a turn a server client was streamed
    whose stored answer differs from what it received (or that was never stored)."""
    engine = sqlalchemy.create_engine(topology.database_url, pool_pre_ping=True)
    problems: list[str] = []
    try:
        with engine.connect() as connection:
            empty = connection.execute(
                sqlalchemy.text(
                    "SELECT id FROM turns WHERE outcome = 'answered' AND answer = '' LIMIT 20"
                )
            ).all()
            problems += [f"turn {row[0]} is answered with an empty answer" for row in empty]
            doubled = connection.execute(
                sqlalchemy.text(
                    "SELECT conversation_id, position FROM turns "
                    "GROUP BY conversation_id, position HAVING count(*) > 1 LIMIT 20"
                )
            ).all()
            problems += [f"conversation {row[0]} has two turns at {row[1]}" for row in doubled]
            streamed = {r.turn_id: r.text for r in results if r.outcome == "ok" and r.turn_id}
            if streamed:
                stored = dict(
                    connection.execute(
                        sqlalchemy.text("SELECT id, answer FROM turns WHERE id = ANY(:ids)"),
                        {"ids": list(streamed)},
                    ).all()
                )
                for turn_id, text in streamed.items():
                    if turn_id not in stored:
                        problems.append(f"turn {turn_id} was streamed but never stored")
                    elif stored[turn_id].strip() != text.strip():
                        problems.append(f"turn {turn_id} is stored with another answer")
    finally:
        engine.dispose()
    return problems
