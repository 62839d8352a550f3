"""Follow-up questions through the real chat path: does the follow-up cite a page that answers it?

Each conversation of a question set asks its first question, then its follow-up in the same
conversation, and checks the follow-up's citations (and its sources, the context it was
answered from) against the acceptable pages. Three modes:

- ``rules``: ``Assistant.chat`` with the offline answerer, whose condenser is the rule-based one
  (what ships without a model);
- ``model``: the same turn, composed from the same parts (``build_orchestrator``, the knowledge
  base's retriever, the extractive answerer), with a provider in front that writes the
  standalone question when asked to condense: a ``FakeProvider`` scripted with the set's
  ``standalone`` column. The condense-with-a-model path (``ProviderCondenser``) runs for real;
  the rewrite is the one a good model would write, so this stands for an ideal model;
- ``alone``: the follow-up asked on its own, with no conversation (the floor: what
  condensing has to recover).

Conversations are deleted once measured, so an evaluation leaves no turns in the analytics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.chat.answerer import Answerer
from assistant.chat.events import Answer
from assistant.chat.extractive import ExtractiveProvider
from assistant.chat.orchestrator import ChatOrchestrator
from assistant.chat.policy import build_answerer, build_orchestrator
from assistant.chat.provider import ChatRequest, ProviderEvent
from assistant.evaluation.pools import is_acceptable, page_path
from assistant.evaluation.questions import Conversation
from assistant.testing.fake_provider import FakeProvider, FakeReply
from assistant.wiring import KnowledgeBase

if TYPE_CHECKING:
    from assistant.core import Assistant

__all__ = [
    "FOLLOW_UP_MODES",
    "FollowUpReport",
    "FollowUpResult",
    "StandaloneWriter",
    "evaluate_follow_ups",
]

FOLLOW_UP_MODES = ("rules", "model", "alone")


class StandaloneWriter:
    """A provider that writes scripted standalone questions and answers like the extractive one.

    A request without sources is a condense request (``ProviderCondenser`` sends the history
    and the message as one user message): it is answered by a ``FakeProvider`` scripted with
    ``script(standalone)``. A request with sources is answered by ``extractive``, so answers
    and citations differ from the offline answerer's only through the question searched.
    """

    name = "standalone-writer"
    model = None

    def __init__(self, extractive: ExtractiveProvider) -> None:
        self._extractive = extractive
        self._condense = FakeProvider(name=self.name)

    @property
    def condense_requests(self) -> int:
        """How many condense requests were answered (one per follow-up when all goes well)."""
        return len(self._condense.requests)

    def script(self, standalone: str) -> None:
        """Answer the next condense requests with ``standalone``."""
        self._condense.script(FakeReply(deltas=(standalone,)))

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """The scripted standalone question, or the extractive answer when there are sources."""
        provider = self._extractive if request.sources else self._condense
        async for event in provider.stream(request):
            yield event


@dataclass(frozen=True, slots=True)
class FollowUpResult:
    """One conversation's follow-up in one mode."""

    conversation: Conversation
    searched: str
    """The question the follow-up's search used (the standalone question)."""
    cited: tuple[str, ...]
    sources: tuple[str, ...]

    @property
    def cited_hit(self) -> bool:
        """Whether a citation is an acceptable page."""
        return any(is_acceptable(url, self.conversation.acceptable) for url in self.cited)

    @property
    def source_hit(self) -> bool:
        """Whether a source of the answer's context is an acceptable page."""
        return any(is_acceptable(url, self.conversation.acceptable) for url in self.sources)

    def to_json(self) -> dict[str, object]:
        """Plain JSON with page paths."""
        return {
            "line": self.conversation.line,
            "follow_up": self.conversation.follow_up,
            "searched": self.searched,
            "cited_hit": self.cited_hit,
            "source_hit": self.source_hit,
            "cited": [page_path(url) for url in self.cited],
        }


