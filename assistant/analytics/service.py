"""The analytics report of an ``Assistant``'s knowledge base: what its facade method runs.

It hands the report the parts the product has already loaded (database, encoders, prompts)
and the knowledge base's page list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from assistant.analytics.aggregate_topics import clustering_of
from assistant.analytics.insights import InsightEncoders
from assistant.analytics.lead_quality import scored_leads, scored_leads_csv
from assistant.analytics.period import period_from
from assistant.analytics.records import Page
from assistant.analytics.report import AnalyticsOptions, AnalyticsReport, build_report
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import ChatProvider
from assistant.chat.providers import provider_from_name
from assistant.config import AssistantConfig
from assistant.database.engine import Database
from assistant.errors import AssistantError
from assistant.knowledge.encoder import Encoder, TokenEncoder
from assistant.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["ReportParts", "answering_provider", "assistant_report", "leads_export"]


class _StoredDocument(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def title(self) -> str: ...


class ReportParts(Protocol):
    """What a report needs of an ``Assistant`` (which satisfies it); named here so that
    analytics does not depend on the core that calls it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def database(self) -> Database: ...

    @property
    def encoder(self) -> Encoder: ...

    @property
    def late_encoder(self) -> TokenEncoder: ...

    def documents(self, *, kb: str = "default") -> Sequence[_StoredDocument]: ...

    def config(self, kb: str = "default") -> AssistantConfig: ...


def assistant_report(
    assistant: ReportParts,
    kb: str,
    *,
    since: str = "30d",
    mask: bool = True,
    drill_down: bool = True,
) -> AnalyticsReport:
    """``kb``'s report from ``since`` until now, computed with ``assistant``'s own parts
    (``drill_down=False``: without each cluster's turn ids, which HTTP does not send).

    Raises:
        InvalidInputError: ``since`` cannot be read.
        NotFoundError: ``kb`` does not exist.
    """
    period = period_from(since)
    documents = [Page(state.url, state.title) for state in assistant.documents(kb=kb)]
    prompts_dir = assistant.settings.prompts_dir
    return build_report(
        assistant.database,
        kb,
        period,
        encoders=InsightEncoders(assistant.encoder, assistant.late_encoder),
        documents=documents,
        options=AnalyticsOptions(
            mask=mask,
            turn_ids=1000 if drill_down else 0,
            lead_scoring=assistant.config(kb).lead_form.scoring,
        ),
        prompts=PromptLibrary(prompts_dir) if prompts_dir else PromptLibrary(),
    )


def leads_export(assistant: ReportParts, kb: str, *, since: str = "30d") -> str:
    """``kb``'s scored leads from ``since`` until now as CSV, under its scoring rules.

    Raises:
        InvalidInputError: ``since`` cannot be read.
        NotFoundError: ``kb`` does not exist.
    """
    form = assistant.config(kb).lead_form
    clustering = clustering_of(assistant.database, kb)
    leads = scored_leads(
        assistant.database,
        kb,
        period_from(since),
        form.scoring,
        clustering[1] if clustering is not None else (),
    )
    return scored_leads_csv(leads, form)


def answering_provider(assistant: ReportParts, kb: str) -> ChatProvider | None:
    """``kb``'s answering model, to name clusters and grade answers; ``None`` when it answers
    extractively (offline) or its provider cannot be built (no key: logged)."""
    answering = assistant.config(kb).answering
    name = answering.provider or assistant.settings.provider
    if name == "extractive":
        return None
    try:
        return provider_from_name(
            name, assistant.settings, model=answering.model or assistant.settings.model
        )
    except AssistantError as exc:
        logger.warning("analytics of %r without a language model: %s", kb, exc)
        return None
