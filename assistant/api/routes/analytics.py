"""Analytics of an assistant for its owner: what visitors ask, what the content misses, how
well it answers, what it costs (admin key or the assistant's secret key).

``GET /api/assistants/{name}/analytics?since=30d`` returns the report as JSON;
``GET /api/assistants/{name}/analytics/gaps.csv`` the content gaps as CSV,
``GET /api/assistants/{name}/analytics/leads.csv`` the period's leads with their scores. Questions
are masked for emails, phone numbers and card numbers unless ``mask=false``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from assistant.analytics.export import gaps_csv
from assistant.api.analytics_schemas import AnalyticsPublic
from assistant.api.deps import CoreDep
from assistant.api.problems import error_responses
from assistant.api.sessions import SessionManageAccess

__all__ = ["router"]

router = APIRouter(
    prefix="/api/assistants",
    tags=["analytics"],
    responses=error_responses(401, 403, 404, 422, 429, 503),
)

SinceQuery = Annotated[
    str,
    Query(
        max_length=40,
        description="Start of the period: a duration back from now (30d, 12h, 2w) or an ISO date.",
    ),
]
MaskQuery = Annotated[
    bool, Query(description="Mask emails, phone numbers and card numbers in questions.")
]


# A ``since`` that cannot be read is a 400 ``invalid_input``.
@router.get("/{name}/analytics", response_model=AnalyticsPublic, responses=error_responses(400))
async def analytics(
    name: str,
    caller: SessionManageAccess,
    core: CoreDep,
    since: SinceQuery = "30d",
    mask: MaskQuery = True,
) -> AnalyticsPublic:
    """Top questions, content gaps, source usage, conversation quality, leads and volume of
    the period, each with the previous period for trend."""
    report = await run_in_threadpool(core.report, name, since=since, mask=mask, drill_down=False)
    return AnalyticsPublic.from_report(report)


@router.get(
    "/{name}/analytics/gaps.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The content gaps as CSV."},
        **error_responses(400),
    },
)
async def gaps_export(
    name: str,
    caller: SessionManageAccess,
    core: CoreDep,
    since: SinceQuery = "30d",
    mask: MaskQuery = True,
) -> Response:
    """The period's content gaps as CSV (one row per gap, with its suggestion)."""
    report = await run_in_threadpool(core.report, name, since=since, mask=mask, drill_down=False)
    return Response(
        gaps_csv(report.content_gaps),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-gaps.csv"'},
    )


@router.get(
    "/{name}/analytics/leads.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "The period's scored leads as CSV."},
        **error_responses(400),
    },
)
async def leads_export(
    name: str, caller: SessionManageAccess, core: CoreDep, since: SinceQuery = "30d"
) -> Response:
    """The period's leads as CSV, best score first, with the signals behind each score."""
    text = await run_in_threadpool(core.leads_csv, name, since=since)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-leads-scored.csv"'},
    )
