"""The analytics report of an ``Assistant``'s knowledge base: what its facade method runs.

It hands the report the parts the product has already loaded (database, encoders, prompts)
and the knowledge base's page list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from assistant.analytics.insights import InsightEncoders
from assistant.analytics.period import period_from
from assistant.analytics.records import Page
from assistant.analytics.report import AnalyticsOptions, AnalyticsReport, build_report
from assistant.chat.prompts import PromptLibrary
from assistant.database.engine import Database
from assistant.knowledge.encoder import Encoder, TokenEncoder
from assistant.settings import Settings

__all__ = ["ReportParts", "assistant_report"]


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
        options=AnalyticsOptions(mask=mask, turn_ids=1000 if drill_down else 0),
        prompts=PromptLibrary(prompts_dir) if prompts_dir else PromptLibrary(),
    )
