"""Vendor keys and base URLs: read from a real ``.env`` under the vendors' own names, kept secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from assistant.chat.providers import provider_from_name
from assistant.chat.providers.anthropic import AnthropicProvider
from assistant.chat.providers.openai import OpenAIProvider
from assistant.errors import ProviderAuthError
from assistant.settings import Settings

OPENAI_KEY = "sk-dotenv-0123456789secret"
ANTHROPIC_KEY = "sk-ant-dotenv-secret-value"


@pytest.fixture
def env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a ``.env`` and no vendor variable in the process environment."""
    for name in Settings.model_fields:
        for variable in Settings.environment_variable_names(name):
            monkeypatch.delenv(variable, raising=False)
    (tmp_path / ".env").write_text(
        "ASSISTANT_PROVIDER=openai\n"
        f"OPENAI_API_KEY={OPENAI_KEY}\n"
        "OPENAI_BASE_URL=http://127.0.0.1:9/v1\n"
        f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}\n"
        "GEMINI_API_KEY=AIza-gemini-wins\n"
        "GOOGLE_API_KEY=AIza-google-loses\n"
        "DEEPSEEK_API_KEY=\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_vendor_variables_in_dot_env_are_read(env_dir: Path) -> None:
    settings = Settings()

    assert settings.provider == "openai"
    openai_key = settings.vendor_key("OPENAI_API_KEY")
    assert openai_key is not None and openai_key.get_secret_value() == OPENAI_KEY
    assert settings.vendor_base_url("OPENAI_BASE_URL") == "http://127.0.0.1:9/v1"
    gemini_key = settings.vendor_key("GEMINI_API_KEY")
    assert gemini_key is not None and gemini_key.get_secret_value() == "AIza-gemini-wins"
    assert settings.vendor_key("DEEPSEEK_API_KEY") is None, "an empty line means unset"


def test_google_api_key_stands_in_for_gemini_api_key(
    env_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (env_dir / ".env").write_text("GOOGLE_API_KEY=AIza-google-only\n", encoding="utf-8")

    key = Settings().vendor_key("GEMINI_API_KEY")

    assert key is not None and key.get_secret_value() == "AIza-google-only"


def test_the_environment_overrides_dot_env(env_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")

    key = Settings().vendor_key("OPENAI_API_KEY")

    assert key is not None and key.get_secret_value() == "sk-from-the-environment"


async def test_providers_are_built_from_dot_env(env_dir: Path) -> None:
    settings = Settings()

    openai_provider = provider_from_name("openai", settings, model=None)
    anthropic_provider = provider_from_name("anthropic", settings, model=None)
    try:
        assert isinstance(openai_provider, OpenAIProvider)
        assert openai_provider.base_url == "http://127.0.0.1:9/v1"
        assert isinstance(anthropic_provider, AnthropicProvider)
    finally:
        await openai_provider.aclose()
        await anthropic_provider.aclose()
    with pytest.raises(ProviderAuthError, match="DEEPSEEK_API_KEY"):
        provider_from_name("deepseek", settings, model=None)


def test_secrets_never_show_in_repr_logs_or_errors(
    env_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("assistant").info("settings: %s / %r", settings, settings)
        with pytest.raises(ValueError) as caught:
            Settings(max_tokens_per_text=1)
    shown = repr(settings) + str(settings) + caplog.text + str(caught.value)
    shown += repr(settings.model_dump()) + settings.model_dump_json()
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, "AIza-gemini-wins"):
        assert secret not in shown
