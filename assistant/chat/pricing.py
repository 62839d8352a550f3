"""What an answer cost, estimated from the vendors' published per-token prices.

The table holds the standard (non-batch, uncached) price per million input and output tokens of
well-known models, as each vendor published it on its pricing page. Prices change: the figures
are estimates, for dashboards and budgets, not for billing. Pass ``prices`` to use your own
(negotiated rates, newer models); an entry there replaces the table's entry of the same name.
Where a vendor charges more above a prompt-length threshold (Gemini 2.5 Pro above 200k
tokens), the table holds the lower tier.

>>> estimate_cost("openai", "gpt-4o-mini", input_tokens=2_000, output_tokens=500)
0.0006
>>> estimate_cost("anthropic", "claude-sonnet-4-5", 2_000, 500)
0.0135
>>> estimate_cost("xai", "grok-9-ultra", 2_000, 500) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from assistant.chat.tokens import lookup_model

__all__ = ["FREE", "PRICES", "Price", "estimate_cost", "price_for"]

_FREE_PROVIDERS = frozenset({"extractive", "ollama", "vllm", "lmstudio"})


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million input (prompt) and output (completion) tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The price of ``input_tokens`` in and ``output_tokens`` out, in US dollars."""
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000


FREE = Price(0.0, 0.0)
"""The price of answers that call no paid model."""

PRICES: Mapping[str, Price] = MappingProxyType(
    {
        # openai.com/api/pricing and platform.openai.com/docs/pricing (standard tier).
        "gpt-4o": Price(2.50, 10.00),
        "gpt-4o-mini": Price(0.15, 0.60),
        "chatgpt-4o": Price(5.00, 15.00),
        "gpt-4.1": Price(2.00, 8.00),
        "gpt-4.1-mini": Price(0.40, 1.60),
        "gpt-4.1-nano": Price(0.10, 0.40),
        "gpt-5": Price(1.25, 10.00),
        "gpt-5-mini": Price(0.25, 2.00),
        "gpt-5-nano": Price(0.05, 0.40),
        "o1": Price(15.00, 60.00),
        "o1-mini": Price(1.10, 4.40),
        "o1-pro": Price(150.00, 600.00),
        "o3": Price(2.00, 8.00),
        "o3-mini": Price(1.10, 4.40),
        "o3-pro": Price(20.00, 80.00),
        "o4-mini": Price(1.10, 4.40),
        # anthropic.com/pricing and docs.anthropic.com, "Pricing". The bare family names stand
        # for later models of a family at its latest published price.
        "claude-3-haiku": Price(0.25, 1.25),
        "claude-3-5-haiku": Price(0.80, 4.00),
        "claude-haiku-4-5": Price(1.00, 5.00),
        "claude-haiku": Price(1.00, 5.00),
        "claude-3-5-sonnet": Price(3.00, 15.00),
        "claude-3-7-sonnet": Price(3.00, 15.00),
        "claude-sonnet-4": Price(3.00, 15.00),
        "claude-sonnet": Price(3.00, 15.00),
        "claude-3-opus": Price(15.00, 75.00),
        "claude-opus-4": Price(15.00, 75.00),
        "claude-opus-4-5": Price(5.00, 25.00),
        "claude-opus": Price(5.00, 25.00),
        # ai.google.dev/gemini-api/docs/pricing (paid tier, text input).
        "gemini-1.5-flash": Price(0.075, 0.30),
        "gemini-1.5-pro": Price(1.25, 5.00),
        "gemini-2.0-flash": Price(0.10, 0.40),
        "gemini-2.0-flash-lite": Price(0.075, 0.30),
        "gemini-2.5-flash": Price(0.30, 2.50),
        "gemini-2.5-flash-lite": Price(0.10, 0.40),
        "gemini-2.5-pro": Price(1.25, 10.00),
        # api-docs.deepseek.com, "Models & Pricing" (V3.2, cache-miss input).
        "deepseek-chat": Price(0.28, 0.42),
        "deepseek-reasoner": Price(0.28, 0.42),
        # docs.x.ai, "Models and Pricing".
        "grok-3": Price(3.00, 15.00),
        "grok-3-mini": Price(0.30, 0.50),
        "grok-4": Price(3.00, 15.00),
        "grok-4-fast": Price(0.20, 0.50),
    }
)
"""Published prices by model name or family, matched as ``lookup_model`` matches names."""


def price_for(
    provider: str, model: str | None, prices: Mapping[str, Price] | None = None
) -> Price | None:
    """The price of ``model`` from ``PRICES`` with ``prices`` laid over it.

    An entry of ``prices`` replaces the table's entry of the same name and adds the others;
    the most specific name still wins (an entry for ``gpt-4o`` does not price ``gpt-4o-mini``).

    Free (``FREE``) for the extractive answerer, which calls no model, and for local servers
    (``ollama``, ``vllm``, ``lmstudio``), which charge nothing per token whatever the model is
    called. ``None`` where no price is known, ``model`` ``None`` (the provider's default) too.
    """
    if provider in _FREE_PROVIDERS:
        return FREE
    if model is None:
        return None
    if not prices:
        return lookup_model(PRICES, model)
    return lookup_model({**PRICES, **{key.lower(): value for key, value in prices.items()}}, model)


def estimate_cost(
    provider: str,
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    *,
    prices: Mapping[str, Price] | None = None,
) -> float | None:
    """The estimated cost of one answer in US dollars, or ``None`` where it is not known.

    The extractive answerer and local servers cost ``0.0``. A hosted model with no entry in
    ``prices`` or ``PRICES`` (a new release, a fine-tune) gives ``None``, so a dashboard shows
    "unknown" rather than a wrong zero.
    """
    price = price_for(provider, model, prices)
    if price is None:
        return None
    return round(price.cost(input_tokens, output_tokens), 8)
