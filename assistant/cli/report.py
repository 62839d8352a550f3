"""``assistant report``: an assistant's analytics in the terminal, registered on the main app.

Rich tables for top questions, content gaps, pages and quality, with unicode sparklines of
questions per slice of the period; ``--json`` prints the API's shape for scripts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from assistant.analytics.insights import InsightEncoders
from assistant.analytics.period import Period, period_from
from assistant.analytics.report import bring_up_to_date
from assistant.analytics.retention import apply_retention as apply_retention_days
from assistant.analytics.service import answering_provider
from assistant.analytics.types import LeadSummary
from assistant.cli.common import JsonOption, KbOption, app, console, escape, open_assistant, run
from assistant.core import Assistant

__all__ = ["report", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int]) -> str:
    """Values as a line of block characters, scaled to the largest.

    >>> sparkline([0, 1, 2, 4])
    ' ▂▄█'
    """
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(
        " " if value <= 0 else _BARS[min(len(_BARS) - 1, int(value / top * (len(_BARS) - 1)))]
        for value in values
    )


def _trend(current: float | None, previous: float | None) -> str:
    if current is None or previous is None or previous == 0:
        return "new" if current and not previous else ""
    change = (current - previous) / previous
    return f"{change:+.0%}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _analyse(assistant: Assistant, kb: str, since: str, *, recluster: bool, quiet: bool) -> None:
    """Compute the missing insights of the report's two periods with a progress bar, and
    update the stored clusters."""
    current = period_from(since)
    both = Period(current.previous().since, current.until)
    encoders = InsightEncoders(assistant.encoder, assistant.late_encoder)
    with Progress(console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task("analysing turns", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        bring_up_to_date(
            assistant.database,
            kb,
            both,
            encoders,
            recluster=recluster,
            progress=advance,
            provider=answering_provider(assistant, kb),
        )


def _print_leads(leads: LeadSummary) -> None:
    console.print(
        f"leads: {leads.count} ({_trend(leads.count, leads.previous_count)}) · conversion "
        f"{_rate(leads.conversion_rate)} · mean score "
        f"{'—' if leads.average_score is None else f'{leads.average_score:.0f}'}  "
        f"{sparkline(leads.daily) if leads.count else ''}",
        highlight=False,
    )
    if not leads.items:
        return
    table = Table(title="Best leads")
    for column in ("score", "contact", "questions", "pricing", "topics"):
        table.add_column(column)
    for lead in leads.items[:10]:
        contact = lead.fields.get("email") or lead.fields.get("name") or lead.id
        table.add_row(
            str(lead.score),
            escape(contact),
            str(lead.questions),
            "yes" if lead.pricing_intent else "",
            escape(", ".join(lead.topics[:3])),
        )
    console.print(table)


@app.command()
def report(
    kb: KbOption = "default",
    since: Annotated[str, typer.Option(help="Period: 30d, 12h, 2w or an ISO date.")] = "30d",
    mask: Annotated[
        bool, typer.Option(help="Mask emails, phone numbers and card numbers in questions.")
    ] = True,
    as_json: JsonOption = False,
    apply_retention: Annotated[
        bool,
        typer.Option(
            "--apply-retention",
            help="First delete conversations older than the assistant's retention_days.",
        ),
    ] = False,
    recluster: Annotated[
        bool, typer.Option("--recluster", help="Cluster every question again.")
    ] = False,
) -> None:
    """What visitors ask, what the content misses, how well it answers, what it costs."""
    from assistant.api.analytics_schemas import AnalyticsPublic

    assistant = open_assistant()
    try:
        if apply_retention:
            days = run(lambda: assistant.config(kb).retention_days)
            deleted = run(lambda: apply_retention_days(assistant.database, kb, days)) if days else 0
            if not as_json:
                console.print(f"retention: {deleted} conversations deleted", highlight=False)
        run(lambda: _analyse(assistant, kb, since, recluster=recluster, quiet=as_json))
        result = run(lambda: assistant.report(kb, since=since, mask=mask))
    finally:
        assistant.close()
    if as_json:
        print(json.dumps(AnalyticsPublic.from_report(result).model_dump(mode="json")))
        return
    volume, previous = result.volume, result.previous_volume
    console.print(
        f"[bold]{escape(kb)}[/bold] since {result.period.since:%Y-%m-%d %H:%M}: "
        f"{volume.turns} questions ({_trend(volume.turns, previous.turns)}), "
        f"{volume.conversations} conversations, {volume.visitors} visitors, "
        f"${volume.cost_usd:.4f}  {sparkline(volume.daily_turns)}",
        highlight=False,
    )
    quality = result.quality
    console.print(
        f"answered {_rate(quality.answer_rate)} · resolved {_rate(quality.resolution_rate)} · "
        f"CSAT {_rate(quality.csat)} · grounded {_rate(quality.groundedness)}",
        highlight=False,
    )
    topics = Table(title="Top questions")
    for column in ("topic", "count", "trend", "answered", "👍/👎", "per day", "example"):
        topics.add_column(column)
    for cluster in result.top_questions:
        topics.add_row(
            escape(cluster.label),
            str(cluster.count),
            _trend(cluster.count, cluster.previous_count),
            _rate(cluster.answer_rate),
            f"{cluster.thumbs_up}/{cluster.thumbs_down}",
            sparkline(cluster.daily),
            escape(cluster.questions[0] if cluster.questions else ""),
        )
    console.print(topics)
    gaps = Table(title="Content gaps")
    for column in ("topic", "count", "why", "nearest page", "suggestion"):
        gaps.add_column(column)
    for gap in result.content_gaps:
        nearest = gap.nearest_sources[0] if gap.nearest_sources else None
        gaps.add_row(
            escape(gap.label),
            str(gap.count),
            ", ".join(gap.reasons),
            escape(f"{nearest.title or nearest.url} ({nearest.score:.2f})") if nearest else "",
            escape(gap.suggestion),
        )
    console.print(gaps)
    pages = Table(title="Pages")
    for column in ("page", "cited", "in context", "cited in 👎"):
        pages.add_column(column)
    for use in result.source_usage:
        pages.add_row(
            escape(use.title or use.url),
            str(use.cited),
            str(use.in_context),
            str(use.cited_in_thumbs_down),
        )
    console.print(pages)
    _print_leads(result.leads)
    if result.pending_turns:
        console.print(f"{result.pending_turns} turns not analysed yet", highlight=False)
    if result.unused_pages:
        console.print(f"{len(result.unused_pages)} pages never used", highlight=False)
