"""Per-assistant settings of the engagement features: webhook, handoff to a person, lead form.

Pydantic models only (no database, no HTTP), so ``assistant.config`` and the HTTP client can
import them cheaply; the behaviour lives in ``assistant.webhooks``, ``assistant.handoff`` and
``assistant.leads``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

__all__ = [
    "HandoffConfig",
    "LeadField",
    "LeadFieldKind",
    "LeadFieldRule",
    "LeadFormConfig",
    "LeadScoringConfig",
    "WebhookConfig",
]

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


class LeadFieldRule(_Strict):
    """Points a lead earns when its field ``field`` is filled in (and, with ``pattern``, when
    the value matches that regular expression, case-insensitively)."""

    field: str = Field(pattern=_KEY)
    points: int = Field(ge=-100, le=100)
    pattern: str = Field(default="", max_length=300)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern is not a regular expression: {exc}") from None
        return pattern


_FREE_MAIL = r"@(?!(?:gmail|googlemail|yahoo|hotmail|outlook|live|icloud|me|aol|gmx|web|proton|protonmail|mail|yandex)\.)"


def _default_rules() -> list[LeadFieldRule]:
    return [
        LeadFieldRule(field="email", points=10, pattern=_FREE_MAIL),
        LeadFieldRule(field="phone", points=10),
        LeadFieldRule(field="company", points=15),
    ]


def _default_pricing_terms() -> list[str]:
    return [
        "price",
        "pricing",
        "cost",
        "quote",
        "plan",
        "upgrade",
        "buy",
        "purchase",
        "demo",
        "trial",
        "discount",
        "licen",
        "subscription",
        "invoice",
    ]


class LeadScoringConfig(_Strict):
    """How a lead's 0-100 score is made: ``base`` for leaving contact details, the field
    rules, points per question asked in its conversation (up to ``max_question_points``),
    ``pricing_points`` when a question mentions one of ``pricing_terms``, and
    ``topic_points`` per question topic (a term of a question cluster's label). Clamped to
    0-100.

    The defaults favour what sales teams usually act on first: a work email (not a free-mail
    domain), a phone number or company given, an engaged visitor (five questions make the
    most of it), and above all pricing intent, the strongest buying signal a help-centre
    chat shows. A lead that only left the required name and email scores 20; one from a work
    address that asked four questions about plans and prices scores 75.
    """

    base: int = Field(default=20, ge=0, le=100)
    field_rules: list[LeadFieldRule] = Field(default_factory=_default_rules, max_length=24)
    points_per_question: int = Field(default=5, ge=0, le=100)
    max_question_points: int = Field(default=20, ge=0, le=100)
    pricing_points: int = Field(default=25, ge=0, le=100)
    pricing_terms: list[Annotated[str, Field(min_length=2, max_length=40)]] = Field(
        default_factory=_default_pricing_terms, max_length=50
    )
    topic_points: dict[Annotated[str, Field(min_length=2, max_length=60)], int] = Field(
        default_factory=dict, max_length=50
    )


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
    scoring: LeadScoringConfig = Field(default_factory=LeadScoringConfig)
    """How the analytics score each lead (0-100)."""

    @field_validator("fields")
    @classmethod
    def _unique_keys(cls, fields: list[LeadField]) -> list[LeadField]:
        keys = [field.key for field in fields]
        if len(set(keys)) != len(keys):
            raise ValueError("each lead form field needs its own key")
        return fields
