"""``assistant search`` and ``assistant ask``: passages and answers, for people or scripts.

A QUERY of ``-`` reads one query per line from standard input (one JSON object per line with
``--json``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.chat.events import Answer
from assistant.chat.trace import hit_document, retrieval_trace
from assistant.cli.common import (
    JsonOption,
    KbOption,
    app,
    console,
    errors,
    escape,
    open_assistant,
    queries,
    run,
)
from assistant.knowledge.retriever import SearchResult

__all__ = ["answer_json", "ask", "search", "search_json"]


def search_json(result: SearchResult) -> dict[str, Any]:
    """The ``--json`` shape of one query's search result."""
    return {
        "query": result.query,
        "results": [hit_document(hit) for hit in result.hits],
        "trace": asdict(result.trace),
    }


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The query, or - to read one per line from stdin.")],
    kb: KbOption = "default",
    k: Annotated[int, typer.Option("-k", help="How many passages.", min=1, max=1000)] = 10,
    as_json: JsonOption = False,
) -> None:
    """Show the best passages with dense and late-interaction ranks side by side."""
    assistant = open_assistant()
    for text in queries(query):
        result = run(lambda text=text: assistant.search(text, kb=kb, k=k))  # type: ignore[misc]
        if as_json:
            print(json.dumps(search_json(result), ensure_ascii=False))
            continue
        table = Table(title=escape(text), title_justify="left", show_lines=False)
        for column in ("rank", "score", "dense", "late int.", "lexical", "passage"):
            table.add_column(column, overflow="fold")
        for hit in result.hits:
            lexical = "-" if hit.lexical_rank is None else f"#{hit.lexical_rank}"
            snippet = " ".join(hit.text.split())[:160]
            table.add_row(
                str(hit.rank),
                f"{hit.score:.2f}",
                f"#{hit.dense_rank} {hit.dense_score:.3f}",
                f"#{hit.late_interaction_rank} {hit.late_interaction_score:.3f}",
                lexical,
                f"[bold]{escape(hit.title)}[/bold] {escape(hit.url)}\n{escape(snippet)}",
            )
        console.print(table)


def answer_json(answer: Answer) -> dict[str, Any]:
    """The ``--json`` shape of one answer, with its retrieval trace."""
    trace: dict[str, Any] = (
        retrieval_trace(answer.retrieval, answer.sources) if answer.retrieval is not None else {}
    )
    trace["timings_ms"] = answer.timings_ms or trace.get("timings_ms", {})
    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": answer.answer,
        "citations": [asdict(citation) for citation in answer.citations],
        "sources": [asdict(source) for source in answer.sources],
        "provider": answer.provider,
        "model": answer.model,
        "outcome": answer.outcome,
        "usage": asdict(answer.usage),
        "cost_usd": answer.cost_usd,
        "conversation_id": answer.conversation_id,
        "turn_id": answer.turn_id,
        "error": asdict(answer.error) if answer.error else None,
        "trace": trace,
    }


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, or - for one per line on stdin.")],
    kb: KbOption = "default",
    as_json: JsonOption = False,
) -> None:
    """Answer a question from the knowledge base, with numbered citations."""
    assistant = open_assistant()
    for text in queries(question):
        answer = run(lambda text=text: assistant.ask(text, kb=kb))  # type: ignore[misc]
        if as_json:
            print(json.dumps(answer_json(answer), ensure_ascii=False))
            continue
        console.print(f"[bold]Q:[/bold] {escape(text)}", highlight=False)
        console.print(escape(answer.answer), highlight=False)
        for citation in answer.citations:
            console.print(
                f"  [{citation.n}] [bold]{escape(citation.title)}[/bold] — {escape(citation.url)}\n"
                f"      “{escape(citation.quote[:240])}”",
                highlight=False,
            )
        if answer.error:
            errors.print(f"[red]error:[/red] {escape(answer.error.message)}")
            raise typer.Exit(1)
