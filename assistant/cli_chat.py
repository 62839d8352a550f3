"""``assistant chat``, ``assistant gaps`` and ``assistant configure``: the conversational side
of the command line, registered on the main ``assistant`` app."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer

from assistant.chat.events import (
    CitationsEvent,
    DoneEvent,
    ErrorEvent,
    Source,
    SourcesEvent,
    TextDelta,
)
from assistant.cli import JsonOption, KbOption, _assistant, _escape, _run, app, console, errors
from assistant.core import Assistant
from assistant.errors import AssistantError, InvalidInputError

__all__ = ["chat", "configure", "gaps"]

_HELP = "Commands: /sources (passages behind the last answer), /reset (new conversation), /exit."


async def _turn(
    assistant: Assistant, message: str, kb: str, conversation_id: str | None
) -> tuple[str | None, tuple[Source, ...]]:
    """Stream one answer to the terminal; returns the conversation id and the sources used."""
    sources: tuple[Source, ...] = ()
    async for event in assistant.stream(message, kb=kb, conversation_id=conversation_id):
        if isinstance(event, SourcesEvent):
            sources = event.sources
            conversation_id = event.conversation_id
        elif isinstance(event, TextDelta):
            console.print(_escape(event.text), end="", highlight=False)
        elif isinstance(event, CitationsEvent):
            console.print()
            for citation in event.citations:
                console.print(
                    f"  [{citation.n}] [bold]{_escape(citation.title)}[/bold] — "
                    f"{_escape(citation.url)}",
                    highlight=False,
                )
        elif isinstance(event, DoneEvent):
            conversation_id = event.conversation_id or conversation_id
        elif isinstance(event, ErrorEvent):
            console.print()
            errors.print(f"[red]error:[/red] {_escape(event.message)}", highlight=False)
    return conversation_id, sources


def _show_sources(sources: tuple[Source, ...]) -> None:
    if not sources:
        console.print("(no sources yet)")
    for source in sources:
        snippet = " ".join(source.text.split())[:240]
        console.print(
            f"[{source.n}] [bold]{_escape(source.title)}[/bold] {_escape(source.url)} "
            f"(score {source.score:.3f})\n    {_escape(snippet)}",
            highlight=False,
        )


async def _session(assistant: Assistant, kb: str) -> None:
    conversation_id: str | None = None
    sources: tuple[Source, ...] = ()
    interactive = sys.stdin.isatty()
    if interactive:
        console.print(f"Chatting with [bold]{_escape(kb)}[/bold]. {_HELP}", highlight=False)
    try:
        while True:
            if interactive:
                console.print("[bold]you>[/bold] ", end="")
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            message = line.strip()
            if not message:
                continue
            if message in ("/exit", "/quit"):
                break
            if message == "/help":
                console.print(_HELP)
            elif message == "/sources":
                _show_sources(sources)
            elif message == "/reset":
                conversation_id, sources = None, ()
                console.print("(new conversation)")
            else:
                try:
                    conversation_id, sources = await _turn(assistant, message, kb, conversation_id)
                except AssistantError as exc:
                    errors.print(f"[red]error:[/red] {_escape(str(exc))}", highlight=False)
    finally:
        await assistant.aclose()


@app.command()
def chat(kb: KbOption = "default") -> None:
    """Chat with the knowledge base: answers stream with sources; follow-ups keep context."""
    assistant = _assistant()
    _run(lambda: asyncio.run(_session(assistant, kb)))


@app.command()
def gaps(
    kb: KbOption = "default",
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Questions the assistant could not answer from its content (content gaps)."""
    assistant = _assistant()
    records = _run(lambda: assistant.content_gaps(kb=kb, limit=limit))
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
            f"{record.created_at:%Y-%m-%d %H:%M}  best score {score}  {_escape(record.question)}",
            highlight=False,
        )


def _parse_assignment(assignment: str) -> tuple[str, str, Any]:
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
    assistant = _assistant()
    changes: dict[str, Any] = {}
    for assignment in assignments or []:
        section, field, value = _run(lambda a=assignment: _parse_assignment(a))  # type: ignore[misc]
        if field:
            changes.setdefault(section, {})[field] = value
        else:
            changes[section] = value if isinstance(value, list) else [value]
    config = _run(lambda: assistant.configure(kb, **changes) if changes else assistant.config(kb))
    print(json.dumps({"kb": kb, **config.model_dump(mode="json")}, indent=2, ensure_ascii=False))
