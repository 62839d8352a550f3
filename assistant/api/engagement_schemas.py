"""Request and response bodies of handoffs, leads and webhook deliveries.

Visitors (public keys) see ``HandoffVisitorPublic``: the status and the messages, never the
transcript's internals or other visitors' data. Owners (admin or secret key) see
``HandoffPublic`` with the transcript and the webhook deliveries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistant.handoff import Handoff, HandoffMessage
from assistant.webhooks import WebhookDelivery

__all__ = [
    "DeliveryPublic",
    "HandoffCreate",
    "HandoffList",
    "HandoffMessagePublic",
    "HandoffPublic",
    "HandoffReply",
    "HandoffUpdate",
    "HandoffVisitorPublic",
    "LeadCreate",
    "LeadCreated",
    "LeadList",
    "LeadPublic",
    "TranscriptEntryPublic",
    "delivery_public",
    "handoff_public",
    "handoff_visitor_public",
]

_ID = r"^[0-9a-f]{32}$"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HandoffCreate(_Request):
    """A visitor asks for a person, about their conversation (if any yet)."""

    conversation_id: str | None = Field(default=None, pattern=_ID)
    message: str = Field(default="", max_length=2000)


class HandoffReply(_Request):
    """An agent's reply, shown to the visitor in the widget."""

    text: str = Field(min_length=1, max_length=8000)
    author: str = Field(default="", max_length=120)


class HandoffUpdate(_Request):
    """A new status."""

    status: Literal["open", "answered", "closed"]


class HandoffMessagePublic(BaseModel):
    """A message after the request: an agent's (``role="agent"``) or the visitor's."""

    id: int
    role: str
    author: str
    text: str
    created_at: datetime


class TranscriptEntryPublic(BaseModel):
    """A turn of the conversation before the request."""

    question: str
    answer: str
    outcome: str


class DeliveryPublic(BaseModel):
    """A webhook delivery: ``pending``, ``delivered`` or ``failed`` after ``attempts``."""

    id: str
    event: str
    subject: str
    url: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class HandoffVisitorPublic(BaseModel):
    """A handoff as its visitor sees it."""

    id: str
    status: str
    messages: list[HandoffMessagePublic]
    created_at: datetime


class HandoffPublic(HandoffVisitorPublic):
    """A handoff as the assistant's owner sees it."""

    conversation_id: str | None
    channel: str
    message: str
    transcript: list[TranscriptEntryPublic]
    updated_at: datetime
    deliveries: list[DeliveryPublic] = Field(default_factory=list)


class HandoffList(BaseModel):
    """Handoffs, newest first (without their deliveries)."""

    handoffs: list[HandoffPublic]


class LeadCreate(_Request):
    """Contact details from the widget's form, by field key."""

    fields: dict[str, str] = Field(max_length=12)
    consent: bool = False
    conversation_id: str | None = Field(default=None, pattern=_ID)


class LeadCreated(BaseModel):
    """The stored lead's id."""

    id: str


class LeadPublic(BaseModel):
    """A stored lead."""

    id: str
    conversation_id: str | None
    fields: dict[str, str]
    consent: str
    created_at: datetime


class LeadList(BaseModel):
    """Leads, newest first."""

    leads: list[LeadPublic]


def _messages(messages: tuple[HandoffMessage, ...]) -> list[HandoffMessagePublic]:
    return [
        HandoffMessagePublic(
            id=m.id, role=m.role, author=m.author, text=m.text, created_at=m.created_at
        )
        for m in messages
    ]


def delivery_public(delivery: WebhookDelivery) -> DeliveryPublic:
    """The API shape of a delivery."""
    return DeliveryPublic(
        id=delivery.id,
        event=delivery.event,
        subject=delivery.subject,
        url=delivery.url,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        finished_at=delivery.finished_at,
    )


def handoff_visitor_public(handoff: Handoff) -> HandoffVisitorPublic:
    """What the visitor's widget gets."""
    return HandoffVisitorPublic(
        id=handoff.id,
        status=handoff.status,
        messages=_messages(handoff.messages),
        created_at=handoff.created_at,
    )


def handoff_public(
    handoff: Handoff, deliveries: list[WebhookDelivery] | None = None
) -> HandoffPublic:
    """What the assistant's owner gets."""
    return HandoffPublic(
        id=handoff.id,
        status=handoff.status,
        messages=_messages(handoff.messages),
        created_at=handoff.created_at,
        conversation_id=handoff.conversation_id,
        channel=handoff.channel,
        message=handoff.message,
        transcript=[
            TranscriptEntryPublic(question=t.question, answer=t.answer, outcome=t.outcome)
            for t in handoff.transcript
        ],
        updated_at=handoff.updated_at,
        deliveries=[delivery_public(d) for d in deliveries or []],
    )
