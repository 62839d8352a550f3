"""Token counts for prompt budgets: the model's own tokenizer where it can be had, else a bound.

OpenAI's models count with their tiktoken encoding. tiktoken fetches an encoding file on first
use (from the internet, or from ``TIKTOKEN_CACHE_DIR`` where it was placed beforehand); each
encoding is tried at most once per process, and where it cannot be loaded counts fall back to
``ApproximateCounter``. Every other model (Claude, Gemini, DeepSeek, Qwen, GLM, Grok, local
models) counts with ``ApproximateCounter``, whose estimate errs on the high side so that a budget
is not overrun.

>>> counter = counter_for("anthropic", "claude-sonnet-4-5")
>>> counter.name
'approximate'
>>> context_window("anthropic", "claude-sonnet-4-5")
200000
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Protocol, TypeVar

import tiktoken

from assistant.chat.history import HistoryTurn

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "MESSAGE_OVERHEAD_TOKENS",
    "ApproximateCounter",
    "EncodingLoader",
    "PromptTokenCounter",
    "TiktokenCounter",
    "context_window",
    "counter_for",
    "lookup_model",
    "trim_history",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_CONTEXT_WINDOW = 8192
"""The window assumed for unknown and local models: the server, not the name, decides it."""

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat message costs beyond its text (role and separators, per OpenAI's count)."""

_LOCAL_PROVIDERS = frozenset({"ollama", "vllm", "lmstudio"})


class PromptTokenCounter(Protocol):
    """Counts the tokens a model would see for a piece of text."""

    name: str

    def count(self, text: str) -> int:
        """Return the number of tokens of ``text``."""
        ...


class TiktokenCounter:
    """Exact counts with a tiktoken encoding (OpenAI's models)."""

    def __init__(self, encoding: tiktoken.Encoding) -> None:
        self._encoding = encoding
        self.name: str = encoding.name

    def count(self, text: str) -> int:
        """Tokens of ``text``; special-token markers in it count as plain text."""
        return len(self._encoding.encode(text, disallowed_special=()))


# Runs of ASCII letters, single digits, single spaces, other whitespace runs, any other
# character alone: the pieces whose costs are listed in ApproximateCounter's docstring.
_PIECES = re.compile(r"[A-Za-z]+|[0-9]| |\s+|.", re.DOTALL)


class ApproximateCounter:
    """A deliberately high estimate for models whose tokenizer is not available here.

    The text is cut into pieces, each costed as follows:

    - a run of ASCII letters: one token per started three letters (``ceil(length / 3)``);
    - a digit: one token (SentencePiece models such as Gemini's and Qwen's split numbers into
      digits);
    - an ASCII punctuation mark: one token;
    - a single space: nothing (BPE vocabularies attach it to the next word); any other run of
      whitespace: one token per started four characters;
    - a non-ASCII character: by its length in UTF-8, one token for two bytes (accented Latin,
      Greek, Cyrillic, Arabic, Hebrew), two for three bytes (Hangul, Indic and Thai scripts) but
      one and a half for CJK ideographs and kana, three for four bytes (emoji).

    The tests hold the estimate to at least the count of a 30k English WordPiece vocabulary
    (all-MiniLM-L6-v2's) on English, French, Spanish, German, Finnish, Russian, Arabic, Hindi,
    Chinese, Japanese and Korean text, on code and on identifiers; English prose comes out at
    1.5 to 1.7 times that count. The margin is thinnest on Latin-script languages whose words
    an English vocabulary does not know (Italian, Dutch, Polish): that WordPiece vocabulary
    needs up to 15% more tokens than this estimate there, where the multilingual vocabularies
    of chat models, trained on those languages, are expected to need fewer.

    >>> ApproximateCounter().count("Refunds take 14 days.")
    10
    """

    name = "approximate"

    def count(self, text: str) -> int:
        """Estimated tokens of ``text``, meant to be at or above what chat models count."""
        return _approximate_count(text)


