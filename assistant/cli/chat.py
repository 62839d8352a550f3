"""``assistant chat``: a conversation in the terminal, answers streamed with their sources."""

from __future__ import annotations

import asyncio
import sys

from assistant.chat.events import (
    CitationsEvent,
    DoneEvent,
    ErrorEvent,
    Source,
    SourcesEvent,
    TextDelta,
)
from assistant.cli.common import KbOption, app, console, errors, escape, open_assistant, run
from assistant.core import Assistant
from assistant.errors import AssistantError

__all__ = ["chat"]

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
            console.print(escape(event.text), end="", highlight=False)
        elif isinstance(event, CitationsEvent):
            console.print()
            for citation in event.citations:
                console.print(
                    f"  [{citation.n}] [bold]{escape(citation.title)}[/bold] — "
                    f"{escape(citation.url)}",
                    highlight=False,
                )
        elif isinstance(event, DoneEvent):
            conversation_id = event.conversation_id or conversation_id
        elif isinstance(event, ErrorEvent):
            console.print()
            errors.print(f"[red]error:[/red] {escape(event.message)}", highlight=False)
    return conversation_id, sources


def _show_sources(sources: tuple[Source, ...]) -> None:
    if not sources:
        console.print("(no sources yet)")
    for source in sources:
        snippet = " ".join(source.text.split())[:240]
        console.print(
            f"[{source.n}] [bold]{escape(source.title)}[/bold] {escape(source.url)} "
            f"(score {source.score:.3f})\n    {escape(snippet)}",
            highlight=False,
        )


async def _session(assistant: Assistant, kb: str) -> None:
    conversation_id: str | None = None
    sources: tuple[Source, ...] = ()
    interactive = sys.stdin.isatty()
    if interactive:
        console.print(f"Chatting with [bold]{escape(kb)}[/bold]. {_HELP}", highlight=False)
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
                    errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    finally:
        await assistant.aclose()


@app.command()
def chat(kb: KbOption = "default") -> None:
    """Chat with the knowledge base: answers stream with sources; follow-ups keep context."""
    assistant = open_assistant()
    run(lambda: asyncio.run(_session(assistant, kb)))
