"""An embeddable chatbot RAG backend with late-interaction reranking.

Importing the package reads no environment, opens no connection and loads no model: the heavy
parts are imported on first use of the names below.

>>> from assistant import Assistant, Settings  # doctest: +SKIP
>>> bot = Assistant.from_settings(Settings())  # doctest: +SKIP
>>> bot.ingest(["examples/help-centre"])  # doctest: +SKIP
>>> print(bot.ask("How much does the Team plan cost?").answer)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from assistant.errors import (
    AssistantError,
    BlockedURLError,
    CacheError,
    ConfigError,
    ConnectorError,
    DocumentTooLargeError,
    EncoderError,
    FetchError,
    NotFoundError,
    ParseError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
    StoreError,
    TooLargeError,
    UnsupportedContentError,
)

if TYPE_CHECKING:
    from assistant.chat.events import Answer, Citation
    from assistant.core import Assistant
    from assistant.knowledge.reports import IngestReport
    from assistant.knowledge.results import SearchHit, SearchResult
    from assistant.settings import Settings

__all__ = [
    "Answer",
    "Assistant",
    "AssistantError",
    "BlockedURLError",
    "CacheError",
    "Citation",
    "ConfigError",
    "ConnectorError",
    "DocumentTooLargeError",
    "EncoderError",
    "FetchError",
    "IngestReport",
    "NotFoundError",
    "ParseError",
    "ProviderAuthError",
    "ProviderBadRequestError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderUnavailableError",
    "SearchHit",
    "SearchResult",
    "Settings",
    "StoreError",
    "TooLargeError",
    "UnsupportedContentError",
]

# Names resolved lazily, so that `import assistant` stays free of torch, Chroma and settings;
# the value types come from their light modules, so using one loads no model library either.
_LAZY = {
    "Answer": "assistant.chat.events",
    "Assistant": "assistant.core",
    "Citation": "assistant.chat.events",
    "IngestReport": "assistant.knowledge.reports",
    "SearchHit": "assistant.knowledge.results",
    "SearchResult": "assistant.knowledge.results",
    "Settings": "assistant.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
