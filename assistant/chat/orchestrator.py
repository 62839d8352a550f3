"""One chat turn: load the conversation, condense, retrieve, choose context, answer, store.

``ChatOrchestrator`` composes parts that are each usable and tested alone: a ``Condenser``, a
search function (the late-interaction retriever of one knowledge base), context selection under
a token budget, an ``Answerer`` with its provider chain, and a ``ConversationStore``. It streams
``sources`` first, then text deltas, ``citations`` and ``done`` (usage, cost, time per stage)
or ``error``; after the stream it stores the turn with its retrieval trace.

When the best plain MaxSim of the recalled passages (``SearchResult.best_match``) is under the
no-answer threshold, no provider is called: the brand's no-answer text is streamed and the turn is stored
as a content gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from assistant.chat.answerer import Answerer, drain
from assistant.chat.condense import Condenser
from assistant.chat.context import select_context
from assistant.chat.conversations import ConversationStore, NewTurn
from assistant.chat.events import (
    Answer,
    Citation,
    CitationsEvent,
    DoneEvent,
    ErrorEvent,
    Source,
    SourcesEvent,
    StreamEvent,
    TextDelta,
    Usage,
)
from assistant.chat.history import HistoryTurn
from assistant.chat.pricing import estimate_cost
from assistant.chat.provider import PassageTokens
from assistant.chat.tokens import PromptTokenCounter, trim_history
from assistant.chat.trace import retrieval_trace
from assistant.errors import InvalidInputError
from assistant.knowledge.chunking import embedding_text
from assistant.knowledge.results import TURN_HITS, SearchHit
from assistant.knowledge.retriever import SearchResult

__all__ = ["DEFAULT_NO_ANSWER_THRESHOLD", "ChatOrchestrator", "PreparedTurn", "TurnBudget"]

logger = logging.getLogger(__name__)

DEFAULT_NO_ANSWER_THRESHOLD = 0.5
"""Best mean-MaxSim score under which a turn is declined as a content gap.

Calibrated with ``bench/no_answer.py``: on the sample help centre, answerable questions score
0.56-0.88 and off-topic ones 0.20-0.40; on SciFact claims against a SciFact subset (answerable)
and Cranfield queries (unanswerable) the best cut is 0.506. 0.5 keeps every sample question and
97 % of the SciFact ones while declining every off-topic question. Corpora differ: run the bench
on your own content and set ``retrieval.no_answer_threshold`` per assistant."""


@dataclass(frozen=True, slots=True)
class TurnBudget:
    """How much of the model's window a turn may fill, in the model's tokens."""

    context_k: int = 5
    """At most this many sources (after merging neighbouring chunks)."""
    context_tokens: int = 3000
    history_tokens: int = 1500
    candidates: int = TURN_HITS
    """Ranked passages considered for the context before merging and budgeting."""
    max_message_chars: int = 4000


@dataclass(slots=True)
class PreparedTurn:
    """A turn up to its first event: the question, its search and the chosen sources."""

    message: str
    """What the user wrote, stripped."""
    standalone: str
    """The question searched for: ``message``, or a follow-up condensed with the history."""
    conversation_id: str | None
    history: list[HistoryTurn]
    retrieval: SearchResult
    sources: tuple[Source, ...]
    top_score: float | None
    timings: dict[str, float]
    started: float
    store: ConversationStore | None
    """Where the turn is stored when it ends; ``None`` when it is not remembered."""


def passage_tokens(result: SearchResult, sources: Sequence[Source]) -> tuple[PassageTokens, ...]:
    """The chunks of ``sources`` with the token vectors ``result``'s rerank read for them."""
    # Sources are chosen from the hits; the rest of the pool is read only for a chunk that is
    # not among them, since a search makes a candidate's hit only when it is read.
    hits = {hit.chunk_id: hit for hit in result.hits}
    pool: dict[str, SearchHit] | None = None
    matrices = result.token_matrices
    passages: list[PassageTokens] = []
    for source in sources:
        for chunk_id in source.chunk_ids or (source.chunk_id,):
            if chunk_id not in matrices:
                continue
            hit = hits.get(chunk_id)
            if hit is None:
                if pool is None:
                    pool = {candidate.chunk_id: candidate for candidate in result.candidates}
                hit = pool.get(chunk_id)
            if hit is not None:
                header = embedding_text(hit.title, hit.heading_path, "")
                encoded = embedding_text(hit.title, hit.heading_path, hit.text)
                # Read when a provider asks (the extractive one): scaling the quantised
                # rows costs the event loop time that a model's answer never uses.
                rows = functools.partial(matrices.__getitem__, chunk_id)
                passages.append(PassageTokens(hit.text, encoded, len(header), rows))
    return tuple(passages)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


