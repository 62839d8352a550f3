"""The client against a real API server: each method gives what ``Assistant`` gives in-process,
errors arrive typed, ingestion goes through jobs, and failures are retried where safe.

The help centre in ``examples/`` is ingested into ``harbor`` once per module; answers come from
the extractive answerer. Retries, timeouts and broken streams use a scripted local server.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from assistant.chat.conversations import Conversation
from assistant.chat.events import (
    Answer,
    CitationsEvent,
    DoneEvent,
    ErrorEvent,
    SourcesEvent,
    StreamEvent,
    TextDelta,
)
from assistant.client import (
    ApiAuthenticationError,
    ApiConflictError,
    ApiConnectionError,
    ApiInvalidInputError,
    ApiNotFoundError,
    ApiPayloadTooLargeError,
    ApiPermissionDeniedError,
    ApiProviderError,
    ApiRateLimitedError,
    ApiServerError,
    ApiUnavailableError,
    ApiUnsupportedMediaTypeError,
    AsyncClient,
    Client,
    ClientError,
    IngestResult,
)
from assistant.client._errors import error_from_response
from assistant.client._ingest import MAX_FILES_PER_UPLOAD, plan_ingest
from assistant.errors import (
    AssistantError,
    AuthenticationError,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from assistant.knowledge.ingest import ProgressEvent
from tests.api.conftest import HELP_CENTRE_PAGES, ApiServer, unique_name
from tests.sdk.conftest import Remote, Reply, ScriptedServer
from tests.support.servers import StaticSite

pytestmark = pytest.mark.integration

SLACK_QUESTION = "Which plans include the Slack integration?"
REFUND_QUESTION = "Can I get my money back if I cancel an annual plan?"


@pytest.fixture
def client(remote: Remote) -> Iterator[Client]:
    """A client with ``harbor``'s secret key."""
    with Client(remote.url, remote.secret_key, backoff=0.01) as bot:
        yield bot


@pytest.fixture
def admin(remote: Remote) -> Iterator[Client]:
    """A client with the admin key."""
    with Client(remote.url, remote.admin_key, backoff=0.01) as bot:
        yield bot


def _without_chunk_ids(conversation: Conversation) -> Conversation:
    """``conversation`` with its sources' merged chunk ids dropped (the API sends ``chunk_id``
    only)."""
    turns = tuple(
        dataclasses.replace(
            turn,
            sources=tuple(dataclasses.replace(s, chunk_ids=()) for s in turn.sources),
        )
        for turn in conversation.turns
    )
    return dataclasses.replace(conversation, turns=turns)


def _drained(events: list[StreamEvent]) -> tuple[str, SourcesEvent, DoneEvent]:
    """The answer text, first and last event of a stream that must be well formed."""
    first, last = events[0], events[-1]
    assert isinstance(first, SourcesEvent) and isinstance(last, DoneEvent)
    assert [type(event) for event in events[1:-1]] == [TextDelta] * (len(events) - 3) + [
        CitationsEvent
    ]
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    return text.strip(), first, last


def test_search_returns_the_in_process_ranking(client: Client, remote: Remote) -> None:
    query = "HBR-1204 attachment too large"
    remote_result = client.search(query, kb="harbor", k=3)
    local_result = remote.server.core.search(query, kb="harbor", k=3)
    assert remote_result.query == query
    assert [hit.rank for hit in remote_result.hits] == [1, 2, 3]
    assert remote_result.hits[0].url.endswith("troubleshooting.html")
    # Every field the API carries comes back as the core's own SearchHit.
    assert remote_result.hits == [
        dataclasses.replace(hit, position=-1) for hit in local_result.hits
    ]
    assert remote_result.trace.candidates == local_result.trace.candidates


def test_ask_gives_the_in_process_answer(client: Client, remote: Remote) -> None:
    remote_answer = client.ask(REFUND_QUESTION, kb="harbor")
    local_answer = remote.server.core.ask(REFUND_QUESTION, kb="harbor")
    assert isinstance(remote_answer, Answer)
    assert remote_answer.answer == local_answer.answer and "14 days" in remote_answer.answer
    assert remote_answer.citations == local_answer.citations != ()
    assert remote_answer.sources == tuple(
        dataclasses.replace(source, chunk_ids=()) for source in local_answer.sources
    )
    assert (remote_answer.provider, remote_answer.outcome) == ("extractive", "answered")
    # Nothing was stored, as in process: a one-off question has no turn.
    assert remote_answer.turn_id is None and remote_answer.conversation_id is None
    assert remote_answer.retrieval is None