@dataclass(frozen=True, slots=True)
class FollowUpReport:
    """Follow-up results per mode (``FOLLOW_UP_MODES``)."""

    results: dict[str, list[FollowUpResult]]

    def rates(self) -> dict[str, dict[str, float]]:
        """Per mode: share of follow-ups citing an acceptable page, and with one among the
        sources."""
        return {
            mode: {
                "conversations": len(results),
                "cited": _share(result.cited_hit for result in results),
                "sources": _share(result.source_hit for result in results),
            }
            for mode, results in self.results.items()
        }

    def to_json(self) -> dict[str, object]:
        """Rates and every follow-up's result."""
        return {
            "model_mode": "an ideal model: the standalone column written by hand",
            "rates": self.rates(),
            "per_conversation": {
                mode: [result.to_json() for result in results]
                for mode, results in self.results.items()
            },
        }


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return round(sum(1 for value in values if value) / len(values), 4) if values else 0.0


def _result(conversation: Conversation, answer: Answer) -> FollowUpResult:
    return FollowUpResult(
        conversation,
        answer.standalone_question,
        tuple(citation.url for citation in answer.citations),
        tuple(source.url for source in answer.sources),
    )


def _model_orchestrator(assistant: Assistant, kb: str) -> tuple[ChatOrchestrator, StandaloneWriter]:
    """``kb``'s orchestrator as ``Assistant`` composes it, with ``StandaloneWriter`` as model."""
    knowledge_base = KnowledgeBase(
        kb,
        settings=assistant.settings,
        chroma=assistant.chroma,
        encoder=assistant.encoder,
        late_encoder=assistant.late_encoder,
        token_cache=assistant.token_cache,
    )
    config = assistant.config(kb)
    retriever = knowledge_base.retriever
    offline = build_answerer(
        kb, config, assistant.settings, ExtractiveProvider(retriever.token_encoder)
    )
    writer = StandaloneWriter(ExtractiveProvider(retriever.token_encoder))
    answerer = Answerer([writer], prompts=offline.prompts, brand=offline.brand)
    orchestrator = build_orchestrator(
        kb,
        config,
        assistant.settings,
        answerer=answerer,
        search=retriever.search,
        conversations=assistant.conversation_store,
        executor=None,
    )
    return orchestrator, writer


async def _model_mode(
    orchestrator: ChatOrchestrator,
    writer: StandaloneWriter,
    conversation: Conversation,
) -> tuple[Answer, str | None]:
    writer.script(conversation.standalone)
    first = await orchestrator.answer(conversation.first)
    follow_up = await orchestrator.answer(
        conversation.follow_up, conversation_id=first.conversation_id
    )
    return follow_up, first.conversation_id


def evaluate_follow_ups(
    assistant: Assistant,
    conversations: Sequence[Conversation],
    *,
    kb: str,
    progress: Callable[[int, int], None] | None = None,
) -> FollowUpReport:
    """Run every conversation in every mode of ``FOLLOW_UP_MODES`` against ``kb``.

    ``progress(done, total)`` is called after each conversation.
    """
    results: dict[str, list[FollowUpResult]] = {mode: [] for mode in FOLLOW_UP_MODES}
    orchestrator, writer = _model_orchestrator(assistant, kb)
    runner = asyncio.Runner()
    try:
        for done, conversation in enumerate(conversations, start=1):
            first = assistant.chat(conversation.first, kb=kb)
            follow_up = assistant.chat(
                conversation.follow_up, kb=kb, conversation_id=first.conversation_id
            )
            results["rules"].append(_result(conversation, follow_up))
            _forget(assistant, kb, first.conversation_id)

            answer, conversation_id = runner.run(_model_mode(orchestrator, writer, conversation))
            results["model"].append(_result(conversation, answer))
            _forget(assistant, kb, conversation_id)

            results["alone"].append(
                _result(conversation, assistant.ask(conversation.follow_up, kb=kb))
            )
            if progress is not None:
                progress(done, len(conversations))
    finally:
        runner.close()
    return FollowUpReport(results)


def _forget(assistant: Assistant, kb: str, conversation_id: str | None) -> None:
    if conversation_id is not None:
        assistant.delete_conversation(conversation_id, kb=kb)
