"""Provider names: the registry, the OpenAI-compatible presets and their variables."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatProvider, ChatRequest, Message, ProviderEvent
from assistant.chat.providers import available_providers, provider_from_name, vendor_variables
from assistant.chat.providers.openai import OpenAIProvider
from assistant.chat.providers.presets import PRESETS, Preset
from assistant.errors import ConfigError, ProviderAuthError
from assistant.settings import Settings
from tests.chat.fake_openai import FakeOpenAIServer, Stream
from tests.support.settings import vendor_settings

REQUEST = ChatRequest(
    question="What is late interaction?",
    sources=(),
    messages=(Message("user", "What is late interaction?"),),
)

KEYED = [preset for preset in PRESETS.values() if preset.key_variable is not None]
LOCAL = [preset for preset in PRESETS.values() if preset.key_variable is None]


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def build(name: str, environ: dict[str, str], model: str | None = None) -> OpenAIProvider:
    provider = provider_from_name(name, vendor_settings(environ), model=model)
    assert isinstance(provider, OpenAIProvider)
    return provider


async def drain(provider: ChatProvider) -> list[ProviderEvent]:
    try:
        return [event async for event in provider.stream(REQUEST)]
    finally:
        assert isinstance(provider, OpenAIProvider)
        await provider.aclose()


def test_every_preset_and_openai_are_available() -> None:
    names = available_providers()

    assert names == sorted(names)
    assert set(names) == {"openai", "anthropic", "google", *PRESETS}
    assert {"xai", "deepseek", "qwen", "glm", "openrouter", "ollama", "vllm", "lmstudio"} <= set(
        names
    )


def test_unknown_name_is_a_config_error_listing_the_valid_names() -> None:
    with pytest.raises(ConfigError, match="'gpt'") as caught:
        provider_from_name("gpt", vendor_settings(), model=None)

    for name in available_providers():
        assert name in str(caught.value)


def test_openai_reads_its_own_variables() -> None:
    environ = {"OPENAI_API_KEY": "sk-1", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}

    provider = build("openai", environ)

    assert (provider.name, provider.model, provider.base_url) == (
        "openai",
        "gpt-4o-mini",
        "http://127.0.0.1:9/v1",
    )
    with pytest.raises(ProviderAuthError, match="OPENAI_API_KEY"):
        build("openai", {})


@pytest.mark.parametrize("preset", PRESETS.values(), ids=list(PRESETS))
def test_preset_points_at_its_documented_endpoint(preset: Preset) -> None:
    environ = {preset.key_variable: "preset-key"} if preset.key_variable else {}

    provider = build(preset.name, environ, model=None if preset.default_model else "served-model")

    assert provider.name == preset.name
    assert provider.base_url == preset.base_url
    assert provider.key_variable == preset.key_variable
    assert provider.model == (preset.default_model or "served-model")
    assert preset.base_url.startswith("https://" if preset.key_variable else "http://127.0.0.1:")


@pytest.mark.parametrize("preset", KEYED, ids=[preset.name for preset in KEYED])
def test_preset_without_its_key_names_the_variable(preset: Preset) -> None:
    other_keys = {"OPENAI_API_KEY": "sk-openai"}  # another vendor's key must not stand in

    with pytest.raises(ProviderAuthError, match=str(preset.key_variable)):
        build(preset.name, other_keys)


@pytest.mark.parametrize("preset", LOCAL, ids=[preset.name for preset in LOCAL])
def test_local_preset_needs_no_key(preset: Preset) -> None:
    provider = build(preset.name, {}, model="served-model")

    assert provider.key_variable is None


@pytest.mark.parametrize("preset", PRESETS.values(), ids=list(PRESETS))
def test_base_url_variable_overrides_the_preset(preset: Preset) -> None:
    environ = {preset.base_url_variable: "http://127.0.0.1:9/custom/v1"}
    if preset.key_variable:
        environ[preset.key_variable] = "preset-key"

    provider = build(preset.name, environ, model="any-model")

    assert provider.base_url == "http://127.0.0.1:9/custom/v1"
    assert provider.model == "any-model"


@pytest.mark.parametrize(
    "name", [preset.name for preset in PRESETS.values() if preset.default_model is None]
)
def test_preset_without_a_default_model_asks_for_one(name: str) -> None:
    with pytest.raises(ConfigError, match="ASSISTANT_MODEL"):
        build(name, {})


async def test_deepseek_preset_end_to_end(fake: FakeOpenAIServer) -> None:
    fake.script(Stream(("Late interaction ", "scores tokens."), 40, 5))
    environ = {"DEEPSEEK_API_KEY": "ds-key", "DEEPSEEK_BASE_URL": fake.url}
    provider = provider_from_name(
        "deepseek", vendor_settings(environ), model=None, max_output_tokens=64
    )

    events = await drain(provider)

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == (
        "Late interaction scores tokens."
    )
    assert events[-1] == DoneEvent(Usage(40, 5), "deepseek:deepseek-v4-flash")
    [sent] = fake.requests
    assert sent.headers["authorization"] == "Bearer ds-key"
    assert sent.body["model"] == "deepseek-v4-flash"
    assert sent.body["max_tokens"] == 64  # the field compatible servers understand
    assert "max_completion_tokens" not in sent.body


async def test_local_preset_never_sends_the_openai_key(
    fake: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-stay-with-openai")
    monkeypatch.setenv("OLLAMA_BASE_URL", fake.url)
    provider = provider_from_name("ollama", Settings(_env_file=None), model=None)  # type: ignore[call-arg]

    events = await drain(provider)

    assert events[-1] == DoneEvent(Usage(), "ollama:gpt-oss:20b")
    [sent] = fake.requests
    assert "sk-must-stay-with-openai" not in sent.headers.get("authorization", "")


def test_importing_the_registry_does_not_import_the_sdk() -> None:
    check = "import sys, assistant.chat.providers; print('openai' in sys.modules)"

    result = subprocess.run(
        [sys.executable, "-c", check],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )

    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("name", available_providers())
def test_every_provider_variable_is_a_setting(name: str) -> None:
    key_variable, base_url_variable = vendor_variables(name)
    settings = vendor_settings(
        {base_url_variable: "http://127.0.0.1:9/v1"}
        | ({key_variable: "a-key"} if key_variable else {})
    )

    assert settings.vendor_base_url(base_url_variable) == "http://127.0.0.1:9/v1"
    if key_variable:
        key = settings.vendor_key(key_variable)
        assert key is not None and key.get_secret_value() == "a-key"