def test_stream_then_follow_up_in_the_same_conversation(client: Client, remote: Remote) -> None:
    text, sources, done = _drained(list(client.stream(SLACK_QUESTION, kb="harbor")))
    conversation_id = sources.conversation_id
    assert conversation_id is not None and done.conversation_id == conversation_id
    follow_up = client.chat(
        "and how much does it cost?", kb="harbor", conversation_id=conversation_id
    )
    assert follow_up.conversation_id == conversation_id
    assert "slack" in follow_up.standalone_question.lower()

    stored = client.conversation(conversation_id, kb="harbor")
    assert [turn.id for turn in stored.turns] == [done.turn_id, follow_up.turn_id]
    assert stored.turns[0].answer == text and stored.turns[1].answer == follow_up.answer
    assert stored == _without_chunk_ids(
        remote.server.core.conversation(conversation_id, kb="harbor")
    )
    listed = client.conversations(kb="harbor", limit=200)
    assert conversation_id in [summary.id for summary in listed]
    assert listed == remote.server.core.conversations(kb="harbor", limit=200)


def test_feedback_then_delete_the_conversation(client: Client) -> None:
    answer = client.chat(REFUND_QUESTION, kb="harbor")
    assert answer.turn_id is not None and answer.conversation_id is not None
    client.feedback(answer.turn_id, 1, "clear", kb="harbor")
    with pytest.raises(ApiInvalidInputError):
        client.feedback(answer.turn_id, 5, kb="harbor")
    client.delete_conversation(answer.conversation_id, kb="harbor")
    with pytest.raises(NotFoundError):
        client.conversation(answer.conversation_id, kb="harbor")


def test_content_gaps_are_the_stored_declined_turns(remote: Remote, admin: Client) -> None:
    name = remote.server.create_assistant(retrieval={"no_answer_threshold": 1.0})
    remote.server.core.ingest([str(HELP_CENTRE_PAGES[0])], kb=name)
    answer = admin.chat("Do you ship to Antarctica?", kb=name)
    assert answer.outcome == "no_answer"
    gaps = admin.content_gaps(kb=name)
    assert [turn.id for turn in gaps] == [answer.turn_id]
    assert gaps == remote.server.core.content_gaps(kb=name)


def test_config_is_read_with_a_secret_key_and_changed_with_the_admin_key(
    remote: Remote, admin: Client
) -> None:
    name = remote.server.create_assistant()
    changed = admin.configure(
        name, brand={"tone": "Warm, brief."}, limits={"requests_per_minute": 30}
    )
    assert changed == remote.server.core.config(name)
    assert changed.brand.tone == "Warm, brief." and changed.limits.requests_per_minute == 30
    with Client(remote.url, remote.server.create_key(name), backoff=0.01) as own:
        assert own.config(name) == changed
        with pytest.raises(PermissionDeniedError):
            own.configure(name, brand={"tone": "Loud."})
    with pytest.raises(ApiInvalidInputError):
        admin.configure(name, brand={"colour_scheme": "dark"})


def test_knowledge_bases_are_those_the_key_may_use(client: Client, admin: Client) -> None:
    assert client.knowledge_bases() == ["harbor"]
    assert "harbor" in admin.knowledge_bases()


def test_sources_are_the_in_process_summaries(client: Client, remote: Remote) -> None:
    assert client.sources(kb="harbor") == remote.server.core.sources(kb="harbor")
    assert len(client.sources(kb="harbor")) == len(HELP_CENTRE_PAGES)


