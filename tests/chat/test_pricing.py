"""Cost estimates from published prices: families matched longest name first, overrides,
free answers, unknown models."""

from __future__ import annotations

import doctest
import math

import pytest

import assistant.chat.pricing
from assistant.chat.pricing import FREE, PRICES, Price, estimate_cost, price_for


@pytest.mark.parametrize(
    ("provider", "model", "price"),
    [
        ("openai", "gpt-4o", Price(2.50, 10.00)),
        ("openai", "gpt-4o-2024-08-06", Price(2.50, 10.00)),
        ("openai", "gpt-4o-mini", Price(0.15, 0.60)),
        ("openai", "gpt-4o-mini-2024-07-18", Price(0.15, 0.60)),
        ("openai", "gpt-4.1", Price(2.00, 8.00)),
        ("openai", "gpt-4.1-mini", Price(0.40, 1.60)),
        ("openai", "gpt-4.1-nano-2025-04-14", Price(0.10, 0.40)),
        ("openai", "o3-mini", Price(1.10, 4.40)),
        ("openai", "o3-pro", Price(20.00, 80.00)),
        ("openrouter", "openai/gpt-4o-mini", Price(0.15, 0.60)),
        ("anthropic", "claude-3-5-haiku-20241022", Price(0.80, 4.00)),
        ("anthropic", "claude-haiku-4-5", Price(1.00, 5.00)),
        ("anthropic", "claude-sonnet-4-5-20250929", Price(3.00, 15.00)),
        ("anthropic", "claude-3-7-sonnet-latest", Price(3.00, 15.00)),
        ("anthropic", "claude-opus-4-1", Price(15.00, 75.00)),
        ("anthropic", "claude-opus-4-5", Price(5.00, 25.00)),
        ("google", "gemini-2.5-flash", Price(0.30, 2.50)),
        ("google", "gemini-2.5-flash-lite", Price(0.10, 0.40)),
        ("google", "models/gemini-2.5-pro", Price(1.25, 10.00)),
        ("google", "gemini-2.0-flash-001", Price(0.10, 0.40)),
        ("deepseek", "deepseek-chat", Price(0.28, 0.42)),
        ("xai", "grok-4-0709", Price(3.00, 15.00)),
        ("xai", "grok-4-fast-reasoning", Price(0.20, 0.50)),
    ],
)
def test_published_prices_by_model(provider: str, model: str, price: Price) -> None:
    assert price_for(provider, model) == price


def test_a_cost_is_tokens_times_price_per_million() -> None:
    cost = estimate_cost("openai", "gpt-4o", input_tokens=12_000, output_tokens=800)
    assert cost is not None
    assert math.isclose(cost, (12_000 * 2.50 + 800 * 10.00) / 1e6)
    assert estimate_cost("openai", "gpt-4o", 0, 0) == 0.0


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "my-finetune"),
        ("openai", "gpt-4.5-preview"),  # not in the table, and not gpt-4o's price
        ("google", "gemini-3.8-flash"),
        ("xai", "grok-9"),
        ("openai", None),
    ],
)
def test_unknown_models_have_no_estimate(provider: str, model: str | None) -> None:
    assert price_for(provider, model) is None
    assert estimate_cost(provider, model, 1_000, 1_000) is None


@pytest.mark.parametrize(
    ("provider", "model"), [("extractive", None), ("ollama", "llama3.1:8b"), ("vllm", "gpt-4o")]
)
def test_answers_that_call_no_paid_model_are_free(provider: str, model: str | None) -> None:
    assert price_for(provider, model) == FREE
    assert estimate_cost(provider, model, 5_000, 700) == 0.0


def test_overrides_win_and_add_models() -> None:
    prices = {"GPT-4o": Price(1.00, 4.00), "acme-large": Price(0.50, 0.50)}
    assert price_for("openai", "gpt-4o-2024-11-20", prices) == Price(1.00, 4.00)
    # The more specific name still wins: overriding gpt-4o leaves gpt-4o-mini's price.
    assert price_for("openai", "gpt-4o-mini", prices) == PRICES["gpt-4o-mini"]
    assert estimate_cost("vllm", "acme-large", 2_000_000, 0, prices=prices) == 0.0
    assert estimate_cost("openai", "acme-large", 2_000_000, 0, prices=prices) == 1.0
    # Models the overrides do not name keep the table's prices.
    assert price_for("anthropic", "claude-sonnet-4", prices) == PRICES["claude-sonnet"]


def test_the_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        PRICES["gpt-4o"] = Price(0.0, 0.0)  # type: ignore[index]


def test_the_documented_examples_hold() -> None:
    outcome = doctest.testmod(assistant.chat.pricing)
    assert outcome.attempted > 0 and outcome.failed == 0
