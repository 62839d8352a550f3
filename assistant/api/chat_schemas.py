"""Request and response bodies of the chat side of the HTTP API.

Chat, feedback, search, conversations and content gaps use ``XCreate`` / ``XPublic`` models,
most of them read straight from the core's dataclasses (``AnswerPublic.model_validate(answer)``);
the OpenAI-compatible routes use models shaped like OpenAI's Chat Completions API, with one
extra field, ``assistant_sources``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.chat.conversations import TurnRecord
from assistant.chat.events import Usage
from assistant.knowledge.retriever import SearchHit, SearchResult

__all__ = [
    "AnswerPublic",
    "AssistantSource",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatCreate",
    "ChunkChoice",
    "ChunkDelta",
    "CitationPublic",
    "CompletionChoice",
    "CompletionMessage",
    "CompletionUsage",
    "ConversationExport",
    "ConversationList",
    "ConversationPublic",
    "ConversationSummaryPublic",
    "FeedbackCreate",
    "GapList",
    "GapPublic",
    "InputMessage",
    "ModelList",
    "ModelPublic",
    "OpenAIError",
    "OpenAIErrorBody",
    "SearchHitPublic",
    "SearchRequest",
    "SearchResultPublic",
    "SearchTracePublic",
    "SourcePublic",
    "StreamErrorPublic",
    "StreamOptions",
    "TextPart",
    "TurnExport",
    "TurnPublic",
    "UsagePublic",
]


class _Strict(BaseModel):
    # A misspelt field in a request is an error, not a silently ignored value.
    model_config = ConfigDict(extra="forbid")


class _FromCore(BaseModel):
    # Built from the core's dataclasses with ``model_validate(obj)``.
    model_config = ConfigDict(from_attributes=True)


class ChatCreate(_Strict):
    """One message to an assistant, as the next turn of a conversation.

    ``stream`` (default) answers with ``text/event-stream``; ``false`` with one JSON
    ``AnswerPublic``. ``conversation_id`` continues a conversation; omitted, a new one starts.
    """

    message: str = Field(min_length=1, max_length=100_000)
    conversation_id: str | None = Field(default=None, max_length=64)
    stream: bool = True
    visitor: str | None = Field(default=None, max_length=128)
    """An id the embedding page gives its visitor, kept with the conversation."""
    remember: bool = True
    """``false`` answers the message alone: no earlier turns, nothing stored (one-off
    questions from scripts)."""


class FeedbackCreate(_Strict):
    """Thumbs up (``1``) or down (``-1``) on a turn, with an optional comment."""

    rating: Literal[1, -1]
    comment: str = Field(default="", max_length=2000)


class SearchRequest(_Strict):
    """A retrieval query against an assistant's knowledge base."""

    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=10, ge=1, le=100)


class UsagePublic(_FromCore):
    """Tokens the provider spent (zero for the extractive answerer)."""

    input_tokens: int = 0
    output_tokens: int = 0


class CitationPublic(_FromCore):
    """A source the answer cites (``[n]``) with the sentence of it that supports the claim."""

    n: int
    title: str
    url: str
    quote: str


class SourcePublic(_FromCore):
    """A passage given to the answerer, numbered as it is cited."""

    n: int
    chunk_id: str
    title: str
    url: str
    heading_path: list[str]
    text: str
    score: float


class StreamErrorPublic(_FromCore):
    """A failure after the answer had started; the partial answer is kept."""

    code: str
    message: str


class AnswerPublic(_FromCore):
    """A whole answer (``stream: false``): the event stream's content, drained.

    Built from the core's ``Answer`` with ``AnswerPublic.model_validate(answer)``.
    """

    question: str
    standalone_question: str
    answer: str
    citations: list[CitationPublic]
    sources: list[SourcePublic]
    provider: str
    model: str | None
    outcome: Literal["answered", "no_answer", "error"]
    usage: UsagePublic
    cost_usd: float | None
    conversation_id: str | None
    turn_id: int | None
    timings_ms: dict[str, float]
    error: StreamErrorPublic | None = None


class TurnPublic(_FromCore):
    """A stored turn: the message, what it was condensed into, the answer and its sources.

    Built from the core's ``TurnRecord``.
    """

    id: int
    position: int
    question: str
    standalone_question: str
    answer: str
    citations: list[CitationPublic]
    sources: list[SourcePublic]
    provider: str
    model: str | None
    outcome: Literal["answered", "no_answer", "error"]
    usage: UsagePublic
    cost_usd: float | None
    timings_ms: dict[str, float]
    top_score: float | None
    error_code: str | None
    created_at: datetime


class TurnExport(TurnPublic):
    """A stored turn with its retrieval trace (every candidate and score), for export."""

    trace: dict[str, Any]


class ConversationSummaryPublic(_FromCore):
    """A conversation without its turns (built from ``ConversationSummary``)."""

    id: str
    title: str
    visitor: str | None
    turns: int
    created_at: datetime
    updated_at: datetime


class ConversationList(BaseModel):
    """A page of conversations, most recently active first."""

    conversations: list[ConversationSummaryPublic]


class ConversationPublic(_FromCore):
    """A conversation and every turn of it, oldest first (built from ``Conversation``)."""

    id: str
    assistant: str
    title: str
    visitor: str | None
    created_at: datetime
    updated_at: datetime
    turns: list[TurnPublic]


class ConversationExport(_FromCore):
    """A conversation as a download: every turn with its retrieval trace."""

    id: str
    assistant: str
    title: str
    visitor: str | None
    created_at: datetime
    updated_at: datetime
    turns: list[TurnExport]
    exported_at: datetime


