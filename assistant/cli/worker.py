"""``assistant worker``: the ingestion worker of the scaled-out topology, registered on the main
``assistant`` app.

With ASSISTANT_REDIS_URL set, the API puts ingestion jobs on a Redis queue and workers run
them; start as many as the load needs, on any machine that shares the data dir (uploaded
files), the database, Chroma and Redis with the API.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from assistant.cli.common import app, errors, open_assistant, run

__all__ = ["worker"]


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Jobs run at once (default: ASSISTANT_JOB_CONCURRENCY).", min=1),
    ] = None,
    burst: Annotated[
        bool, typer.Option(help="Exit once the queue is empty instead of waiting for jobs.")
    ] = False,
) -> None:
    """Run ingestion jobs from the Redis queue until stopped (needs ASSISTANT_REDIS_URL)."""
    from assistant.jobs.worker import run_worker

    assistant = open_assistant()
    if assistant.settings.redis_url is None:
        errors.print(
            "[red]error:[/red] set ASSISTANT_REDIS_URL: the worker takes its jobs from Redis "
            "(without it, `assistant serve` runs ingestion jobs itself)",
            highlight=False,
        )
        raise typer.Exit(1)
    # A long-running service: its job log is its output.
    for name in ("arq", "assistant.jobs"):
        logger = logging.getLogger(name)
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
    try:
        run(lambda: run_worker(assistant, concurrency=concurrency, burst=burst))
    finally:
        assistant.close()
