"""Answer providers by name: OpenAI, Anthropic, Google and the OpenAI-compatible presets.

``provider_from_name`` builds a provider from its name, the settings (which hold every vendor's
key and base URL under the vendor's own variable name) and the assistant's answering options.
Each name maps to a small factory that imports its SDK only when called, so importing this
package stays light.

Usage::

    provider = provider_from_name("deepseek", settings, model=None)  # DEEPSEEK_API_KEY
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.chat.provider import ChatProvider
from assistant.chat.providers.options import ProviderOptions, check_limits
from assistant.chat.providers.presets import PRESETS
from assistant.errors import ConfigError

if TYPE_CHECKING:
    from assistant.settings import Settings

__all__ = [
    "ProviderOptions",
    "available_providers",
    "check_limits",
    "provider_from_name",
    "vendor_variables",
]


def _openai(options: ProviderOptions) -> ChatProvider:
    from assistant.chat.providers.openai import OpenAIProvider

    return OpenAIProvider(options)


def _anthropic(options: ProviderOptions) -> ChatProvider:
    from assistant.chat.providers.anthropic import AnthropicProvider

    return AnthropicProvider(options)


def _google(options: ProviderOptions) -> ChatProvider:
    from assistant.chat.providers.google import GoogleProvider

    return GoogleProvider(options)


def _preset(name: str) -> Callable[[ProviderOptions], ChatProvider]:
    def build(options: ProviderOptions) -> ChatProvider:
        from assistant.chat.providers.openai import OpenAIProvider

        return OpenAIProvider.from_preset(PRESETS[name], options)

    return build


@dataclass(frozen=True, slots=True)
class _Entry:
    """How to build one provider: the variables of its key and base URL, and the adapter."""

    key_variable: str | None
    base_url_variable: str
    build: Callable[[ProviderOptions], ChatProvider]


_REGISTRY: dict[str, _Entry] = {
    "openai": _Entry("OPENAI_API_KEY", "OPENAI_BASE_URL", _openai),
    "anthropic": _Entry("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", _anthropic),
    "google": _Entry("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", _google),
    **{
        name: _Entry(preset.key_variable, preset.base_url_variable, _preset(name))
        for name, preset in PRESETS.items()
    },
}


def available_providers() -> list[str]:
    """The names ``provider_from_name`` accepts, sorted."""
    return sorted(_REGISTRY)


def vendor_variables(name: str) -> tuple[str | None, str]:
    """The variables holding provider ``name``'s key (``None``: it needs none) and base URL."""
    entry = _entry(name)
    return entry.key_variable, entry.base_url_variable


def provider_from_name(
    name: str,
    settings: Settings,
    *,
    model: str | None,
    temperature: float | None = None,
    max_output_tokens: int | None = None,
    timeout_seconds: float = 60.0,
    connect_timeout_seconds: float = 5.0,
    max_retries: int = 2,
) -> ChatProvider:
    """Build the provider called ``name``; ``model`` ``None`` means the provider's default.

    The key and base URL come from ``settings`` (the environment or ``.env``, under the
    vendor's own variable names). Raises ``ConfigError`` for an unknown name (listing the valid
    ones), ``ProviderAuthError`` when the provider's key variable is unset.
    """
    entry = _entry(name)
    options = ProviderOptions(
        api_key=settings.vendor_key(entry.key_variable) if entry.key_variable else None,
        base_url=settings.vendor_base_url(entry.base_url_variable),
        model=model,
        temperature=temperature,
        max_output_tokens=max_output_tokens,
        timeout_seconds=timeout_seconds,
        connect_timeout_seconds=connect_timeout_seconds,
        max_retries=max_retries,
    )
    return entry.build(options)


def _entry(name: str) -> _Entry:
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ConfigError(
            f"Unknown provider {name!r}; choose one of: {', '.join(available_providers())}."
        )
    return entry
