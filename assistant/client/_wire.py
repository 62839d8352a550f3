"""What goes over the wire: the requests of each method and the core types read back from JSON.

Both clients describe a request as a ``Call`` and turn the JSON answer into the same
dataclasses and models that ``Assistant`` returns, with the functions here; only sending
differs between them. Fields the HTTP API does not carry keep their defaults (see each
decoder). ``SSEDecoder`` reads a ``text/event-stream`` answer back into stream events.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, cast
from urllib.parse import quote

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from assistant.chat.events import Answer, Citation, ErrorEvent, Source, StreamEvent, Usage
from assistant.chat.records import Conversation, ConversationSummary, TurnRecord
from assistant.client._errors import ApiServerError
from assistant.config import AssistantConfig
from assistant.knowledge.reports import SourceSummary
from assistant.knowledge.results import SearchHit, SearchResult, SearchTrace

__all__ = [
    "STREAM_EVENT_TYPES",
    "Call",
    "SSEDecoder",
    "assistant_path",
    "decode_answer",
    "decode_config",
    "decode_conversation",
    "decode_conversations",
    "decode_gap_turns",
    "decode_models",
    "decode_search",
    "decode_sources",
    "encode_changes",
    "validate",
]

JsonObject = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """One request: method, path, JSON body or query parameters, or files (multipart).

    ``idempotent`` calls may be sent again after a timeout or a 502/503/504, because sending
    them twice does no more than sending them once (reads, searches, and answers that the
    caller has not started reading).
    """

    method: str
    path: str
    json: object = None
    params: Mapping[str, str | int] | None = None
    idempotent: bool = False
    files: Sequence[tuple[str, tuple[str, bytes, str]]] | None = None


def assistant_path(kb: str, *parts: str) -> str:
    """``/api/assistants/{kb}/{parts…}`` with every segment escaped.

    >>> assistant_path("docs", "conversations", "a/b")
    '/api/assistants/docs/conversations/a%2Fb'
    """
    segments = [quote(kb, safe=""), *(quote(part, safe="") for part in parts)]
    return "/api/assistants/" + "/".join(segments)


# Adapters validate JSON straight into the core's dataclasses; unknown keys are ignored, so a
# newer server that sends more fields still works. Each is built on first use: building them
# all at import took about 0.1 s, a fifth of importing the client.
_T = TypeVar("_T")
_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def validate(kind: type[_T], data: object) -> _T:
    """``data`` (parsed JSON) as a ``kind``, checked by pydantic.

    Raises:
        pydantic.ValidationError: ``data`` does not fit ``kind``.

    >>> validate(Usage, {"input_tokens": 3, "output_tokens": 5, "extra": 1})
    Usage(input_tokens=3, output_tokens=5)
    """
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        # Two threads may both build one; either result is the same adapter.
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return cast(_T, adapter.validate_python(data))


@functools.cache
def _events() -> TypeAdapter[StreamEvent]:
    return TypeAdapter(Annotated[StreamEvent, Field(discriminator="type")])


STREAM_EVENT_TYPES = frozenset({"sources", "text", "citations", "done", "error"})
"""SSE event names that carry a stream event; others (from a newer server) are skipped."""


def decode_search(data: JsonObject) -> SearchResult:
    """A ``SearchResult`` from ``POST …/search``.

    ``query_tokens`` stays ``None`` and ``candidates`` empty: the API sends the hits only.
    """
    hits = [
        validate(SearchHit, {**hit, "heading_path": hit.get("headings", ())})
        for hit in data["results"]
    ]
    return SearchResult(query=data["query"], hits=hits, trace=validate(SearchTrace, data["trace"]))


def decode_answer(data: JsonObject) -> Answer:
    """An ``Answer`` from ``POST …/chat`` with ``stream: false``.

    ``retrieval`` stays ``None`` (the API does not send the search), and each source's
    ``chunk_ids`` stays empty (its ``chunk_id`` is there).
    """
    error = data.get("error")
    return Answer(
        question=data["question"],
        answer=data["answer"],
        sources=tuple(validate(Source, source) for source in data["sources"]),
        citations=tuple(validate(Citation, citation) for citation in data["citations"]),
        provider=data["provider"],
        usage=validate(Usage, data["usage"]),
        timings_ms=dict(data.get("timings_ms") or {}),
        error=ErrorEvent(error["code"], error["message"]) if error else None,
        standalone_question=data.get("standalone_question", ""),
        model=data.get("model"),
        cost_usd=data.get("cost_usd"),
        outcome=data["outcome"],
        conversation_id=data.get("conversation_id"),
        turn_id=data.get("turn_id"),
    )


def decode_sources(data: JsonObject) -> list[SourceSummary]:
    """``SourceSummary`` list from ``GET …/sources``."""
    return [validate(SourceSummary, item) for item in data["sources"]]


def decode_conversations(data: JsonObject, kb: str) -> list[ConversationSummary]:
    """``ConversationSummary`` list from ``GET …/conversations`` (``assistant`` is ``kb``)."""
    return [
        validate(ConversationSummary, {"assistant": kb, **item}) for item in data["conversations"]
    ]


def decode_conversation(data: JsonObject) -> Conversation:
    """A ``Conversation`` from ``GET …/conversations/{id}/export`` (turns with their traces)."""
    turns = [{"conversation_id": data["id"], **turn} for turn in data["turns"]]
    return validate(Conversation, {**data, "turns": turns})


def decode_gap_turns(
    gaps: JsonObject, conversations: Mapping[str, Conversation]
) -> list[TurnRecord]:
    """The stored turns named by ``GET …/gaps``, in its order, from their ``conversations``.

    A gap whose conversation was deleted in between is left out, as it would be in-process.
    """
    turns = {
        turn.id: turn for conversation in conversations.values() for turn in conversation.turns
    }
    return [turns[gap["turn_id"]] for gap in gaps["gaps"] if gap["turn_id"] in turns]


def decode_config(data: JsonObject) -> AssistantConfig:
    """The ``AssistantConfig`` of an ``AssistantPublic``."""
    return AssistantConfig.model_validate(data["config"])


def decode_models(data: JsonObject) -> list[str]:
    """Assistant names from ``GET /v1/models``, sorted."""
    return sorted(str(model["id"]) for model in data["data"])


def encode_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """``configure``'s changes as a JSON body (settings models become their JSON form)."""
    return {
        section: value.model_dump(mode="json", exclude_unset=True)
        if isinstance(value, BaseModel)
        else value
        for section, value in changes.items()
    }