def test_ingest_uploads_files_and_reports_like_in_process(
    remote: Remote, admin: Client, tmp_path: Path
) -> None:
    name = remote.server.create_assistant()
    folder = tmp_path / "docs"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(HELP_CENTRE_PAGES[1], folder / "billing.html")
    shutil.copy(HELP_CENTRE_PAGES[2], folder / "nested" / "security.html")
    (folder / ".draft.md").write_text("# Hidden\n\nNot ingested.\n")
    (folder / "empty.md").write_text("  \n")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    heard: list[ProgressEvent] = []

    report = admin.ingest(
        [str(folder), str(tmp_path / "missing.md"), "http://127.0.0.1:9/page.html"],
        kb=name,
        progress=heard.append,
    )
    assert isinstance(report, IngestResult) and not report.pending
    outcomes = {(Path(o.url).name, o.status, o.error_type) for o in report.outcomes}
    assert outcomes == {
        ("billing.html", "added", None),
        ("security.html", "added", None),
        ("empty.md", "failed", "ParseError"),
        ("logo.png", "failed", "UnsupportedContentError"),
        ("missing.md", "failed", "ConnectorError"),
        ("page.html", "failed", "ApiInvalidInputError"),
    }
    assert report.chunks_embedded == sum(o.chunks for o in report.outcomes) > 0
    assert sum(event.count for event in heard if event.kind == "loaded") == 2
    assert {event.detail for event in heard if event.kind == "embedded"} == {
        "upload://billing.html",
        "upload://security.html",
    }
    assert {s.source for s in admin.sources(kb=name)} == {
        "upload://billing.html",
        "upload://security.html",
    }
    assert admin.forget("upload://billing.html", kb=name) > 0
    with pytest.raises(NotFoundError):
        admin.forget("upload://billing.html", kb=name)
    with pytest.raises(ConfigError):
        admin.ingest([], kb=name)


def test_ingest_a_page_url_without_waiting_then_follow_its_job(
    make_api_server: Callable[..., ApiServer],
) -> None:
    server = make_api_server(fetch_allow_hosts=("127.0.0.1",))
    name = server.create_assistant()
    with (
        StaticSite(HELP_CENTRE_PAGES[0].parent) as site,
        Client(server.url, server.admin_key) as bot,
    ):
        page = site.url + "security.html"
        queued = bot.ingest([page], kb=name, wait=False)
        assert isinstance(queued, IngestResult) and queued.outcomes == []
        (job,) = queued.pending
        assert job.kind == "url" and job.sources == (page,)
        deadline = time.monotonic() + 60
        while not job.finished and time.monotonic() < deadline:
            time.sleep(0.1)
            job = bot.job(job.id, kb=name)
        assert job.status == "succeeded" and job.report is not None
        assert [(o.url, o.status) for o in job.report.outcomes] == [(page, "added")]
        again = bot.ingest([page], kb=name)
        assert [source.source for source in bot.sources(kb=name)] == [page]
    assert isinstance(again, IngestResult) and again.jobs[0].status == "succeeded"
    assert [(o.url, o.status) for o in again.outcomes] == [(page, "unchanged")]


def test_failures_raise_errors_of_the_core_kind(remote: Remote, client: Client) -> None:
    with Client(remote.url, "sk_not_a_key") as stranger, pytest.raises(AuthenticationError) as bad:
        stranger.search("refunds", kb="harbor")
    assert isinstance(bad.value, ApiAuthenticationError) and bad.value.status == 401
    assert isinstance(bad.value, ClientError) and isinstance(bad.value, AssistantError)
    with Client(remote.url, remote.admin_key) as admin, pytest.raises(ApiNotFoundError) as missing:
        admin.search("refunds", kb="nowhere")
    assert missing.value.code == "not_found" and "nowhere" in missing.value.detail
    other = remote.server.create_assistant(unique_name("other"))
    with pytest.raises(ApiPermissionDeniedError):
        client.sources(kb=other)
    with pytest.raises(ApiNotFoundError):
        next(client.stream("hello", kb="harbor", conversation_id="0" * 32))


async def test_the_async_client_gives_what_the_client_gives(remote: Remote, client: Client) -> None:
    async with AsyncClient(remote.url, remote.secret_key, backoff=0.01) as bot:
        found = await bot.search("refunds", kb="harbor", k=2)
        assert found.hits == client.search("refunds", kb="harbor", k=2).hits
        events = [event async for event in bot.stream(REFUND_QUESTION, kb="harbor")]
        text, sources, done = _drained(events)
        assert sources.conversation_id is not None
        answer = await bot.chat(
            "and monthly plans?", kb="harbor", conversation_id=sources.conversation_id
        )
        stored = await bot.conversation(sources.conversation_id, kb="harbor")
        assert stored == client.conversation(sources.conversation_id, kb="harbor")
        assert [turn.answer for turn in stored.turns] == [text, answer.answer]
        assert await bot.sources(kb="harbor") == client.sources(kb="harbor")
        assert await bot.knowledge_bases() == ["harbor"]
        assert done.turn_id is not None
        await bot.feedback(done.turn_id, -1, kb="harbor")
        with pytest.raises(ApiNotFoundError):
            await bot.conversation("0" * 32, kb="harbor")
        with pytest.raises(ApiNotFoundError):
            [event async for event in bot.stream("hi", kb="harbor", conversation_id="0" * 32)]
        assert not [event for event in events if isinstance(event, ErrorEvent)]