# The context's passages are counted on every turn, and the same chunks (and their titles and
# addresses) come back in turn after turn: the estimate is a function of the text alone.
@functools.lru_cache(maxsize=1024)
def _approximate_count(text: str) -> int:
    half_tokens = 0
    for match in _PIECES.finditer(text):
        piece = match.group()
        first = piece[0]
        if piece == " ":
            continue
        if first.isspace():
            half_tokens += 2 * math.ceil(len(piece) / 4)
        elif first.isascii():
            half_tokens += 2 * math.ceil(len(piece) / 3) if first.isalpha() else 2
        elif _CJK.match(first):
            half_tokens += 3
        else:
            half_tokens += _NON_ASCII_HALF_TOKENS[len(first.encode("utf-8"))]
    return math.ceil(half_tokens / 2)


# Half-tokens per non-ASCII character by its UTF-8 length; halves keep the arithmetic integral.
_NON_ASCII_HALF_TOKENS = {2: 2, 3: 4, 4: 6}
# Kana, CJK ideographs (extension A, unified, compatibility): the vocabularies of chat models
# that serve Chinese and Japanese hold most of them as single tokens.
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

_APPROXIMATE = ApproximateCounter()


class EncodingLoader:
    """Loads tiktoken encodings by name, trying each at most once; ``None`` where it cannot.

    ``load`` defaults to ``tiktoken.get_encoding``, which downloads the encoding file when it is
    not cached. A load that fails or takes longer than ``timeout_seconds`` (a firewall that
    drops packets rather than refusing them) counts as unavailable: that is logged once, and the
    caller counts with ``ApproximateCounter``.
    """

    def __init__(
        self,
        load: Callable[[str], tiktoken.Encoding] = tiktoken.get_encoding,
        *,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._load = load
        self._timeout_seconds = timeout_seconds
        self._lock = threading.Lock()
        self._encodings: dict[str, tiktoken.Encoding | None] = {}

    def __call__(self, name: str) -> tiktoken.Encoding | None:
        """The encoding called ``name``, or ``None`` if it could not be loaded."""
        with self._lock:
            if name not in self._encodings:
                self._encodings[name] = self._attempt(name)
            return self._encodings[name]

    def _attempt(self, name: str) -> tiktoken.Encoding | None:
        outcome: list[tiktoken.Encoding | BaseException] = []

        def run() -> None:
            try:
                outcome.append(self._load(name))
            except Exception as exc:  # any failure means "count approximately"
                outcome.append(exc)

        # A daemon thread, so a request that never returns cannot hold up the caller or exit.
        worker = threading.Thread(target=run, name=f"tiktoken-{name}", daemon=True)
        worker.start()
        worker.join(self._timeout_seconds)
        result = outcome[0] if outcome else None
        if isinstance(result, tiktoken.Encoding):
            return result
        reason = repr(result) if result is not None else f"no answer in {self._timeout_seconds}s"
        logger.info(
            "tiktoken encoding %s is unavailable (%s); token counts use the conservative "
            "approximation (place the encoding file in TIKTOKEN_CACHE_DIR to count exactly)",
            name,
            reason,
        )
        return None


_DEFAULT_LOADER = EncodingLoader()

_OPENAI_MODEL = re.compile(r"(gpt-|chatgpt-|o[1-9](?![0-9a-z]))")


def _normalized(model: str) -> str:
    """Lower case without a vendor or path prefix (``openai/gpt-4o``, ``models/gemini-2.5-pro``)."""
    return model.strip().lower().rsplit("/", 1)[-1]


def _is_openai_model(model: str | None) -> bool:
    return model is not None and _OPENAI_MODEL.match(_normalized(model)) is not None


def _encoding_name(model: str | None) -> str:
    """The model's tiktoken encoding; unlisted names by age (cl100k before GPT-4o, else o200k)."""
    if model is None:
        return "o200k_base"
    name = _normalized(model)
    try:
        return tiktoken.encoding_name_for_model(name)
    except KeyError:
        older = name.startswith("gpt-3.5") or (
            name.startswith("gpt-4") and not name.startswith(("gpt-4o", "gpt-4."))
        )
        return "cl100k_base" if older else "o200k_base"


@lru_cache(maxsize=64)
def counter_for(
    provider: str, model: str | None, *, loader: EncodingLoader | None = None
) -> PromptTokenCounter:
    """The token counter for ``model`` served by ``provider`` (``model`` ``None``: its default).

    OpenAI-family models (provider ``openai``, or names like ``gpt-*``, ``o1``/``o3``/``o4*``,
    ``chatgpt-*``) count with their tiktoken encoding when ``loader`` (by default one shared
    per process) can load it; everything else, and those when it cannot, with
    ``ApproximateCounter``.

    >>> counter_for("deepseek", "deepseek-chat").name
    'approximate'
    """
    if provider != "openai" and not _is_openai_model(model):
        return _APPROXIMATE
    encoding = (loader or _DEFAULT_LOADER)(_encoding_name(model))
    return TiktokenCounter(encoding) if encoding is not None else _APPROXIMATE


def lookup_model(table: Mapping[str, T], model: str) -> T | None:
    """The entry of ``table`` whose key is the longest prefix of ``model`` on a name boundary.

    Keys are lower-case model names or families. A key matches the model's name (lower-cased,
    vendor prefix such as ``openai/`` removed) when it equals it or is followed by ``-``, ``:``
    or ``@``, or by a digit after a letter (``qwen`` matches ``qwen2.5-72b``); ``gpt-4`` does
    not match ``gpt-4o`` nor ``gpt-4.1``.

    >>> lookup_model({"gpt-4o": 1, "gpt-4o-mini": 2}, "openai/gpt-4o-mini-2024-07-18")
    2
    """
    name = _normalized(model)
    for key in sorted(table, key=len, reverse=True):
        if name == key:
            return table[key]
        if name.startswith(key) and key:
            following = name[len(key)]
            if following in "-:@" or (key[-1].isalpha() and following.isdigit()):
                return table[key]
    return None


# Context windows in tokens (prompt and answer together), from each vendor's model pages.
_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.5": 128_000,
    "gpt-5": 400_000,
    "gpt-oss": 131_072,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o1-preview": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
    "gemini": 1_048_576,
    "gemini-1.5-pro": 2_097_152,
    "deepseek": 128_000,
    "qwen": 131_072,
    "qwen-max": 32_768,
    "glm": 128_000,
    "glm-4.6": 200_000,
    "grok": 131_072,
    "grok-4": 256_000,
    "grok-4-fast": 2_000_000,
}