class SSEDecoder:
    """Reads ``text/event-stream`` lines back into stream events, as ``EventSource`` does.

    ``event:`` names the event, ``data:`` lines are joined by newlines, a blank line ends the
    event, and lines starting with ``:`` (heartbeats) are comments.

    >>> decoder = SSEDecoder()
    >>> lines = ["event: text", 'data: {"text": "Hi", "type": "text"}', ""]
    >>> [decoder.feed(line) for line in lines][-1]
    TextDelta(text='Hi', type='text')
    """

    def __init__(self) -> None:
        self._name = ""
        self._data: list[str] = []

    def feed(self, line: str) -> StreamEvent | None:
        """Take one line (without its line end); return the event it completes, if any.

        Raises:
            ApiServerError: a known event whose data is not a valid event.
        """
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._name = value
        elif field == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> StreamEvent | None:
        name, data = self._name, "\n".join(self._data)
        self._name, self._data = "", []
        if name not in STREAM_EVENT_TYPES:
            return None
        try:
            event = _events().validate_json(data)
        except ValidationError as exc:
            raise ApiServerError(
                f"the server sent a {name!r} event the client cannot read: {exc.errors()[:1]}",
                status=200,
                code="invalid_event",
            ) from exc
        if event.type != name:
            raise ApiServerError(
                f"the server sent a {name!r} event holding a {event.type!r} event",
                status=200,
                code="invalid_event",
            )
        return event
