"""Per-assistant settings of the engagement features: webhook, handoff to a person, lead form.

Pydantic models only (no database, no HTTP), so ``assistant.config`` and the HTTP client can
import them cheaply; the behaviour lives in ``assistant.webhooks``, ``assistant.handoff`` and
``assistant.leads``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

__all__ = ["HandoffConfig", "LeadField", "LeadFieldKind", "LeadFormConfig", "WebhookConfig"]

LeadFieldKind = Literal["name", "email", "phone", "company", "text"]
_KEY = r"^[a-z][a-z0-9_]{0,31}$"


class _Strict(BaseModel):
    # Misspelt fields are errors; validators are built on first use (quick client import).
    model_config = ConfigDict(extra="forbid", defer_build=True)


class WebhookConfig(_Strict):
    """Where an assistant's events go and the secret they are signed with."""

    url: HttpUrl | None = None
    """The endpoint; none means no webhook."""
    secret: str = Field(default="", max_length=200, repr=False)
    """Shared with the receiver to check signatures; at least 16 characters with a URL."""

    @model_validator(mode="after")
    def _secret_with_url(self) -> WebhookConfig:
        if self.url is not None and len(self.secret) < 16:
            raise ValueError("a webhook needs a secret of at least 16 characters to sign with")
        return self


class HandoffConfig(_Strict):
    """Whether visitors may ask for a person, and what they are told then."""

    enabled: bool = False
    confirmation: str = Field(default="", max_length=500)
    """Shown once the request is made; empty means the widget's default text."""


class LeadField(_Strict):
    """One field of the form: its key, its kind (checks and input type), label and whether
    it is required."""

    key: str = Field(pattern=_KEY)
    kind: LeadFieldKind = "text"
    label: str = Field(default="", max_length=80)
    required: bool = False


def _default_fields() -> list[LeadField]:
    return [
        LeadField(key="name", kind="name", label="Name", required=True),
        LeadField(key="email", kind="email", label="Email", required=True),
    ]


class LeadFormConfig(_Strict):
    """An assistant's lead form and when the widget shows it."""

    enabled: bool = False
    title: str = Field(default="", max_length=120)
    fields: list[LeadField] = Field(default_factory=_default_fields, min_length=1, max_length=12)
    consent_text: str = Field(default="", max_length=1000)
    """When set, the visitor must tick a box with this text before sending."""
    show: Literal["before_chat", "after_messages", "on_request"] = "on_request"
    after_messages: int = Field(default=3, ge=1, le=100)
    """With ``show="after_messages"``: how many questions the visitor asks first."""

    @field_validator("fields")
    @classmethod
    def _unique_keys(cls, fields: list[LeadField]) -> list[LeadField]:
        keys = [field.key for field in fields]
        if len(set(keys)) != len(keys):
            raise ValueError("each lead form field needs its own key")
        return fields
