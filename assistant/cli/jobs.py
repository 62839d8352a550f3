"""``assistant jobs`` and ``assistant cancel``: the ingestion jobs of a knowledge base.

Jobs are queued by the HTTP API (``assistant serve``) and run there or by ``assistant worker``;
their rows live in the application database, which these commands read and write directly, so
they act on the jobs of the deployment whose settings (``ASSISTANT_DATABASE_URL`` or the data
directory) they are given.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import JsonOption, KbOption, app, console, escape, open_assistant, run
from assistant.jobs.records import JobRecord
from assistant.jobs.store import JobStore

__all__ = ["cancel", "jobs"]


def _job_json(job: JobRecord) -> dict[str, Any]:
    """A job as ``--json`` prints it (the fields of ``GET /jobs/{id}`` but the report)."""

    def moment(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "attempts": job.attempts,
        "error": job.error,
        "created_at": moment(job.created_at),
        "started_at": moment(job.started_at),
        "finished_at": moment(job.finished_at),
    }


@app.command()
def jobs(
    kb: KbOption = "default",
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="Newest N jobs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List the newest ingestion jobs of a knowledge base."""
    assistant = open_assistant()
    found = run(lambda: JobStore(assistant.database).list_jobs(kb, limit=limit))
    if as_json:
        print(json.dumps({"kb": kb, "jobs": [_job_json(job) for job in found]}))
        return
    table = Table(title=f"jobs of {escape(kb)}", title_justify="left")
    for column in ("id", "kind", "status", "progress", "created", "error"):
        table.add_column(column, overflow="fold")
    for job in found:
        total = "?" if job.progress_total is None else str(job.progress_total)
        table.add_row(
            escape(job.id),
            escape(job.kind),
            escape(job.status),
            f"{job.progress_done}/{total}",
            job.created_at.isoformat()[:19],
            escape(job.error or ""),
        )
    console.print(table)


@app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(help="The job's id (from `assistant jobs`).")],
    kb: KbOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Cancel a queued or running ingestion job: a queued job never starts, a running one
    stops at its next document and keeps what it ingested."""
    assistant = open_assistant()
    job = run(lambda: JobStore(assistant.database).cancel(kb, job_id))
    if as_json:
        print(json.dumps({"kb": kb, "job": _job_json(job)}))
        return
    console.print(f"cancelled job {escape(job.id)} of {escape(kb)} ({job.progress_done} done)")
