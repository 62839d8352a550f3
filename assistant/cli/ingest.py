"""``assistant ingest``: add or refresh sources in a knowledge base."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer

from assistant.cli.common import (
    JsonOption,
    KbOption,
    app,
    console,
    open_assistant,
    print_report,
    progress_bars,
    run,
)
from assistant.knowledge.ingest import IngestReport, ProgressEvent

__all__ = ["ingest", "report_json"]


@app.command()
def ingest(
    sources: Annotated[list[str], typer.Argument(help="Files, folders, page URLs or sitemaps.")],
    kb: KbOption = "default",
    crawl: Annotated[bool, typer.Option(help="Crawl each URL's site (same host).")] = False,
    max_pages: Annotated[
        int | None, typer.Option(help="Page limit (crawl: 200, sitemap: 10000).", min=1)
    ] = None,
    max_depth: Annotated[int, typer.Option(help="Link depth limit of a crawl.", min=0)] = 3,
    as_json: JsonOption = False,
) -> None:
    """Add or refresh sources in a knowledge base."""
    assistant = open_assistant()
    with progress_bars(disable=as_json) as progress:
        loaded = progress.add_task("documents loaded", total=None)
        embedded = progress.add_task("chunks embedded", total=None)
        failed = progress.add_task("failed", total=None)
        tasks = {"loaded": loaded, "embedded": embedded, "failed": failed}

        def on_progress(event: ProgressEvent) -> None:
            progress.advance(tasks[event.kind], event.count)

        report = run(
            lambda: assistant.ingest(
                sources,
                kb=kb,
                crawl=crawl,
                max_pages=max_pages,
                max_depth=max_depth,
                progress=on_progress,
            )
        )
    if as_json:
        console.print_json(json.dumps(report_json(report, kb)))
    else:
        print_report(report, kb)
    if report.failures:
        raise typer.Exit(1)


def report_json(report: IngestReport, kb: str) -> dict[str, Any]:
    """The ``--json`` shape of an ingestion report."""
    counts = {s: report.count(s) for s in ("added", "updated", "unchanged", "removed", "failed")}
    return {
        "kb": kb,
        **counts,
        "chunks_embedded": report.chunks_embedded,
        "seconds": round(report.seconds, 3),
        "incomplete_sources": report.incomplete_sources,
        "documents": [asdict(outcome) for outcome in report.outcomes],
    }