# Retries, timeouts and broken streams, against a scripted local server --------------------

SEARCH_BODY = {"query": "q", "results": [], "trace": {}}
UNAVAILABLE = Reply(503, {"code": "database_unavailable", "detail": "the database is down"})


def _sse(*events: Mapping[str, object]) -> tuple[bytes, ...]:
    return tuple(
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events
    )


SOURCES: dict[str, object] = {
    "sources": [],
    "question": "q",
    "conversation_id": "c1",
    "type": "sources",
}
TEXT: dict[str, object] = {"text": "Hello", "type": "text"}
DONE: dict[str, object] = {
    "usage": {"input_tokens": 0, "output_tokens": 0},
    "provider": "extractive",
    "type": "done",
}
EVENT_STREAM = {"Content-Type": "text/event-stream"}


def test_safe_requests_are_retried_until_they_succeed(scripted: ScriptedServer) -> None:
    scripted.script(UNAVAILABLE, Reply(504), Reply(body={"sources": []}))
    with Client(scripted.url, "sk_test", backoff=0.01) as bot:
        assert bot.sources(kb="docs") == []
    assert [(r.method, r.path) for r in scripted.received] == [
        ("GET", "/api/assistants/docs/sources")
    ] * 3
    assert scripted.received[0].headers["Authorization"] == "Bearer sk_test"


def test_retries_stop_after_max_retries(scripted: ScriptedServer) -> None:
    scripted.script(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE)
    bot = Client(scripted.url, "sk_test", max_retries=1, backoff=0.01)
    with bot, pytest.raises(ApiUnavailableError) as failure:
        bot.search("q", kb="docs")
    assert failure.value.detail == "the database is down" and len(scripted.received) == 2


def test_unsafe_requests_are_not_repeated_after_a_server_error(scripted: ScriptedServer) -> None:
    scripted.script(UNAVAILABLE, Reply(204))
    bot = Client(scripted.url, "sk_test", backoff=0.01)
    with bot, pytest.raises(ApiUnavailableError):
        bot.feedback(1, 1, kb="docs")
    assert len(scripted.received) == 1


def test_rate_limits_are_waited_out_unless_the_wait_is_too_long(scripted: ScriptedServer) -> None:
    scripted.script(Reply(429, {"code": "rate_limited"}, {"Retry-After": "0"}), Reply(204))
    with Client(scripted.url, "sk_test", backoff=0.01) as bot:
        bot.feedback(1, 1, kb="docs")  # refused before anything was done: safe to repeat
        assert len(scripted.received) == 2
        scripted.script(
            Reply(429, {"code": "rate_limited", "detail": "slow down"}, {"Retry-After": "120"})
        )
        with pytest.raises(RateLimitedError) as limited:
            bot.search("q", kb="docs")
    assert isinstance(limited.value, ApiRateLimitedError) and limited.value.retry_after == 120
    assert len(scripted.received) == 1


def test_timeouts_and_lost_connections(scripted: ScriptedServer) -> None:
    scripted.script(Reply(body=SEARCH_BODY, delay=1.0), Reply(body=SEARCH_BODY))
    with Client(scripted.url, None, timeout=0.3, backoff=0.01) as bot:
        assert bot.search("q", kb="docs").hits == []
        assert len(scripted.received) == 2 and "Authorization" not in scripted.received[0].headers
        scripted.script(Reply(drop=True), Reply(body={"removed_chunks": 3}))
        with pytest.raises(ApiConnectionError):
            bot.forget("https://example.com/", kb="docs")
        assert len(scripted.received) == 1
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    nowhere = Client(f"http://127.0.0.1:{port}", None, backoff=0.01)
    with nowhere, pytest.raises(ApiConnectionError):
        nowhere.knowledge_bases()


