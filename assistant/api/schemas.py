"""Request and response models shared by the API's routers (``XCreate`` / ``XUpdate`` /
``XPublic``).

Pydantic models live at the HTTP edge only; the core speaks dataclasses. Requests forbid unknown
fields, so a misspelt field is a 422 instead of a silently ignored setting.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.assistants import AssistantConfig
from assistant.engagement_config import LeadFormConfig

__all__ = [
    "ASSISTANT_NAME_PATTERN",
    "AssistantCreate",
    "AssistantList",
    "AssistantPublic",
    "AssistantUpdate",
    "HealthPublic",
    "KeyCreate",
    "KeyCreated",
    "KeyList",
    "KeyPublic",
    "Problem",
    "ReadinessPublic",
    "WidgetPublic",
]

ASSISTANT_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$"
"""An assistant's name is its knowledge base's name: 1-63 lowercase letters, digits, ``-``, ``_``."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssistantCreate(_Request):
    """A new assistant: its name (also its knowledge base's) and, optionally, its settings."""

    name: str = Field(pattern=ASSISTANT_NAME_PATTERN, examples=["help-centre"])
    config: AssistantConfig = Field(default_factory=AssistantConfig)


class AssistantUpdate(_Request):
    """A partial change of settings, by section; fields left out keep their values.

    ``{"brand": {"tone": "Warm and brief."}, "limits": {"requests_per_minute": 60}}``
    """

    brand: dict[str, Any] | None = None
    answering: dict[str, Any] | None = None
    retrieval: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    allowed_origins: list[str] | None = None
    webhook: dict[str, Any] | None = None
    handoff: dict[str, Any] | None = None
    lead_form: dict[str, Any] | None = None
    custom_domains: list[str] | None = None


class AssistantPublic(BaseModel):
    """An assistant as the API shows it; ``created_at`` is ``None`` for a knowledge base made
    by the command line that has no stored settings yet."""

    name: str
    config: AssistantConfig
    created_at: datetime | None = None


class AssistantList(BaseModel):
    """Every assistant, by name."""

    assistants: list[AssistantPublic]


class KeyCreate(_Request):
    """A new key: ``secret`` (server to server) or ``public`` (the website widget)."""

    kind: Literal["secret", "public"]
    label: str = Field(default="", max_length=200)


class KeyPublic(BaseModel):
    """A key without its secret part: ``prefix`` is the start of the key, safe to show."""

    id: str
    kind: Literal["secret", "public"]
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class KeyCreated(KeyPublic):
    """A key just created; ``key`` is shown this once and cannot be read back."""

    key: str


class KeyList(BaseModel):
    """An assistant's keys, revoked ones included."""

    keys: list[KeyPublic]


class WidgetPublic(BaseModel):
    """What the website widget needs to present the assistant."""

    name: str
    display_name: str
    greeting: str
    suggested_questions: list[str]
    logo_url: str | None
    primary_colour: str
    """The brand colour, adjusted where needed so that ``on_primary_colour`` text on it meets
    WCAG AA (4.5:1)."""
    on_primary_colour: str = "#ffffff"
    position: Literal["bottom-right", "bottom-left"] = "bottom-right"
    z_index: int = 2147483000
    language: str = "auto"
    handoff: bool = False
    """Whether the visitor may ask to talk to a person."""
    handoff_confirmation: str = ""
    lead_form: LeadFormConfig | None = None
    """The contact form, when the assistant collects leads."""


class HealthPublic(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


class ReadinessPublic(BaseModel):
    """Readiness: each dependency is ``ok`` or ``unavailable``; ``redis`` only when configured."""

    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unavailable"]
    chroma: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable"] | None = None


class Problem(BaseModel):
    """An error (``application/problem+json``); ``code`` is stable, ``detail`` is for people."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None
