"""The answerer over real providers: fallback before the first token, errors after it,
``[n]`` markers mapped to citations, and the assistant configured through the environment.

The LLM side is a local server speaking OpenAI's wire protocol, driven by the real SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from assistant.chat.answerer import Answerer, citations_from_markers, drain
from assistant.chat.events import ErrorEvent, Source, TextDelta
from assistant.chat.extractive import ExtractiveProvider
from assistant.chat.providers import ProviderOptions
from assistant.chat.providers.openai import OpenAIProvider
from assistant.core import Assistant
from assistant.knowledge.encoder import TransformerEncoder
from tests.chat.fake_openai import Drop, Fail, FakeOpenAIServer, Stream


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def openai_provider(fake: FakeOpenAIServer) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(
        ProviderOptions(api_key="sk-test", base_url=fake.url, max_retries=0, timeout_seconds=5.0)
    )
    yield provider
    await provider.aclose()


def _sources() -> tuple[Source, ...]:
    texts = [
        ("https://help.example/billing", "Annual plans are refunded in full within 14 days."),
        ("https://help.example/security", "SSO works with Okta and Microsoft Entra ID."),
    ]
    return tuple(
        Source(i, f"c{i}", url.rsplit("/", 1)[-1], url, (), text, 0.6)
        for i, (url, text) in enumerate(texts, start=1)
    )


async def test_llm_answer_markers_become_citations_and_unknown_markers_are_dropped(
    fake: FakeOpenAIServer, openai_provider: OpenAIProvider, encoder: TransformerEncoder
) -> None:
    fake.script(Stream(("Refunds take ", "14 days [1]. See also [7].")))
    answerer = Answerer([openai_provider, ExtractiveProvider(encoder)])
    answer = await drain("refund?", answerer.stream("refund?", _sources()))
    # The marker for a source that was not given never reaches the client.
    assert answer.answer == "Refunds take 14 days [1]. See also ."
    assert [(c.n, c.url) for c in answer.citations] == [(1, "https://help.example/billing")]
    assert answer.provider.startswith("openai:")
    sent = fake.requests[0].body["messages"]
    assert sent[0]["role"] == "system" and "Cite every claim" in sent[0]["content"]
    assert '<source n="1"' in sent[1]["content"] and "refund?" in sent[1]["content"]


@pytest.mark.parametrize("failure", [Fail(401, error_type="invalid_api_key"), Fail(500)])
async def test_a_provider_failing_before_its_first_token_falls_back(
    fake: FakeOpenAIServer,
    openai_provider: OpenAIProvider,
    encoder: TransformerEncoder,
    failure: Fail,
) -> None:
    fake.script(failure)
    answerer = Answerer([openai_provider, ExtractiveProvider(encoder)])
    answer = await drain(
        "how long is the refund window?",
        answerer.stream("how long is the refund window?", _sources()),
    )
    assert answer.error is None and answer.provider == "extractive"
    assert "14 days" in answer.answer and answer.citations[0].n == 1


async def test_a_failure_after_the_first_token_ends_with_an_error_and_keeps_the_text(
    fake: FakeOpenAIServer, openai_provider: OpenAIProvider, encoder: TransformerEncoder
) -> None:
    fake.script(Drop(("Refunds take ", "14 days")))
    answerer = Answerer([openai_provider, ExtractiveProvider(encoder)])
    events = [event async for event in answerer.stream("refund?", _sources())]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Refunds take 14 days"
    assert isinstance(events[-1], ErrorEvent) and events[-1].code == "ProviderUnavailableError"


def test_citations_from_markers_keep_first_occurrence_order() -> None:
    sources = tuple(Source(n, f"c{n}", f"t{n}", f"u{n}", (), f"text {n}", 1.0) for n in (1, 2, 3))
    cited = citations_from_markers("b [2] a [1] again [2] bad [0] [4]", sources)
    assert [c.n for c in cited] == [2, 1]


def test_the_assistant_uses_the_configured_provider_chain(
    fake: FakeOpenAIServer,
    make_assistant: Callable[..., Assistant],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
    (tmp_path / "refunds.md").write_text(
        "# Refunds\n\nAnnual plans are refunded in full within 14 days.\n", encoding="utf-8"
    )
    assistant = make_assistant(provider="openai", model="gpt-test")
    assistant.ingest([str(tmp_path / "refunds.md")])
    fake.script(Stream(("You get a full refund within 14 days [1].",), 40, 9))
    answer = assistant.ask("can I get a refund?")
    assert answer.provider == "openai:gpt-test" and answer.usage.input_tokens == 40
    assert answer.citations[0].url.endswith("refunds.md")
    assert fake.requests[-1].body["model"] == "gpt-test"
    fake.script(Fail(503))  # the provider is down: the extractive answerer still answers
    fallback = assistant.ask("can I get a refund?")
    assert fallback.provider == "extractive" and "14 days" in fallback.answer