class ChatOrchestrator:
    """Runs chat turns against one knowledge base.

    >>> orchestrator = ChatOrchestrator(  # doctest: +SKIP
    ...     assistant="docs", search=retriever.search, answerer=answerer,
    ...     condenser=RuleBasedCondenser(), counter=ApproximateCounter(), conversations=store)
    >>> async for event in orchestrator.stream("and how much does it cost?", conversation_id=cid):
    ...     print(event.type)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        assistant: str,
        search: Callable[[str, int], SearchResult],
        answerer: Answerer,
        condenser: Condenser,
        counter: PromptTokenCounter,
        conversations: ConversationStore | None = None,
        budget: TurnBudget | None = None,
        no_answer_threshold: float = DEFAULT_NO_ANSWER_THRESHOLD,
        decline_unknown_names: bool = True,
        executor: Executor | None = None,
    ) -> None:
        self.assistant = assistant
        self._search = search
        self.answerer = answerer
        self._condenser = condenser
        self._counter = counter
        self._conversations = conversations
        self.budget = budget or TurnBudget()
        self.no_answer_threshold = no_answer_threshold
        self.decline_unknown_names = decline_unknown_names
        self._executor = executor

    async def stream(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        visitor: str | None = None,
        remember: bool = True,
        history: Sequence[HistoryTurn] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Answer ``message`` as the next turn of ``conversation_id`` (a new one when ``None``).

        With ``remember`` off (or no conversation store) the turn uses no stored history and
        nothing is stored. ``history`` (earlier exchanges the caller holds, e.g. an OpenAI-style
        message list) is used instead of the stored history.

        Raises (before the first event):
            InvalidInputError: the message is empty or longer than the budget allows.
            NotFoundError: ``conversation_id`` is not a conversation of this assistant.
        """
        turn = await self.prepare(
            message,
            conversation_id=conversation_id,
            visitor=visitor,
            remember=remember,
            history=history,
        )
        async with contextlib.aclosing(self.respond(turn)) as events:
            async for event in events:
                yield event

    async def answer(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        visitor: str | None = None,
        remember: bool = True,
        history: Sequence[HistoryTurn] | None = None,
    ) -> Answer:
        """``stream`` drained into an ``Answer`` whose ``retrieval`` is the turn's search (every
        candidate, every score). Raises as ``stream`` does."""
        turn = await self.prepare(
            message,
            conversation_id=conversation_id,
            visitor=visitor,
            remember=remember,
            history=history,
        )
        async with contextlib.aclosing(self.respond(turn)) as events:
            return await drain(message, events, retrieval=turn.retrieval)

    async def prepare(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        visitor: str | None = None,
        remember: bool = True,
        history: Sequence[HistoryTurn] | None = None,
    ) -> PreparedTurn:
        """Everything before the first event: check the message, load (or start) the
        conversation, condense, search and choose the context. Raises as ``stream`` does."""
        started = time.perf_counter()
        text = message.strip()
        if not text:
            raise InvalidInputError("the message is empty")
        if len(text) > self.budget.max_message_chars:
            raise InvalidInputError(
                f"the message has {len(text)} characters; at most "
                f"{self.budget.max_message_chars} are accepted"
            )
        timings: dict[str, float] = {}
        store = self._conversations if remember else None
        earlier: list[HistoryTurn] = list(history or ())
        if store is not None:
            stage = time.perf_counter()
            if conversation_id is None:
                conversation_id = await asyncio.to_thread(
                    store.start, self.assistant, visitor=visitor
                )
            else:
                # Loaded even when ``history`` is given: it checks the conversation exists
                # before the first event rather than when the turn is stored.
                stored = await asyncio.to_thread(store.history, self.assistant, conversation_id)
                if history is None:
                    earlier = stored
            timings["history"] = _ms(stage)
        else:
            conversation_id = None
        earlier = trim_history(
            earlier, counter=self._counter, budget_tokens=self.budget.history_tokens
        )

        stage = time.perf_counter()
        standalone = await self._condenser.condense(text, earlier) if earlier else text
        timings["condense"] = _ms(stage)

        # Searches run in their own bounded pool: torch already uses every core for one, so
        # running many side by side only adds contention, and database calls in the default
        # pool never queue behind them.
        result = await asyncio.get_running_loop().run_in_executor(
            self._executor, self._search, standalone, self.budget.candidates
        )
        timings.update(result.trace.timings_ms)
        stage = time.perf_counter()
        top_score = result.best_match
        answerable = top_score is not None and top_score >= self.no_answer_threshold
        if answerable and self.decline_unknown_names and result.unknown_names:
            # The question names something no page mentions ("PyO3" on a site without it):
            # the closest passage scores well on the other words but cannot answer it.
            logger.debug("declined: %d name(s) in no page", len(result.unknown_names))
            answerable = False
        sources: tuple[Source, ...] = (
            select_context(
                result.hits,
                counter=self._counter,
                budget_tokens=self.budget.context_tokens,
                max_sources=self.budget.context_k,
            )
            if answerable
            else ()
        )
        timings["context"] = _ms(stage)
        return PreparedTurn(
            message=text,
            standalone=standalone,
            conversation_id=conversation_id,
            history=earlier,
            retrieval=result,
            sources=sources,
            top_score=top_score,
            timings=timings,
            started=started,
            store=store,
        )

    async def respond(self, turn: PreparedTurn) -> AsyncGenerator[StreamEvent, None]:
        """The events of a prepared turn: ``sources``, text deltas, ``citations``, then
        ``done`` or ``error``; the turn is stored (when remembered) before the last event."""
        text, standalone, conversation_id = turn.message, turn.standalone, turn.conversation_id
        result, sources, timings, store = turn.retrieval, turn.sources, turn.timings, turn.store
        started, top_score = turn.started, turn.top_score
        yield SourcesEvent(sources, standalone, conversation_id)

        answer: list[str] = []
        citations: tuple[Citation, ...] = ()

        async def record(
            done: DoneEvent | None, cost: float | None, error: ErrorEvent | None = None
        ) -> int | None:
            """Store the turn as it ended (with ``done``, or failed with ``error``)."""
            if store is None or conversation_id is None:
                return None  # nothing is kept, so the trace is not even built
            record_of_turn = NewTurn(
                question=text,
                standalone_question=standalone,
                answer="".join(answer).strip(),
                sources=sources,
                citations=citations,
                trace=retrieval_trace(result, sources),
                provider=done.provider if done else "",
                model=done.model if done else None,
                usage=done.usage if done else Usage(),
                cost_usd=cost,
                timings_ms=timings,
                outcome=done.outcome if done else "error",
                top_score=top_score,
                error_code=error.code if error else None,
                error_message=error.message if error else None,
            )
            stage = time.perf_counter()
            turn_id = await asyncio.to_thread(
                store.record, self.assistant, conversation_id, record_of_turn
            )
            timings["store"] = _ms(stage)
            return turn_id

        provider_started = time.perf_counter()
        async for event in self.answerer.stream(
            standalone,
            sources,
            history=turn.history,
            message=text,
            query_tokens=result.query_tokens,
            passage_tokens=passage_tokens(result, sources),
        ):
            if isinstance(event, TextDelta):
                if not answer:
                    timings["first_token"] = _ms(started)
                answer.append(event.text)
                yield event
            elif isinstance(event, CitationsEvent):
                citations = event.citations
                yield event
            elif isinstance(event, DoneEvent):
                timings["answer"] = _ms(provider_started)
                cost = estimate_cost(
                    event.provider, event.model, event.usage.input_tokens, event.usage.output_tokens
                )
                turn_id = await record(event, cost)
                timings["total"] = _ms(started)
                yield DoneEvent(
                    event.usage,
                    event.provider,
                    dict(timings),
                    model=event.model,
                    cost_usd=cost,
                    outcome=event.outcome,
                    conversation_id=conversation_id,
                    turn_id=turn_id,
                    cache_hits=result.trace.cache_hits,
                    cache_misses=result.trace.cache_misses,
                )
            elif isinstance(event, ErrorEvent):
                timings["total"] = _ms(started)
                await record(None, None, event)
                yield event
