"""Liveness, readiness and metrics: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` says the process answers (no dependency is touched). ``/readyz`` checks what a
request needs: the application database (a ``SELECT 1``), Chroma (its heartbeat) and, when
configured, Redis (a ``PING`` through the rate limiter's connections); 503 names the one that
failed. ``/metrics`` needs the admin key, as its labels name the assistants (tenants).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from assistant.api.deps import AdminAccess, CoreDep, SettingsDep
from assistant.api.problems import error_responses
from assistant.api.prometheus import METRICS_CONTENT_TYPE, metrics_of
from assistant.api.ratelimit import RateLimiter
from assistant.api.schemas import HealthPublic, ReadinessPublic
from assistant.core import Assistant

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

# A dependency that does not answer within this is as good as down for a readiness probe.
_CHECK_SECONDS = 3.0

Status = Literal["ok", "unavailable"]


async def _check(name: str, probe: Callable[[], object]) -> Status:
    try:
        await asyncio.wait_for(run_in_threadpool(probe), timeout=_CHECK_SECONDS)
    except Exception as exc:  # every failure of a probe means "not ready", whatever its type
        logger.warning("readiness: %s is unavailable (%s)", name, type(exc).__name__)
        return "unavailable"
    return "ok"


def _ping_database(core: Assistant) -> None:
    core.database.ping()


def _chroma_heartbeat(core: Assistant) -> None:
    core.chroma.heartbeat()


@router.get("/healthz", response_model=HealthPublic)
async def healthz() -> HealthPublic:
    """The process is up."""
    return HealthPublic()


@router.get(
    "/readyz",
    response_model=ReadinessPublic,
    response_model_exclude_none=True,
    responses={503: {"model": ReadinessPublic, "description": "A dependency is unavailable."}},
)
async def readyz(request: Request, core: CoreDep, settings: SettingsDep) -> JSONResponse:
    """Whether the database, Chroma and (when configured) Redis answer; 503 if one does not."""
    database, chroma = await asyncio.gather(
        _check("database", lambda: _ping_database(core)),
        _check("chroma", lambda: _chroma_heartbeat(core)),
    )
    redis: Status | None = None
    if settings.redis_url is not None:
        limiter: RateLimiter = request.app.state.rate_limiter
        try:
            answered = await asyncio.wait_for(limiter.ping(), timeout=_CHECK_SECONDS)
        except TimeoutError:
            answered = False
        redis = "ok" if answered else "unavailable"
    ready = all(status == "ok" for status in (database, chroma, redis) if status is not None)
    readiness = ReadinessPublic(
        status="ok" if ready else "unavailable", database=database, chroma=chroma, redis=redis
    )
    return JSONResponse(readiness.model_dump(exclude_none=True), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses=error_responses(401, 403, 503))
async def metrics(request: Request, caller: AdminAccess) -> Response:
    """Prometheus metrics (text exposition format); needs the admin key."""
    return Response(metrics_of(request).render(), media_type=METRICS_CONTENT_TYPE)
