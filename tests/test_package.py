"""The package surface: curated exports, a light import, settings documented in .env.example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import assistant
import connectors
from assistant.chat.prompts import PROMPTS_DIR, PromptLibrary
from assistant.errors import ConfigError
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_exported_name_resolves() -> None:
    for module in (assistant, connectors):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"
    with pytest.raises(AttributeError):
        assistant.DoesNotExist  # noqa: B018


def test_importing_the_package_loads_no_model_library_and_reads_no_environment() -> None:
    code = (
        "import sys, assistant, assistant.errors;"
        "heavy = [m for m in ('torch', 'chromadb', 'transformers', 'redis', 'assistant.settings')"
        " if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    fields = {
        variable
        for name in Settings.model_fields
        for variable in Settings.environment_variable_names(name)
    }
    assert {f"ASSISTANT_{name.upper()}" for name in ("data_dir", "provider")} <= fields
    assert {"OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "DASHSCOPE_API_KEY"} <= fields
    assert documented == fields


def test_env_example_values_are_the_defaults() -> None:
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings == Settings(_env_file=None)  # type: ignore[call-arg]


def test_settings_split_allowed_hosts_and_treat_empty_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASSISTANT_FETCH_ALLOW_HOSTS", " 127.0.0.1, docs.internal ,10.0.0.0/8,")
    monkeypatch.setenv("ASSISTANT_REDIS_URL", "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.fetch_allow_hosts == ("127.0.0.1", "docs.internal", "10.0.0.0/8")
    assert settings.redis_url is None
    assert settings.fetch_policy().allow_hosts == settings.fetch_allow_hosts


def test_secrets_do_not_appear_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_REDIS_URL", "redis://:hunter2@cache:6379/0")
    monkeypatch.setenv("ASSISTANT_ADMIN_KEY", "admin-secret-value")
    shown = repr(Settings(_env_file=None))  # type: ignore[call-arg]
    assert "hunter2" not in shown and "admin-secret-value" not in shown


def test_every_prompt_template_renders() -> None:
    prompts = PromptLibrary()
    names = sorted(path.stem for path in PROMPTS_DIR.glob("*.txt"))
    assert {"system", "answer", "source", "condense_question", "no_answer", "handoff"} <= set(names)
    values = {
        "assistant_name": "Ava",
        "company": "Harbor",
        "tone": "Be brief.",
        "language": "de",
        "language_instruction": "Answer in German.",
        "custom_instructions": "",
        "sources": "<source/>",
        "question": "q?",
        "history": "h",
        "n": 1,
        "title": "t",
        "url": "u",
        "text": "x",
        "page": "Billing",
        "topic": "refunds",
        "asked": "3 questions",
        "example": "Can I get my money back?",
        "answer": "Yes, within 30 days.",
        "questions": "- Can I get my money back?",
    }
    for name in names:
        rendered = prompts.render(name, **values)
        assert rendered and "$" not in rendered, name
    with pytest.raises(ConfigError, match="needs a value"):
        prompts.render("source", n=1)
    with pytest.raises(ConfigError, match="cannot be read"):
        PromptLibrary(ROOT / "no-such-folder").render("system")
