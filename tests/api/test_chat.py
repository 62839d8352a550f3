"""Chat over HTTP against a real server: the event stream, JSON answers, follow-ups, errors
before the first event, feedback, gaps, search, and a client that goes away mid-answer.

The help centre in ``examples/`` is ingested once per module; answers come from the extractive
answerer, except where a test points an assistant at a local server speaking OpenAI's protocol.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from assistant.api.sse import encode_stream, first_event, sse_response
from assistant.chat.events import DoneEvent, SourcesEvent, StreamEvent, TextDelta, Usage
from tests.api.conftest import ApiServer, serving
from tests.chat.fake_openai import Drop, FakeOpenAIServer, Trickle

pytestmark = pytest.mark.integration

SLACK_QUESTION = "Which plans include the Slack integration?"


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name and its JSON data."""

    name: str
    data: dict[str, Any]


def read_events(lines: Iterable[str]) -> Iterator[Event]:
    """Events from the lines of an event stream, as ``EventSource`` reads them; comments
    (heartbeats) are skipped."""
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
    if data:
        yield Event(name, json.loads("\n".join(data)))


@dataclass(frozen=True)
class Chat:
    """The module's server and a secret key per assistant: ``harbor`` (the help centre),
    ``other`` (declines everything: its turns are content gaps), ``llm`` (answers through a
    local server speaking OpenAI's protocol where a test sets it up)."""

    server: ApiServer
    keys: dict[str, str]

    def auth(self, name: str) -> dict[str, str]:
        """The ``Authorization`` header with ``name``'s key (or the admin key, or ``name``
        itself when it is no assistant's)."""
        key = self.server.admin_key if name == "admin" else self.keys.get(name, name)
        return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def chat(api_server: ApiServer, harbor: str, tmp_path_factory: pytest.TempPathFactory) -> Chat:
    """``harbor`` with ``other`` and ``llm`` beside it (a refunds note each), keys for all."""
    notes = tmp_path_factory.mktemp("notes") / "refunds.md"
    notes.write_text(
        "# Refunds\n\nAnnual plans are refunded in full within 14 days of payment.\n",
        encoding="utf-8",
    )
    api_server.create_assistant("other", retrieval={"no_answer_threshold": 1.0})
    api_server.create_assistant("llm")
    for name in ("other", "llm"):
        api_server.core.ingest([str(notes)], kb=name)
    names = (harbor, "other", "llm")
    return Chat(api_server, {name: api_server.create_key(name) for name in names})


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A local server speaking OpenAI's protocol, for the ``llm`` assistant."""
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def client(api_server: ApiServer) -> Iterator[httpx.Client]:
    """A client of the module's server; each request names its key."""
    with api_server.client() as http:
        yield http


def _stream(client: httpx.Client, chat: Chat, name: str, body: dict[str, object]) -> list[Event]:
    path = f"/api/assistants/{name}/chat"
    with client.stream("POST", path, json=body, headers=chat.auth(name)) as reply:
        assert reply.status_code == 200, reply.read()
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert reply.headers["x-accel-buffering"] == "no"
        assert reply.headers["cache-control"] == "no-cache"
        return list(read_events(reply.iter_lines()))


def _ask(client: httpx.Client, chat: Chat, name: str, body: dict[str, object]) -> dict[str, Any]:
    reply = client.post(
        f"/api/assistants/{name}/chat", json={**body, "stream": False}, headers=chat.auth(name)
    )
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def test_a_streamed_answer_sends_sources_text_citations_then_done(
    chat: Chat, client: httpx.Client
) -> None:
    events = _stream(client, chat, "harbor", {"message": SLACK_QUESTION})
    names = [event.name for event in events]
    assert names[0] == "sources" and names[-2:] == ["citations", "done"]
    assert set(names[1:-2]) == {"text"}
    assert all(event.data["type"] == event.name for event in events)
    sources, citations, done = events[0].data, events[-2].data, events[-1].data
    given = {source["n"]: source["url"] for source in sources["sources"]}
    assert given and sources["question"] == SLACK_QUESTION
    assert citations["citations"], "the extractive answer cites its passages"
    assert all(given[c["n"]] == c["url"] for c in citations["citations"])
    assert "".join(event.data["text"] for event in events if event.name == "text").strip()
    assert done["conversation_id"] == sources["conversation_id"] is not None
    assert isinstance(done["turn_id"], int)
    assert set(done["usage"]) == {"input_tokens", "output_tokens"}
    assert done["provider"] == "extractive" and done["timings_ms"]["total"] > 0
    assert done["cache_hits"] + done["cache_misses"] > 0


