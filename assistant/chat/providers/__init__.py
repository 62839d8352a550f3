"""Answer providers by name: OpenAI and the OpenAI-compatible presets.

``provider_from_name`` builds a provider from its name, the configured model and the vendor's own
environment variables. Each name maps to a small factory that imports its SDK only when called, so
importing this package stays light.

Usage::

    provider = provider_from_name("deepseek", model=None)  # reads DEEPSEEK_API_KEY
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypedDict, Unpack

from assistant.chat.provider import ChatProvider
from assistant.chat.providers.presets import PRESETS
from assistant.errors import ConfigError

__all__ = ["ProviderOptions", "available_providers", "check_limits", "provider_from_name"]


class ProviderOptions(TypedDict, total=False):
    """Settings every provider accepts besides its model and environment."""

    temperature: float | None
    max_output_tokens: int | None
    timeout_seconds: float
    connect_timeout_seconds: float
    max_retries: int


def check_limits(
    *,
    max_output_tokens: int | None,
    timeout_seconds: float,
    connect_timeout_seconds: float,
    max_retries: int,
) -> None:
    """Refuse limits no request could be made with, naming the value (``ConfigError``)."""
    if max_output_tokens is not None and max_output_tokens < 1:
        raise ConfigError(f"max_output_tokens must be at least 1, got {max_output_tokens}")
    if timeout_seconds <= 0 or connect_timeout_seconds <= 0:
        raise ConfigError(
            f"timeouts must be positive, got timeout_seconds={timeout_seconds} and "
            f"connect_timeout_seconds={connect_timeout_seconds}"
        )
    if max_retries < 0:
        raise ConfigError(f"max_retries must be 0 or more, got {max_retries}")


ProviderFactory = Callable[[str | None, Mapping[str, str], ProviderOptions], ChatProvider]
"""Builds a provider from ``(model, environ, options)``."""


def _openai(
    model: str | None, environ: Mapping[str, str], options: ProviderOptions
) -> ChatProvider:
    from assistant.chat.providers.openai import OpenAIProvider

    return OpenAIProvider.from_env(model, environ, **options)


def _anthropic(
    model: str | None, environ: Mapping[str, str], options: ProviderOptions
) -> ChatProvider:
    from assistant.chat.providers.anthropic import AnthropicProvider

    return AnthropicProvider.from_env(model, environ, **options)


def _google(
    model: str | None, environ: Mapping[str, str], options: ProviderOptions
) -> ChatProvider:
    from assistant.chat.providers.google import GoogleProvider

    return GoogleProvider.from_env(model, environ, **options)


def _preset(name: str) -> ProviderFactory:
    def build(
        model: str | None, environ: Mapping[str, str], options: ProviderOptions
    ) -> ChatProvider:
        from assistant.chat.providers.openai import OpenAIProvider

        return OpenAIProvider.from_preset(PRESETS[name], model, environ, **options)

    return build


_FACTORIES: dict[str, ProviderFactory] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "google": _google,
    **{name: _preset(name) for name in PRESETS},
}


def available_providers() -> list[str]:
    """The names ``provider_from_name`` accepts, sorted."""
    return sorted(_FACTORIES)


def provider_from_name(
    name: str,
    *,
    model: str | None,
    environ: Mapping[str, str] = os.environ,
    **options: Unpack[ProviderOptions],
) -> ChatProvider:
    """Build the provider called ``name``; ``model`` ``None`` means the provider's default.

    Raises ``ConfigError`` for an unknown name (listing the valid ones), ``ProviderAuthError``
    when the provider's key variable is unset.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ConfigError(
            f"Unknown provider {name!r}; choose one of: {', '.join(available_providers())}."
        )
    return factory(model, environ, options)