def test_streams_skip_comments_and_unknown_events_and_end_with_an_error_when_cut(
    scripted: ScriptedServer,
) -> None:
    heartbeat = (b": heartbeat\n\n", b"event: novelty\ndata: {}\n\n")
    scripted.script(
        UNAVAILABLE,  # before the first byte: tried again
        Reply(headers=EVENT_STREAM, chunks=heartbeat + _sse(SOURCES, TEXT, DONE)),
        Reply(headers=EVENT_STREAM, chunks=_sse(SOURCES, TEXT)),
        Reply(headers=EVENT_STREAM, chunks=_sse(SOURCES, TEXT), cut=True),
    )
    with Client(scripted.url, "sk_test", backoff=0.01) as bot:
        whole = list(bot.stream("q", kb="docs"))
        ended = list(bot.stream("q", kb="docs"))
        cut = list(bot.stream("q", kb="docs"))
    assert [type(event) for event in whole] == [SourcesEvent, TextDelta, DoneEvent]
    assert whole[0] == SourcesEvent((), "q", "c1")
    assert json.loads(scripted.received[0].body)["stream"] is True
    assert scripted.received[0].headers["Accept"] == "text/event-stream"
    for events, reason in ((ended, "ended before"), (cut, "RemoteProtocolError")):
        assert events[:2] == whole[:2]
        assert isinstance(events[2], ErrorEvent) and events[2].code == "ApiConnectionError"
        assert reason in events[2].message


async def test_the_async_client_retries_and_reads_streams(scripted: ScriptedServer) -> None:
    scripted.script(
        UNAVAILABLE,
        Reply(body=SEARCH_BODY),
        Reply(headers=EVENT_STREAM, chunks=_sse(SOURCES, TEXT, DONE)),
        Reply(429, {"code": "rate_limited"}, {"Retry-After": "999"}),
    )
    async with AsyncClient(scripted.url, "sk_test", backoff=0.01) as bot:
        assert (await bot.search("q", kb="docs")).query == "q"
        events = [event async for event in bot.stream("q", kb="docs")]
        assert [event.type for event in events] == ["sources", "text", "done"]
        with pytest.raises(ApiRateLimitedError):
            await bot.delete_conversation("c1", kb="docs")
    assert len(scripted.received) == 4


# Problems to errors, and sources to jobs -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"code": "invalid_input", "detail": "bad"}, ApiInvalidInputError),
        (422, {"code": "invalid_input", "detail": "bad"}, ApiInvalidInputError),
        (401, {"code": "authentication_failed", "detail": "no key"}, ApiAuthenticationError),
        (403, {"code": "permission_denied", "detail": "no"}, ApiPermissionDeniedError),
        (404, {"code": "not_found", "detail": "none"}, ApiNotFoundError),
        (409, {"code": "conflict", "detail": "exists"}, ApiConflictError),
        (413, {"code": "payload_too_large", "detail": "big"}, ApiPayloadTooLargeError),
        (415, {"code": "unsupported_media_type", "detail": "png"}, ApiUnsupportedMediaTypeError),
        (502, {"code": "provider_error", "detail": "down"}, ApiProviderError),
        (503, {"code": "store_unavailable", "detail": "down"}, ApiUnavailableError),
        (500, {"code": "internal_error", "detail": "see log"}, ApiServerError),
        (404, {"error": {"message": "no model", "code": "model_not_found"}}, ApiNotFoundError),
        (502, b"<html>Bad gateway</html>", ApiProviderError),
        (599, b"", ApiServerError),
        (418, b"", ClientError),
    ],
)
def test_problems_become_typed_errors(status: int, body: object, expected: type) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    error = error_from_response(status, {}, content)
    assert type(error) is expected and error.status == status
    assert error.detail and str(error).startswith(error.detail)


def test_error_kinds_share_the_core_roots() -> None:
    assert issubclass(ApiNotFoundError, NotFoundError) and issubclass(ClientError, AssistantError)
    assert issubclass(ApiRateLimitedError, RateLimitedError)
    assert issubclass(ApiPermissionDeniedError, PermissionDeniedError)


def test_web_sources_become_jobs_of_the_right_kind(tmp_path: Path) -> None:
    for index in range(MAX_FILES_PER_UPLOAD + 1):
        (tmp_path / f"note-{index:03}.md").write_text(f"# Note {index}\n\nText {index}.\n")
    plan = plan_ingest(
        ["https://example.com/sitemap.xml", "https://example.com/docs/", str(tmp_path)],
        crawl=True,
        max_pages=5,
        max_depth=2,
    )
    assert plan.web_sources == [
        {"kind": "sitemap", "url": "https://example.com/sitemap.xml", "max_pages": 5},
        {"kind": "crawl", "url": "https://example.com/docs/", "max_pages": 5, "max_depth": 2},
    ]
    assert [len(batch) for batch in plan.uploads] == [MAX_FILES_PER_UPLOAD, 1]
    assert plan.unreadable == []
    single = plan_ingest(["https://example.com/a"], crawl=False, max_pages=None, max_depth=3)
    assert single.web_sources == [{"kind": "url", "url": "https://example.com/a"}]