def test_turns_feed_the_metrics(chat: Chat, client: httpx.Client) -> None:
    def turns() -> float:
        scraped = client.get("/metrics", headers=chat.auth("admin")).text
        line = 'assistant_chat_turns_total{assistant="harbor",outcome="answered",provider="extractive"}'
        found = [row for row in scraped.splitlines() if row.startswith(line)]
        return float(found[0].rsplit(" ", 1)[1]) if found else 0.0

    before = turns()
    _stream(client, chat, "harbor", {"message": SLACK_QUESTION})
    _ask(client, chat, "harbor", {"message": SLACK_QUESTION})
    assert turns() == before + 2
    scraped = client.get("/metrics", headers=chat.auth("admin")).text
    assert 'assistant_chat_stage_duration_seconds_count{stage="maxsim"}' in scraped


def test_json_mode_drains_the_same_stream(chat: Chat, client: httpx.Client) -> None:
    reply = client.post(
        "/api/assistants/harbor/chat",
        json={"message": SLACK_QUESTION, "stream": False},
        headers=chat.auth("harbor"),
    )
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    answer = reply.json()
    assert answer["question"] == answer["standalone_question"] == SLACK_QUESTION
    assert answer["outcome"] == "answered" and answer["error"] is None
    assert answer["answer"] and answer["citations"] and answer["sources"]
    assert {c["n"] for c in answer["citations"]} <= {s["n"] for s in answer["sources"]}
    stored = chat.server.core.conversation(answer["conversation_id"], kb="harbor")
    assert [turn.id for turn in stored.turns] == [answer["turn_id"]]
    assert stored.turns[0].answer == answer["answer"]


def test_a_follow_up_is_condensed_with_the_conversation(chat: Chat, client: httpx.Client) -> None:
    first = _ask(client, chat, "harbor", {"message": SLACK_QUESTION})
    follow_up = "and how much does it cost?"
    events = _stream(
        client, chat, "harbor", {"message": follow_up, "conversation_id": first["conversation_id"]}
    )
    standalone = events[0].data["question"]
    assert standalone != follow_up and "slack" in standalone.lower()
    assert events[-1].data["conversation_id"] == first["conversation_id"]
    turns = chat.server.core.conversation(first["conversation_id"], kb="harbor").turns
    assert [(t.question, t.standalone_question) for t in turns] == [
        (SLACK_QUESTION, SLACK_QUESTION),
        (follow_up, standalone),
    ]


@pytest.mark.parametrize(
    ("name", "body", "key", "status", "code"),
    [
        ("nowhere", {"message": "hello"}, "admin", 404, "not_found"),
        ("harbor", {"message": "hi", "conversation_id": "0" * 32}, "harbor", 404, "not_found"),
        ("harbor", {"message": "   "}, "harbor", 400, "invalid_input"),
        ("harbor", {"message": ""}, "harbor", 422, "invalid_input"),
        ("harbor", {"message": "x" * 5000}, "harbor", 400, "invalid_input"),
        ("harbor", {"message": "hello"}, "sk_unknown", 401, "authentication_failed"),
        ("harbor", {"message": "hello"}, "other", 403, "permission_denied"),
    ],
)
def test_errors_before_the_first_event_are_problem_responses(
    chat: Chat,
    client: httpx.Client,
    name: str,
    body: dict[str, object],
    key: str,
    status: int,
    code: str,
) -> None:
    reply = client.post(f"/api/assistants/{name}/chat", json=body, headers=chat.auth(key))
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["code"] == code


def test_feedback_is_recorded_on_the_assistants_own_turns(chat: Chat, client: httpx.Client) -> None:
    answer = _ask(client, chat, "harbor", {"message": SLACK_QUESTION})
    path = f"/api/assistants/harbor/turns/{answer['turn_id']}/feedback"
    headers = chat.auth("harbor")
    reply = client.post(path, json={"rating": -1, "comment": "too short"}, headers=headers)
    assert reply.status_code == 204 and reply.content == b""
    assert client.post(path, json={"rating": 5}, headers=headers).status_code == 422
    # Another assistant's turn is not found through this one, even by the admin.
    other = f"/api/assistants/other/turns/{answer['turn_id']}/feedback"
    assert client.post(other, json={"rating": 1}, headers=chat.auth("admin")).status_code == 404
    missing = "/api/assistants/harbor/turns/999999/feedback"
    assert client.post(missing, json={"rating": 1}, headers=headers).status_code == 404


