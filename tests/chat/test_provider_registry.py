"""Building each vendor's provider by name from settings: the same checks for every vendor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from assistant.chat.providers import provider_from_name
from assistant.chat.providers.anthropic import DEFAULT_ANTHROPIC_MODEL, AnthropicProvider
from assistant.chat.providers.google import DEFAULT_GOOGLE_MODEL, GoogleProvider
from assistant.chat.providers.openai import DEFAULT_MODEL as DEFAULT_OPENAI_MODEL
from assistant.chat.providers.openai import OpenAIProvider
from assistant.errors import ProviderAuthError
from tests.chat import fake_anthropic, fake_google, fake_openai
from tests.support.settings import vendor_settings


@contextmanager
def _vendor_environment(name: str) -> Iterator[dict[str, str]]:
    """A fake of the vendor's API and the variables that point the provider at it."""
    if name == "openai":
        with fake_openai.FakeOpenAIServer() as openai_server:
            yield {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai_server.url}
    elif name == "anthropic":
        with fake_anthropic.FakeAnthropic() as anthropic_server:
            yield {
                "ANTHROPIC_API_KEY": "sk-ant-test",
                "ANTHROPIC_BASE_URL": anthropic_server.base_url,
            }
    else:
        with fake_google.FakeGemini() as gemini_server:
            yield {
                "GEMINI_API_KEY": "AIza-test",
                "GOOGLE_GEMINI_BASE_URL": gemini_server.api_base_url,
            }


@pytest.mark.parametrize(
    ("name", "provider_class", "default_model"),
    [
        ("openai", OpenAIProvider, DEFAULT_OPENAI_MODEL),
        ("anthropic", AnthropicProvider, DEFAULT_ANTHROPIC_MODEL),
        ("google", GoogleProvider, DEFAULT_GOOGLE_MODEL),
    ],
)
async def test_the_registry_builds_it_by_name(
    name: str, provider_class: type[object], default_model: str
) -> None:
    with _vendor_environment(name) as environ:
        provider = provider_from_name(name, vendor_settings(environ), model=None, max_retries=0)
        assert isinstance(provider, OpenAIProvider | AnthropicProvider | GoogleProvider)
        try:
            assert type(provider) is provider_class
            assert provider.model == default_model
            assert provider.max_retries == 0
        finally:
            await provider.aclose()


@pytest.mark.parametrize(
    ("name", "environ", "variable"),
    [
        ("openai", {}, "OPENAI_API_KEY"),
        ("openai", {"OPENAI_API_KEY": ""}, "OPENAI_API_KEY"),
        ("anthropic", {}, "ANTHROPIC_API_KEY"),
        ("anthropic", {"ANTHROPIC_API_KEY": ""}, "ANTHROPIC_API_KEY"),
        ("google", {}, "GEMINI_API_KEY"),
        ("google", {"GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""}, "GEMINI_API_KEY"),
    ],
)
def test_a_missing_key_fails_at_construction_naming_the_variable(
    name: str, environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ProviderAuthError, match=variable):
        provider_from_name(name, vendor_settings(environ), model=None)
