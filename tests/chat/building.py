"""Providers built for one test and closed after it, whatever the vendor."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from assistant.chat.providers import ProviderOptions


class _Closable(Protocol):
    async def aclose(self) -> None: ...


ProviderT = TypeVar("ProviderT", bound=_Closable)


@asynccontextmanager
async def building(
    factory: Callable[[ProviderOptions], ProviderT], **defaults: Any
) -> AsyncIterator[Callable[..., ProviderT]]:
    """Yield ``build(**overrides)``, which makes a provider from ``defaults | overrides``;
    every provider built is closed on exit."""
    built: list[ProviderT] = []

    def build(**overrides: Any) -> ProviderT:
        provider = factory(ProviderOptions(**(defaults | overrides)))
        built.append(provider)
        return provider

    try:
        yield build
    finally:
        for provider in built:
            await provider.aclose()
