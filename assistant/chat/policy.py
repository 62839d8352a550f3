"""Chat policy of an assistant: its provider chain, its condenser and its turn budget.

``Assistant`` composes a ``ChatOrchestrator`` per knowledge base from the assistant's settings
(``AssistantConfig``) and the process's (``Settings``) with these functions:

- ``build_answerer``: the providers in order — the assistant's provider (else
  ``ASSISTANT_PROVIDER``), then its fallbacks — always ending with the extractive answerer;
- ``turn_budget``: how many sources and tokens of context and history a turn may use, never
  more than the main model's window leaves after the answer, the history and the instructions;
- ``choose_condenser``: rules for the extractive answerer, the main model otherwise (with the
  rules as its fallback).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Hashable
from concurrent.futures import Executor

from assistant.assistants import AssistantConfig
from assistant.chat.answerer import Answerer, Brand
from assistant.chat.condense import Condenser, ProviderCondenser, RuleBasedCondenser
from assistant.chat.conversations import ConversationStore
from assistant.chat.orchestrator import ChatOrchestrator, TurnBudget
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import ChatProvider
from assistant.chat.providers import provider_from_name
from assistant.chat.tokens import context_window, counter_for
from assistant.knowledge.long_lived import settle
from assistant.knowledge.results import TURN_HITS
from assistant.knowledge.retriever import SearchResult
from assistant.settings import Settings

__all__ = [
    "INSTRUCTION_TOKENS",
    "MIN_CONTEXT_TOKENS",
    "AnswererCache",
    "build_answerer",
    "build_orchestrator",
    "choose_condenser",
    "provider_chain",
    "turn_budget",
]

INSTRUCTION_TOKENS = 800
"""Room kept in the window for the system prompt and the source delimiters."""
MIN_CONTEXT_TOKENS = 256
"""The context never shrinks below this, however small the window."""


def provider_chain(
    config: AssistantConfig, settings: Settings, extractive: ChatProvider
) -> list[ChatProvider]:
    """The providers in the order they are tried, ``extractive`` last.

    The model setting names the main provider's model; fallbacks use their defaults.
    """
    answering = config.answering
    names = [
        part.strip()
        for part in (answering.provider or settings.provider).split(",")
        if part.strip()
    ]
    names += [name for name in answering.fallbacks if name not in names]
    providers: list[ChatProvider] = []
    for position, name in enumerate(names):
        if name == "extractive":
            continue
        providers.append(
            provider_from_name(
                name,
                settings,
                model=(answering.model or settings.model) if position == 0 else None,
                temperature=answering.temperature,
                max_output_tokens=answering.max_output_tokens,
            )
        )
    providers.append(extractive)
    return providers


def build_answerer(
    kb: str, config: AssistantConfig, settings: Settings, extractive: ChatProvider
) -> Answerer:
    """The answerer of ``kb``'s assistant: its provider chain, prompts and brand."""
    brand = config.brand
    display_name = brand.display_name or kb
    prompts_dir = settings.prompts_dir
    return Answerer(
        provider_chain(config, settings, extractive),
        prompts=PromptLibrary(prompts_dir) if prompts_dir else None,
        brand=Brand(
            assistant_name=display_name,
            company=brand.company or display_name,
            tone=brand.tone,
            custom_instructions=brand.custom_instructions,
            language=brand.language,
            no_answer_message=brand.no_answer_message,
        ),
    )


def turn_budget(config: AssistantConfig, settings: Settings, main: ChatProvider) -> TurnBudget:
    """How much of ``main``'s window a turn may fill.

    The context never pushes the prompt past the model's window: room is kept for the answer,
    the earlier turns and the instructions.
    """
    model = getattr(main, "model", None)
    max_output = config.answering.max_output_tokens or 1024
    window = context_window(main.name, model)
    history_tokens = settings.history_tokens
    context_tokens = config.retrieval.context_tokens or settings.context_tokens
    context_tokens = max(
        MIN_CONTEXT_TOKENS,
        min(context_tokens, window - max_output - history_tokens - INSTRUCTION_TOKENS),
    )
    context_k = config.retrieval.context_k or settings.context_k
    return TurnBudget(
        context_k=context_k,
        context_tokens=context_tokens,
        history_tokens=history_tokens,
        candidates=max(TURN_HITS, 4 * context_k),
        max_message_chars=config.limits.max_message_chars,
    )


def choose_condenser(kb: str, answerer: Answerer) -> Condenser:
    """Rules for the extractive answerer; the main model otherwise, with the rules as fallback."""
    # The brand's own name is in most questions; it is never what "it" refers to.
    rules = RuleBasedCondenser(
        ignored_terms=[kb, answerer.brand.assistant_name, answerer.brand.company]
    )
    main = answerer.providers[0]
    if main.name == "extractive":
        return rules
    return ProviderCondenser(main, answerer.prompts, fallback=rules)


def build_orchestrator(
    kb: str,
    config: AssistantConfig,
    settings: Settings,
    *,
    answerer: Answerer,
    search: Callable[[str, int], SearchResult],
    conversations: ConversationStore | None,
    executor: Executor | None,
) -> ChatOrchestrator:
    """The chat orchestrator of ``kb``: ``search`` runs in ``executor``."""
    main = answerer.providers[0]
    threshold = config.retrieval.no_answer_threshold
    return ChatOrchestrator(
        assistant=kb,
        search=search,
        answerer=answerer,
        condenser=choose_condenser(kb, answerer),
        counter=counter_for(main.name, getattr(main, "model", None)),
        conversations=conversations,
        budget=turn_budget(config, settings, main),
        no_answer_threshold=settings.no_answer_threshold if threshold is None else threshold,
        decline_unknown_names=(
            settings.decline_unknown_names
            if config.retrieval.decline_unknown_names is None
            else config.retrieval.decline_unknown_names
        ),
        executor=executor,
    )


class AnswererCache:
    """Answerers by key, one set per event loop: vendor SDK clients bind their connection
    pools to the loop they were made on, so each loop gets its own providers."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, Answerer]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Answerer]) -> Answerer:
        """The running loop's answerer for ``key``, built by ``build`` on first use."""
        loop = asyncio.get_running_loop()
        with self._lock:
            answerers = self._by_loop.setdefault(loop, {})
            answerer = answerers.get(key)
            built = answerer is None
            if answerer is None:
                answerer = answerers[key] = build()
        if built:
            # Kept while the settings stay: its provider clients, and the SDK modules they
            # imported, are out of the collector's passes from now on (collected and frozen
            # outside the lock, which other event loops' turns wait on).
            settle()
        return answerer

    async def close(self) -> None:
        """Close the provider clients of the running loop's answerers and forget them."""
        with self._lock:
            answerers = self._by_loop.pop(asyncio.get_running_loop(), {})
        for answerer in answerers.values():
            for provider in answerer.providers:
                close = getattr(provider, "aclose", None)
                if close is not None:
                    await close()
