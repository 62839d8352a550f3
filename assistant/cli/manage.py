"""``assistant sources``, ``forget``, ``gaps`` and ``configure``: look after a knowledge base."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import JsonOption, KbOption, app, console, escape, open_assistant, run
from assistant.errors import InvalidInputError

__all__ = ["configure", "forget", "gaps", "parse_assignment", "sources"]


@app.command()
def sources(kb: KbOption = "default", as_json: JsonOption = False) -> None:
    """List what has been ingested, by source."""
    assistant = open_assistant()
    summaries = run(lambda: assistant.sources(kb=kb))
    if as_json:
        print(json.dumps({"kb": kb, "sources": [asdict(s) for s in summaries]}))
        return
    table = Table(title=f"knowledge base {escape(kb)}", title_justify="left")
    for column in ("source", "documents", "chunks", "last fetched"):
        table.add_column(column, overflow="fold")
    for summary in summaries:
        table.add_row(
            escape(summary.source),
            str(summary.documents),
            str(summary.chunks),
            summary.last_fetched[:19],
        )
    console.print(table)


@app.command()
def forget(
    source: Annotated[str, typer.Argument(help="A source (or one document URL/path) to remove.")],
    kb: KbOption = "default",
) -> None:
    """Remove a source and all its chunks from a knowledge base."""
    assistant = open_assistant()
    removed = run(lambda: assistant.forget(source, kb=kb))
    console.print(f"removed {removed} chunks from {escape(kb)}", highlight=False)


@app.command()
def gaps(
    kb: KbOption = "default",
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Questions the assistant could not answer from its content (content gaps)."""
    assistant = open_assistant()
    records = run(lambda: assistant.content_gaps(kb=kb, limit=limit))
    if as_json:
        print(
            json.dumps(
                {
                    "kb": kb,
                    "gaps": [
                        {
                            "turn_id": r.id,
                            "conversation_id": r.conversation_id,
                            "question": r.question,
                            "standalone_question": r.standalone_question,
                            "top_score": r.top_score,
                            "asked_at": r.created_at.isoformat(),
                        }
                        for r in records
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    for record in records:
        score = "-" if record.top_score is None else f"{record.top_score:.3f}"
        console.print(
            f"{record.created_at:%Y-%m-%d %H:%M}  best score {score}  {escape(record.question)}",
            highlight=False,
        )


def parse_assignment(assignment: str) -> tuple[str, str, Any]:
    """``section.field=value`` → (section, field, value); values are JSON where they parse."""
    key, separator, raw = assignment.partition("=")
    section, dot, field = key.strip().partition(".")
    if not separator or (not dot and section != "allowed_origins"):
        raise InvalidInputError(
            f"{assignment!r}: use section.field=value, e.g. brand.tone='Friendly and brief.'"
        )
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return section, field, value


@app.command()
def configure(
    assignments: Annotated[
        list[str] | None,
        typer.Argument(
            help="section.field=value, e.g. brand.company=Harbor answering.provider=openai"
        ),
    ] = None,
    kb: KbOption = "default",
) -> None:
    """Show or change an assistant's settings (brand, answering, retrieval, limits)."""
    assistant = open_assistant()
    changes: dict[str, Any] = {}
    for assignment in assignments or []:
        section, field, value = run(lambda a=assignment: parse_assignment(a))  # type: ignore[misc]
        if field:
            changes.setdefault(section, {})[field] = value
        else:
            changes[section] = value if isinstance(value, list) else [value]
    config = run(lambda: assistant.configure(kb, **changes) if changes else assistant.config(kb))
    print(json.dumps({"kb": kb, **config.model_dump(mode="json")}, indent=2, ensure_ascii=False))