# The window of each provider's default model, for ``model=None``.
_PROVIDER_WINDOWS: dict[str, int] = {
    "openai": 128_000,
    "openrouter": 128_000,
    "anthropic": 200_000,
    "google": 1_048_576,
    "xai": 256_000,
    "deepseek": 128_000,
    "qwen": 131_072,
    "glm": 128_000,
}


def context_window(provider: str, model: str | None) -> int:
    """The context window of ``model`` in tokens; ``DEFAULT_CONTEXT_WINDOW`` where unknown.

    Local servers (``ollama``, ``vllm``, ``lmstudio``) get the default whatever the model's
    name: the window is a setting of the server there (Ollama's ``num_ctx``), often far below
    what the model supports. ``model`` ``None`` means the provider's default model.
    """
    if provider in _LOCAL_PROVIDERS:
        return DEFAULT_CONTEXT_WINDOW
    if model is None:
        return _PROVIDER_WINDOWS.get(provider, DEFAULT_CONTEXT_WINDOW)
    window = lookup_model(_CONTEXT_WINDOWS, model)
    return window if window is not None else DEFAULT_CONTEXT_WINDOW


def trim_history(
    turns: Sequence[HistoryTurn], *, counter: PromptTokenCounter, budget_tokens: int
) -> list[HistoryTurn]:
    """The most recent ``turns`` whose questions and answers fit ``budget_tokens``, in order.

    Each turn costs its question and answer plus ``MESSAGE_OVERHEAD_TOKENS`` for each of the two
    messages. Turns are dropped oldest first; a turn that does not fit ends the walk, so the
    kept turns are always the unbroken tail of the conversation.
    """
    kept: list[HistoryTurn] = []
    used = 0
    for turn in reversed(turns):
        cost = (
            counter.count(turn.question) + counter.count(turn.answer) + 2 * MESSAGE_OVERHEAD_TOKENS
        )
        if used + cost > budget_tokens:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    return kept
