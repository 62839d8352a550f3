"""Lead quality: leads per period, conversion from conversations, a 0-100 score per lead.

A lead's score (``score_lead``) adds, under the assistant's ``lead_form.scoring``: a base for
leaving contact details, the field rules (a work email, a phone number, a company...), points
per question the visitor asked in the lead's conversation, points for pricing intent (a
question that mentions a pricing term) and points per topic of its questions (a term of a
question cluster's label). Scores are computed when read, so a change of the rules applies
to every lead at once. Leads are few next to turns: every lead of the period is read.

>>> scoring = LeadScoringConfig()
>>> score_lead(scoring, {"email": "ada@harbor.io"}, ["What does the team plan cost?"], ())
(60, True)
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select

from assistant.analytics.period import Period
from assistant.analytics.types import LeadSummary, ScoredLead
from assistant.database.analytics_models import TurnInsightRow
from assistant.database.engine import Database
from assistant.database.models import LeadRow, TurnRow
from assistant.engagement_config import LeadFormConfig, LeadScoringConfig

__all__ = ["LEADS_LISTED", "lead_summary", "score_lead", "scored_leads", "scored_leads_csv"]

LEADS_LISTED = 50
"""Best-scored leads listed in a report (the CSV export has them all)."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def score_lead(
    scoring: LeadScoringConfig,
    fields: dict[str, str],
    questions: Sequence[str],
    topics: Sequence[str],
) -> tuple[int, bool]:
    """A lead's score (0-100) and whether its questions show pricing intent."""
    score = scoring.base
    for rule in scoring.field_rules:
        value = str(fields.get(rule.field, "")).strip()
        if value and (not rule.pattern or re.search(rule.pattern, value, re.IGNORECASE)):
            score += rule.points
    score += min(len(questions) * scoring.points_per_question, scoring.max_question_points)
    text = " ".join(questions).lower()
    pricing = any(term.lower() in text for term in scoring.pricing_terms)
    if pricing:
        score += scoring.pricing_points
    labels = " ".join(topics).lower()
    score += sum(points for term, points in scoring.topic_points.items() if term.lower() in labels)
    return max(0, min(100, score)), pricing


def _conversation_signals(
    database: Database, assistant: str, conversation_ids: Sequence[str], labels: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per conversation its questions and the labels of their clusters."""
    questions: dict[str, list[str]] = defaultdict(list)
    topics: dict[str, list[str]] = defaultdict(list)
    text = func.coalesce(func.nullif(TurnRow.standalone_question, ""), TurnRow.question)
    with database.session() as session:
        for start in range(0, len(conversation_ids), 500):
            rows = session.execute(
                select(TurnRow.conversation_id, text, TurnInsightRow.cluster)
                .outerjoin(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
                .where(
                    TurnRow.assistant == assistant,
                    TurnRow.conversation_id.in_(conversation_ids[start : start + 500]),
                )
                .order_by(TurnRow.conversation_id, TurnRow.position)
            ).all()
            for conversation_id, question, cluster in rows:
                questions[conversation_id].append(question)
                label = labels[cluster] if cluster is not None and cluster < len(labels) else ""
                if label and label not in topics[conversation_id]:
                    topics[conversation_id].append(label)
    return questions, topics


def scored_leads(
    database: Database,
    assistant: str,
    period: Period,
    scoring: LeadScoringConfig,
    labels: Sequence[str] = (),
) -> list[ScoredLead]:
    """Every lead of ``period``, best score first (then newest)."""
    with database.session() as session:
        rows = session.execute(
            select(LeadRow.id, LeadRow.created_at, LeadRow.fields, LeadRow.conversation_id).where(
                LeadRow.assistant == assistant,
                LeadRow.created_at >= period.since,
                LeadRow.created_at < period.until,
            )
        ).all()
    conversations = sorted({row.conversation_id for row in rows if row.conversation_id})
    questions, topics = _conversation_signals(database, assistant, conversations, labels)
    leads = []
    for row in rows:
        asked = questions.get(row.conversation_id or "", [])
        about = topics.get(row.conversation_id or "", [])
        fields = {str(key): str(value) for key, value in (row.fields or {}).items()}
        score, pricing = score_lead(scoring, fields, asked, about)
        leads.append(
            ScoredLead(
                id=row.id,
                created_at=row.created_at,
                fields=fields,
                conversation_id=row.conversation_id,
                score=score,
                questions=len(asked),
                pricing_intent=pricing,
                topics=tuple(about),
            )
        )
    leads.sort(key=lambda lead: (-lead.score, -lead.created_at.timestamp(), lead.id))
    return leads


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def lead_summary(
    database: Database,
    assistant: str,
    period: Period,
    scoring: LeadScoringConfig,
    *,
    conversations: int,
    previous_conversations: int,
    labels: Sequence[str] = (),
    buckets: int = 30,
    listed: int = LEADS_LISTED,
) -> LeadSummary:
    """The leads of ``period`` beside the previous period's; conversion is the share of the
    conversations started in a period whose conversation left a lead (``conversations``)."""
    leads = scored_leads(database, assistant, period, scoring, labels)
    previous = period.previous()
    with database.session() as session:
        previous_count, previous_converted = session.execute(
            select(func.count(), func.count(func.distinct(LeadRow.conversation_id))).where(
                LeadRow.assistant == assistant,
                LeadRow.created_at >= previous.since,
                LeadRow.created_at < previous.until,
            )
        ).one()
    daily = [0] * buckets
    for lead in leads:
        daily[period.bucket_of(lead.created_at, buckets)] += 1
    converted = len({lead.conversation_id for lead in leads if lead.conversation_id})
    return LeadSummary(
        count=len(leads),
        previous_count=int(previous_count),
        conversion_rate=_rate(converted, conversations),
        previous_conversion_rate=_rate(int(previous_converted), previous_conversations),
        average_score=sum(lead.score for lead in leads) / len(leads) if leads else None,
        daily=tuple(daily),
        items=tuple(leads[:listed]),
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Leads are typed by anyone on the web; a cell must never become a spreadsheet formula.
    return "'" + text if text.startswith(_FORMULA_START) else text


def scored_leads_csv(leads: Sequence[ScoredLead], form: LeadFormConfig) -> str:
    """``leads`` as CSV: score and signals, then one column per form field (then any older
    field), the date and the conversation."""
    keys = [field.key for field in form.fields]
    for lead in leads:
        keys.extend(key for key in lead.fields if key not in keys)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = ["id", "score", "questions", "pricing_intent", "topics", *keys]
    writer.writerow([*header, "created_at", "conversation_id"])
    for lead in leads:
        writer.writerow(
            [
                lead.id,
                lead.score,
                lead.questions,
                "yes" if lead.pricing_intent else "no",
                _cell(" | ".join(lead.topics)),
                *(_cell(lead.fields.get(key, "")) for key in keys),
                lead.created_at.isoformat(),
                lead.conversation_id or "",
            ]
        )
    return buffer.getvalue()