def test_declined_questions_are_listed_as_content_gaps(chat: Chat, client: httpx.Client) -> None:
    question = "Do you ship to Antarctica?"
    answer = _ask(client, chat, "other", {"message": question})
    assert answer["outcome"] == "no_answer" and answer["sources"] == []
    gaps = client.get("/api/assistants/other/gaps", headers=chat.auth("other"))
    assert gaps.status_code == 200
    assert (question, answer["turn_id"]) in [
        (gap["question"], gap["turn_id"]) for gap in gaps.json()["gaps"]
    ]
    forbidden = client.get("/api/assistants/other/gaps", headers=chat.auth("harbor"))
    assert forbidden.status_code == 403


def test_search_ranks_passages_like_the_cli(chat: Chat, client: httpx.Client) -> None:
    reply = client.post(
        "/api/assistants/harbor/search",
        json={"query": "HBR-1204 attachment too large", "k": 3},
        headers=chat.auth("harbor"),
    )
    assert reply.status_code == 200
    result = reply.json()
    assert result["query"] == "HBR-1204 attachment too large"
    assert [hit["rank"] for hit in result["results"]] == [1, 2, 3]
    assert result["results"][0]["url"].endswith("troubleshooting.html")
    assert {"dense_rank", "late_interaction_score", "headings"} <= set(result["results"][0])
    assert result["trace"]["candidates"] >= 3
    missing = client.post(
        "/api/assistants/nowhere/search", json={"query": "x"}, headers=chat.auth("admin")
    )
    assert missing.status_code == 404


def _use_fake_openai(
    chat: Chat, fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    # The server's settings were read at start-up, so the key goes into them, as a .env would.
    del monkeypatch
    core = chat.server.core
    core.settings = core.settings.model_copy(
        update={"openai_api_key": SecretStr("sk-test"), "openai_base_url": fake.url}
    )
    core.configure("llm", answering={"provider": "openai", "model": model})


def test_a_provider_failing_mid_answer_ends_the_stream_with_an_error_event(
    chat: Chat,
    client: httpx.Client,
    fake_openai: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use_fake_openai(chat, fake_openai, monkeypatch, "gpt-drop")
    fake_openai.script(Drop(("Refunds take ",)))
    events = _stream(client, chat, "llm", {"message": "How do refunds work?"})
    assert [event.name for event in events] == ["sources", "text", "error"]
    assert events[1].data["text"] == "Refunds take "
    assert events[-1].data["code"] == "ProviderUnavailableError"


def test_a_client_going_away_closes_the_providers_stream(
    chat: Chat,
    client: httpx.Client,
    fake_openai: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use_fake_openai(chat, fake_openai, monkeypatch, "gpt-slow")
    fake_openai.disconnected.clear()
    fake_openai.script(Trickle(interval_seconds=0.05))
    body = {"message": "How do refunds work?"}
    headers = chat.auth("llm")
    with client.stream("POST", "/api/assistants/llm/chat", json=body, headers=headers) as reply:
        texts = 0
        for event in read_events(reply.iter_lines()):
            texts += event.name == "text"
            if texts == 3:
                break
    assert texts == 3
    assert fake_openai.disconnected.wait(timeout=10), "the provider's stream was left open"
    assert fake_openai.requests[-1].body["model"] == "gpt-slow"


def test_heartbeats_keep_a_quiet_stream_alive() -> None:
    closed = threading.Event()

    async def slow_answer() -> AsyncIterator[StreamEvent]:
        try:
            yield SourcesEvent(())
            await asyncio.sleep(0.5)
            yield TextDelta("late")
            yield DoneEvent(Usage(), "extractive")
        finally:
            closed.set()

    app = FastAPI()

    @app.get("/stream")
    async def stream() -> object:
        events = slow_answer()
        first = await first_event(events)
        return sse_response(encode_stream(first, events), heartbeat_seconds=0.1)

    with serving(app) as url, httpx.stream("GET", f"{url}/stream") as reply:
        lines = list(reply.iter_lines())
    heartbeats = [index for index, line in enumerate(lines) if line == ": heartbeat"]
    assert len(heartbeats) >= 2 and heartbeats[0] < lines.index("event: text")
    assert [event.name for event in read_events(lines)] == ["sources", "text", "done"]
    deadline = time.monotonic() + 5
    while not closed.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert closed.is_set()


def test_the_event_stream_is_documented(api_client: httpx.Client) -> None:
    schema = api_client.get("/openapi.json").json()
    route = schema["paths"]["/api/assistants/{name}/chat"]["post"]
    assert "text/event-stream" in route["responses"]["200"]["content"]
    problem = route["responses"]["404"]["content"]["application/problem+json"]
    assert problem == {"schema": {"$ref": "#/components/schemas/Problem"}}
    assert "detail" in schema["components"]["schemas"]["Problem"]["properties"]
