"""Condensing a follow-up message into a standalone question before retrieval.

A chat turn such as "and how much does it cost?" retrieves nothing useful on its own: its topic
lives in the previous turn. A ``Condenser`` rewrites the message into a question that names its
topic, and retrieval searches that instead. Two implementations:

``ProviderCondenser``
    Asks an LLM answer provider to rewrite the message, given the recent conversation.
``RuleBasedCondenser``
    A few deterministic rules and no model: for the offline extractive answerer, and the
    fallback when the provider fails or replies with something unusable.

Both return the message unchanged on the first turn of a conversation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from typing import Protocol

from assistant.chat.events import TextDelta
from assistant.chat.follow_up_rules import rewrite_follow_up
from assistant.chat.history import HistoryTurn
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import ChatProvider, ChatRequest, Message
from assistant.errors import AssistantError

__all__ = [
    "Condenser",
    "ProviderCondenser",
    "RuleBasedCondenser",
    "clean_reply",
    "rewrite_follow_up",
]

logger = logging.getLogger(__name__)


class Condenser(Protocol):
    """Turns the latest message of a conversation into a question retrieval can search alone."""

    async def condense(self, question: str, history: Sequence[HistoryTurn]) -> str:
        """The standalone question for ``question``; ``question`` itself when history is empty."""
        ...


class RuleBasedCondenser:
    """Rewrites follow-ups with a few deterministic rules (see ``rewrite_follow_up``); no model.

    ``ignored_terms`` are names that appear in most questions (the product name) and so do not
    make a topic on their own.

    >>> import asyncio
    >>> turn = HistoryTurn("Which plans include the Slack integration?", "Team and up.")
    >>> asyncio.run(RuleBasedCondenser().condense("and how much does it cost?", [turn]))
    'How much does the Slack integration cost (plans include)?'
    """

    def __init__(self, *, ignored_terms: Collection[str] = ()) -> None:
        self.ignored_terms = frozenset(term.lower() for term in ignored_terms)

    async def condense(self, question: str, history: Sequence[HistoryTurn]) -> str:
        """The standalone question: ``question`` rewritten with the topic of the last turn."""
        if not history:
            return question
        previous = history[-1].standalone_question or history[-1].question
        return rewrite_follow_up(question, previous, self.ignored_terms)


# What a model sometimes puts before or around the question despite the prompt.
_REPLY_PREFIX = re.compile(
    r"^\s*(?:standalone\s+question|rewritten\s+question|question)\s*:\s*", re.IGNORECASE
)
_QUOTES = "\"'`“”‘’«»"
_ANSWER_CHARS = 300


def _shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most about ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def clean_reply(reply: str) -> str:
    """The question in a model's reply: no label, quotes or blank lines around it.

    >>> clean_reply('Standalone question: "How much does the Team plan cost?"\\n')
    'How much does the Team plan cost?'
    """
    text = _REPLY_PREFIX.sub("", reply.strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return _REPLY_PREFIX.sub("", first).strip().strip(_QUOTES).strip()


class ProviderCondenser:
    """Asks a chat provider to rewrite the message, falling back to rules when it cannot.

    The ``condense_question`` template gets the last ``max_history_turns`` turns (user message
    and a shortened answer each) as ``$history`` and the message as ``$question``. It goes to
    the provider as one user message and no system message: the template holds the whole
    instruction, the task has nothing to do with the answering persona of ``system.txt``, and
    every provider treats a user message the same way. A provider error (``AssistantError``),
    an empty reply or one longer than ``max_chars`` makes ``fallback`` answer instead, with a
    warning that names the provider and the error type only.

    >>> condenser = ProviderCondenser(provider, PromptLibrary())  # doctest: +SKIP
    >>> await condenser.condense("and how much does it cost?", history)  # doctest: +SKIP
    'How much does the Slack integration cost?'
    """

    def __init__(
        self,
        provider: ChatProvider,
        prompts: PromptLibrary,
        *,
        fallback: Condenser | None = None,
        max_history_turns: int = 6,
        max_chars: int = 500,
    ) -> None:
        if max_history_turns < 1:
            raise ValueError("max_history_turns must be at least 1")
        if max_chars < 1:
            raise ValueError("max_chars must be at least 1")
        self.provider = provider
        self.prompts = prompts
        self.fallback: Condenser = fallback if fallback is not None else RuleBasedCondenser()
        self.max_history_turns = max_history_turns
        self.max_chars = max_chars

    def request(self, question: str, history: Sequence[HistoryTurn]) -> ChatRequest:
        """The request sent to the provider for ``question`` after ``history``."""
        lines: list[str] = []
        for turn in history[-self.max_history_turns :]:
            lines.append(f"User: {_shorten(turn.question, self.max_chars)}")
            lines.append(f"Assistant: {_shorten(turn.answer, _ANSWER_CHARS)}")
        rendered = self.prompts.render(
            "condense_question", history="\n".join(lines), question=question
        )
        return ChatRequest(question, sources=(), messages=(Message("user", rendered),))

    async def condense(self, question: str, history: Sequence[HistoryTurn]) -> str:
        """The provider's standalone question, or the fallback's when the provider fails."""
        if not history:
            return question
        try:
            reply = await self._reply(self.request(question, history))
        except AssistantError as exc:
            logger.warning(
                "provider %s could not condense the question (%s); using the fallback",
                self.provider.name,
                type(exc).__name__,
            )
            return await self.fallback.condense(question, history)
        standalone = clean_reply(reply)
        if not standalone or len(standalone) > self.max_chars:
            logger.warning(
                "provider %s condensed the question into %s; using the fallback",
                self.provider.name,
                "nothing" if not standalone else f"{len(standalone)} characters",
            )
            return await self.fallback.condense(question, history)
        return standalone

    async def _reply(self, request: ChatRequest) -> str:
        """The streamed text, cut short once it is too long to be a question."""
        text: list[str] = []
        length = 0
        stream = self.provider.stream(request)
        try:
            async for event in stream:
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    length += len(event.text)
                    # Far past any question: stop paying for tokens the result will refuse.
                    if length > 2 * self.max_chars:
                        break
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        return "".join(text)
