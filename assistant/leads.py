"""Leads: the contact details a visitor leaves through an assistant's form.

Each assistant configures its form (``lead_form``): which fields (name, email, phone, company
or custom text), which are required, the consent text the visitor must accept, and when the
widget shows it (before the chat, after some messages, or when the visitor asks). The widget
checks the values as typed; ``validate_lead`` checks them again on the server, against the
form as configured now, so a page cannot store fields the owner never asked for.

>>> form = LeadFormConfig(enabled=True)
>>> validate_lead(form, {"name": " Ada ", "email": "ada@example.com"}, consent=False)
{'name': 'Ada', 'email': 'ada@example.com'}
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from assistant.database.engine import Database
from assistant.database.models import LeadRow, utcnow
from assistant.engagement_config import LeadField, LeadFormConfig
from assistant.errors import InvalidInputError

__all__ = [
    "Lead",
    "LeadField",
    "LeadFormConfig",
    "LeadStore",
    "leads_csv",
    "validate_lead",
]

# Deliberately loose: one @, a dot in the domain, no spaces. Real checking is a sent email.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{6,24}$")
_LONGEST_VALUE = 500
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def validate_lead(form: LeadFormConfig, values: dict[str, str], *, consent: bool) -> dict[str, str]:
    """The values of ``form``'s fields, trimmed and checked.

    Raises:
        InvalidInputError: the form is off, a required field is empty, a value is malformed
            or too long, a field is not on the form, or consent was not given.
    """
    if not form.enabled:
        raise InvalidInputError("this assistant does not collect contact details")
    known = {field.key: field for field in form.fields}
    problems = [f"{key}: not a field of this form" for key in values if key not in known]
    cleaned: dict[str, str] = {}
    for key, field in known.items():
        value = " ".join(str(values.get(key, "")).split())
        if not value:
            if field.required:
                problems.append(f"{key}: required")
            continue
        if len(value) > _LONGEST_VALUE:
            problems.append(f"{key}: longer than {_LONGEST_VALUE} characters")
        elif field.kind == "email" and not _EMAIL.match(value):
            problems.append(f"{key}: not an email address")
        elif field.kind == "phone" and not _PHONE.match(value):
            problems.append(f"{key}: not a phone number")
        cleaned[key] = value
    if form.consent_text and not consent:
        problems.append("consent: required")
    if problems:
        raise InvalidInputError("the contact details are not valid: " + "; ".join(problems))
    return cleaned


@dataclass(frozen=True, slots=True)
class Lead:
    """A stored lead."""

    id: str
    assistant: str
    conversation_id: str | None
    visitor: str | None
    fields: dict[str, str]
    consent: str
    created_at: datetime


def _lead(row: LeadRow) -> Lead:
    return Lead(
        id=row.id,
        assistant=row.assistant,
        conversation_id=row.conversation_id,
        visitor=row.visitor,
        fields={str(key): str(value) for key, value in row.fields.items()},
        consent=row.consent,
        created_at=row.created_at,
    )


class LeadStore:
    """Leads in the application database; every call is scoped to one assistant."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def add(
        self,
        assistant: str,
        fields: dict[str, str],
        *,
        consent: str = "",
        conversation_id: str | None = None,
        visitor: str | None = None,
    ) -> Lead:
        """Store validated ``fields`` (see ``validate_lead``)."""
        row = LeadRow(
            assistant=assistant,
            conversation_id=conversation_id,
            visitor=visitor,
            fields=dict(fields),
            consent=consent,
            created_at=utcnow(),
        )
        with self._database.session() as session:
            session.add(row)
            session.flush()
            return _lead(row)

    def list(self, assistant: str, *, limit: int = 1000, offset: int = 0) -> list[Lead]:
        """``assistant``'s leads, newest first."""
        query = (
            select(LeadRow)
            .where(LeadRow.assistant == assistant)
            .order_by(LeadRow.created_at.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._database.session() as session:
            return [_lead(row) for row in session.scalars(query).all()]


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Leads are typed by anyone on the web; a cell must never become a spreadsheet formula.
    return "'" + text if text.startswith(_FORMULA_START) else text


def leads_csv(leads: list[Lead], form: LeadFormConfig) -> str:
    """``leads`` as CSV: one column per form field (then any older field), with the date,
    conversation and consent."""
    keys = [field.key for field in form.fields]
    for lead in leads:
        keys.extend(key for key in lead.fields if key not in keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["id", "created_at", *keys, "conversation_id", "consent"])
    for lead in leads:
        writer.writerow(
            [
                lead.id,
                lead.created_at.isoformat(),
                *(_cell(lead.fields.get(key, "")) for key in keys),
                lead.conversation_id or "",
                _cell(lead.consent),
            ]
        )
    return buffer.getvalue()
