"""Per-assistant settings: brand, provider, retrieval, access, limits, webhook, handoff, leads
and custom domains.

Pydantic models with no database at import, so the HTTP client reads an assistant's
configuration into the same ``AssistantConfig`` that ``Assistant.config`` returns. Where the
configurations are kept is ``assistant.assistants.AssistantRegistry``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from assistant.engagement_config import HandoffConfig, LeadFormConfig, WebhookConfig

__all__ = [
    "AssistantConfig",
    "BrandConfig",
    "LimitsConfig",
    "ProviderConfig",
    "RetrievalConfig",
]

_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class _Strict(BaseModel):
    # A misspelt field is an error, not a silently ignored setting. Validators are built on
    # first use rather than at import, which keeps importing the HTTP client quick.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class BrandConfig(_Strict):
    """How the assistant presents itself and speaks."""

    display_name: str = Field(default="", max_length=80)
    """Shown in the widget and used in prompts; empty means the assistant's name."""
    company: str = Field(default="", max_length=120)
    """Whose content it answers from, as said in prompts ("the Harbor team")."""
    tone: str = Field(default="", max_length=500)
    """One or two sentences on voice: "Friendly and concise; no jargon."."""
    custom_instructions: str = Field(default="", max_length=4000)
    language: str = Field(default="auto", max_length=16)
    """``auto`` answers in the language of each question; a code (``de``) fixes one."""
    greeting: str = Field(default="", max_length=500)
    no_answer_message: str = Field(default="", max_length=1000)
    """Said when nothing relevant is found; empty means the default in ``prompts/``."""
    suggested_questions: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=10
    )
    logo_url: HttpUrl | None = None
    public_base_url: HttpUrl | None = None
    """Where the site publishes the files ingested from disk: visitors are linked to this URL
    joined with a file's name. Unset: visitors see local files by title only, never their
    server path."""
    primary_colour: str = "#2563eb"
    """The widget's colour; the widget darkens or lightens it where text on it would fail
    WCAG AA contrast."""
    position: Literal["bottom-right", "bottom-left"] = "bottom-right"
    """Corner of the page where the widget's launcher sits."""
    z_index: int = Field(default=2147483000, ge=0, le=2147483647)
    """Stacking order of the widget on the host page."""

    @field_validator("primary_colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR.match(value):
            raise ValueError("use a hex colour such as #2563eb")
        return value


class ProviderConfig(_Strict):
    """Which model answers; unset fields come from ``ASSISTANT_PROVIDER`` / ``ASSISTANT_MODEL``."""

    provider: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_output_tokens: int | None = Field(default=None, ge=16, le=32_000)
    fallbacks: list[str] = Field(default_factory=list, max_length=5)
    """Providers tried in order when the main one fails before its first token; the
    extractive answerer always ends the chain."""


class RetrievalConfig(_Strict):
    """How much context a turn gets and when the assistant declines to answer."""

    context_k: int | None = Field(default=None, ge=1, le=50)
    context_tokens: int | None = Field(default=None, ge=256, le=200_000)
    no_answer_threshold: float | None = Field(default=None, ge=-1.0, le=1.0)
    decline_unknown_names: bool | None = None
    """Decline a question naming something no page mentions (``None``: the server's setting)."""


class LimitsConfig(_Strict):
    """Requests per minute accepted per key and per widget visitor."""

    requests_per_minute: int = Field(default=120, ge=1, le=100_000)
    visitor_requests_per_minute: int = Field(default=20, ge=1, le=10_000)
    max_message_chars: int = Field(default=4000, ge=100, le=100_000)


class AssistantConfig(_Strict):
    """Everything configurable about one assistant.

    >>> AssistantConfig(brand=BrandConfig(company="Harbor")).brand.language
    'auto'
    """

    brand: BrandConfig = Field(default_factory=BrandConfig)
    answering: ProviderConfig = Field(default_factory=ProviderConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    allowed_origins: list[str] = Field(default_factory=list, max_length=50)
    """Origins (``https://www.example.com``) whose pages may use the public widget key."""
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    retention_days: int | None = Field(default=None, ge=1, le=36_500)
    """Conversations with no turn for this many days are deleted with their turns, feedback
    and analytics; ``None`` keeps them."""
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    """Where new handoffs and leads are sent, signed."""
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    lead_form: LeadFormConfig = Field(default_factory=LeadFormConfig)
    custom_domains: list[str] = Field(default_factory=list, max_length=10)
    """Host names (``help.example.com``) whose ``/`` serves this assistant's full page."""

    @field_validator("custom_domains")
    @classmethod
    def _domains(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            domain = value.strip().rstrip(".").lower()
            if not _DOMAIN.match(domain):
                raise ValueError(f"{value!r} is not a host name; use e.g. help.example.com")
            cleaned.append(domain)
        return cleaned

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        cleaned = []
        for value in values:
            origin = value.strip().rstrip("/").lower()
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"{value!r} is not an origin; use scheme://host[:port], e.g. https://example.com"
                )
            cleaned.append(origin)
        return cleaned
