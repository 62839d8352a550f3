"""Analytics upkeep that runs on its own: retention, then insights and clusters of every
assistant with turns, so reports read what is already computed.

``maintain`` is one synchronous pass; ``maintenance_loop`` repeats it in a worker thread every
``interval_s`` seconds for as long as the API runs (started and cancelled by its lifespan).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from assistant.analytics.insights import InsightEncoders
from assistant.analytics.period import Period
from assistant.analytics.report import bring_up_to_date
from assistant.analytics.retention import apply_retention_everywhere
from assistant.analytics.service import ReportParts, answering_provider
from assistant.database.models import TurnRow
from assistant.errors import AssistantError

__all__ = ["MAINTENANCE_INTERVAL_S", "maintain", "maintenance_loop"]

logger = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_S = 600.0
"""Seconds between two passes of the API's analytics upkeep."""

_EVERYTHING_SINCE = datetime(2000, 1, 1, tzinfo=UTC)


def maintain(core: ReportParts, *, now: datetime | None = None) -> dict[str, int]:
    """Apply retention, then compute every assistant's missing insights, update its clusters
    (named and graded by its answering model, if it has one) and its totals. Returns the
    insights computed per assistant."""
    database = core.database
    apply_retention_everywhere(database, now=now)
    with database.session() as session:
        names = sorted(session.scalars(select(TurnRow.assistant).distinct()).all())
    everything = Period(_EVERYTHING_SINCE, (now or datetime.now(UTC)) + timedelta(seconds=1))
    encoders = InsightEncoders(core.encoder, core.late_encoder)
    return {
        name: bring_up_to_date(
            database, name, everything, encoders, provider=answering_provider(core, name)
        )
        for name in names
    }


async def maintenance_loop(
    core: ReportParts, *, interval_s: float = MAINTENANCE_INTERVAL_S, first_delay_s: float = 60.0
) -> None:
    """Run ``maintain`` after ``first_delay_s`` and then every ``interval_s`` until cancelled;
    a failed pass is logged and the next one runs on time."""
    await asyncio.sleep(first_delay_s)
    while True:
        try:
            await asyncio.to_thread(maintain, core)
        except (AssistantError, OSError, RuntimeError, ValueError) as exc:
            logger.warning("analytics upkeep failed, retrying in %.0fs: %s", interval_s, exc)
        await asyncio.sleep(interval_s)
