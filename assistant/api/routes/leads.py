"""Leads over HTTP.

- ``POST /api/assistants/{name}/widget/leads`` (the widget; ``ChatAccess``): store the
  visitor's contact details, checked against the assistant's form; bound to the visitor and,
  when given, to the visitor's own conversation; the webhook gets ``lead.created``.
- ``GET /api/assistants/{name}/leads`` and ``GET /api/assistants/{name}/leads.csv`` (admin
  or the assistant's secret key): list them, or download them as a spreadsheet.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from assistant.api.deps import ChatAccess, CoreDep, ManageAccess
from assistant.api.engagement_schemas import LeadCreate, LeadCreated, LeadList, LeadPublic
from assistant.api.problems import error_responses
from assistant.api.routes.assistants import require_assistant
from assistant.api.visitors import check_conversation
from assistant.api.webhook_events import emit_event
from assistant.leads import Lead, LeadStore, leads_csv, validate_lead

__all__ = ["router"]

router = APIRouter(
    prefix="/api/assistants",
    tags=["leads"],
    responses=error_responses(401, 403, 404, 422, 429, 503),
)


def _public(lead: Lead) -> LeadPublic:
    return LeadPublic(
        id=lead.id,
        conversation_id=lead.conversation_id,
        fields=lead.fields,
        consent=lead.consent,
        created_at=lead.created_at,
    )


@router.post(
    "/{name}/widget/leads",
    status_code=201,
    response_model=LeadCreated,
    responses=error_responses(400, 413),
)
async def create_lead(
    request: Request,
    background: BackgroundTasks,
    name: str,
    body: LeadCreate,
    caller: ChatAccess,
    core: CoreDep,
) -> LeadCreated:
    """Store the visitor's contact details (400 when they do not fit the form)."""
    await run_in_threadpool(require_assistant, core, name)
    config = await run_in_threadpool(core.config, name)
    form = config.lead_form
    values = validate_lead(form, body.fields, consent=body.consent)
    if body.conversation_id is not None:
        await run_in_threadpool(check_conversation, core, name, body.conversation_id, caller)
    lead = await run_in_threadpool(
        lambda: LeadStore(core.database).add(
            name,
            values,
            consent=form.consent_text if body.consent else "",
            conversation_id=body.conversation_id,
            visitor=caller.visitor,
        )
    )
    data = {
        "id": lead.id,
        "fields": lead.fields,
        "consent": lead.consent,
        "conversation_id": lead.conversation_id,
        "created_at": lead.created_at.isoformat(),
    }
    await run_in_threadpool(
        emit_event, request, background, name, config, "lead.created", lead.id, data
    )
    return LeadCreated(id=lead.id)


@router.get("/{name}/leads", response_model=LeadList)
async def list_leads(
    name: str,
    caller: ManageAccess,
    core: CoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> LeadList:
    """The assistant's leads, newest first."""
    leads = await run_in_threadpool(
        lambda: LeadStore(core.database).list(name, limit=limit, offset=offset)
    )
    return LeadList(leads=[_public(lead) for lead in leads])


@router.get(
    "/{name}/leads.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_leads(name: str, caller: ManageAccess, core: CoreDep) -> Response:
    """Every lead as CSV (a download), one column per form field."""
    config = await run_in_threadpool(core.config, name)
    leads = await run_in_threadpool(lambda: LeadStore(core.database).list(name, limit=100_000))
    return Response(
        leads_csv(leads, config.lead_form),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-leads.csv"'},
    )