class GapPublic(BaseModel):
    """A question the assistant declined because nothing relevant enough was found."""

    turn_id: int
    conversation_id: str
    question: str
    standalone_question: str
    top_score: float | None
    created_at: datetime

    @classmethod
    def from_turn(cls, turn: TurnRecord) -> GapPublic:
        """From the stored turn that got no answer."""
        return cls(
            turn_id=turn.id,
            conversation_id=turn.conversation_id,
            question=turn.question,
            standalone_question=turn.standalone_question,
            top_score=turn.top_score,
            created_at=turn.created_at,
        )


class GapList(BaseModel):
    """Content gaps, newest first."""

    gaps: list[GapPublic]


class SearchHitPublic(BaseModel):
    """One ranked passage with every signal's rank and score (1 = best); ``rank`` and
    ``score`` are the final (late-interaction) ones."""

    chunk_id: str
    url: str
    title: str
    headings: list[str]
    text: str
    dense_rank: int
    dense_score: float
    late_interaction_rank: int
    late_interaction_score: float
    lexical_rank: int | None
    lexical_score: float | None
    rank: int
    score: float

    @classmethod
    def from_hit(cls, hit: SearchHit) -> SearchHitPublic:
        """From the retriever's ``SearchHit``."""
        fields = {name: getattr(hit, name) for name in cls.model_fields if name != "headings"}
        return cls(**fields, headings=list(hit.heading_path))


class SearchTracePublic(_FromCore):
    """How the search went: stage timings, pool sizes, cache behaviour, fusion weights."""

    timings_ms: dict[str, float]
    candidates: int
    dense_candidates: int
    lexical_candidates: int
    cache_hits: int
    cache_misses: int
    weights: dict[str, float]


class SearchResultPublic(BaseModel):
    """The same shape as ``assistant search --json``."""

    query: str
    results: list[SearchHitPublic]
    trace: SearchTracePublic

    @classmethod
    def from_result(cls, result: SearchResult) -> SearchResultPublic:
        """From the retriever's ``SearchResult``."""
        return cls(
            query=result.query,
            results=[SearchHitPublic.from_hit(hit) for hit in result.hits],
            trace=SearchTracePublic.model_validate(result.trace),
        )


# OpenAI-compatible bodies -----------------------------------------------------------------
# Shaped like OpenAI's Chat Completions API so its clients work unchanged. Requests allow
# unknown fields (clients send temperature, max_tokens, …): the assistant's own settings
# decide how it answers, so they are accepted and not used.


class _OpenAIRequest(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(_OpenAIRequest):
    """One part of a message's content; only ``text`` parts are accepted."""

    type: str
    text: str | None = None


class InputMessage(_OpenAIRequest):
    """A message of the conversation the client holds.

    ``system`` and ``developer`` messages are not used: the assistant's brand and instructions
    make its system prompt. ``tool`` and ``function`` messages are not used either.
    """

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None


class StreamOptions(_OpenAIRequest):
    """``include_usage``: send a last chunk with the token usage (empty ``choices``)."""

    include_usage: bool = False


class ChatCompletionRequest(_OpenAIRequest):
    """``POST /v1/chat/completions``: ``model`` names the assistant.

    The last message must be the user's question; the user/assistant messages before it are
    the conversation so far. Nothing is stored unless ``conversation_id`` (an extra field, e.g.
    ``extra_body={"conversation_id": …}`` in the ``openai`` package) names a stored
    conversation: the turn is then added to it, and with no earlier messages its stored turns
    are the history. ``user`` is kept as the conversation's visitor.
    """

    model: str = Field(min_length=1, max_length=64)
    messages: list[InputMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    conversation_id: str | None = Field(default=None, max_length=64)
    user: str | None = Field(default=None, max_length=128)


class ModelPublic(BaseModel):
    """An assistant, listed as an OpenAI model."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "assistant-rag"


class ModelList(BaseModel):
    """``GET /v1/models``: the assistants the caller may use."""

    object: Literal["list"] = "list"
    data: list[ModelPublic]


class AssistantSource(BaseModel):
    """A source the answer was built from (extra field ``assistant_sources``).

    ``quote`` is the sentence that supports the answer where the source is cited
    (``cited``), else the start of the passage.
    """

    n: int
    title: str
    url: str
    quote: str
    cited: bool


class CompletionUsage(BaseModel):
    """Tokens spent, in OpenAI's names."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def from_usage(cls, usage: Usage) -> CompletionUsage:
        """From the core's ``Usage``."""
        return cls(
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            total_tokens=usage.input_tokens + usage.output_tokens,
        )


class CompletionMessage(BaseModel):
    """The answer, as the assistant's message."""

    role: Literal["assistant"] = "assistant"
    content: str
    refusal: str | None = None


class CompletionChoice(BaseModel):
    """The one choice of a completion."""

    index: int = 0
    message: CompletionMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    """A whole answer in OpenAI's ``chat.completion`` shape, plus ``assistant_sources`` and the
    ``conversation_id`` the turn was stored in (``None`` when it was not stored)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage
    system_fingerprint: str | None = None
    assistant_sources: list[AssistantSource]
    conversation_id: str | None = None


class ChunkDelta(BaseModel):
    """What a chunk adds: the role (first chunk) or a piece of the answer."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """The one choice of a chunk; ``finish_reason`` is set on the last one."""

    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """A streamed piece in OpenAI's ``chat.completion.chunk`` shape.

    The chunk with ``finish_reason`` carries ``assistant_sources`` and ``conversation_id``; with
    ``stream_options.include_usage`` a last chunk with no choices carries ``usage``.
    """

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None
    assistant_sources: list[AssistantSource] | None = None
    conversation_id: str | None = None


class OpenAIErrorBody(BaseModel):
    """What failed, in OpenAI's terms (``type``, ``code``)."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """The error envelope OpenAI clients parse: ``{"error": {...}}``."""

    error: OpenAIErrorBody
