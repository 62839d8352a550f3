"""The ``assistant`` command: ingest, search, ask, sources, forget.

Output for people goes through rich; ``--json`` prints the contract shapes for scripts. A QUERY
of ``-`` reads one query per line from standard input (one JSON object per line with
``--json``). Expected failures print one line and exit 1; no traceback reaches the user.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.chat.events import Answer
from assistant.chat.trace import hit_document, retrieval_trace
from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.knowledge.ingest import IngestReport, ProgressEvent
from assistant.knowledge.retriever import SearchResult
from assistant.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="assistant",
    help="Answer questions from your website and documents, with sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)

KbOption = Annotated[str, typer.Option("--kb", help="Knowledge base name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

T = TypeVar("T")


def _assistant() -> Assistant:
    # Model libraries are chatty at import and load; the CLI shows its own progress instead.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return _run(lambda: Assistant.from_settings(Settings()))


def _run(action: Callable[[], T]) -> T:
    """Run ``action``, turning expected errors into one line and exit status 1."""
    try:
        return action()
    except AssistantError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        errors.print("interrupted")
        raise typer.Exit(130) from None


def _progress(*, disable: bool = False, show_total: bool = False) -> Progress:
    """Progress bars on standard error, gone when done (standard output stays clean)."""
    count = "{task.completed:>6.0f}/{task.total}" if show_total else "{task.completed:>6.0f}"
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        TextColumn(count),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
        disable=disable,
    )


def _queries(query: str) -> Iterator[str]:
    if query != "-":
        yield query
        return
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    level = logging.INFO if verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    # Some libraries set their own loggers' levels; keep them at ours.
    for name in ("bm25s", "chromadb", "httpx", "transformers"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


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
    assistant = _assistant()
    with _progress(disable=as_json) as progress:
        loaded = progress.add_task("documents loaded", total=None)
        embedded = progress.add_task("chunks embedded", total=None)
        failed = progress.add_task("failed", total=None)
        tasks = {"loaded": loaded, "embedded": embedded, "failed": failed}

        def on_progress(event: ProgressEvent) -> None:
            progress.advance(tasks[event.kind], event.count)

        report = _run(
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
        console.print_json(json.dumps(_report_json(report, kb)))
    else:
        _print_report(report, kb)
    if report.failures:
        raise typer.Exit(1)


def _report_json(report: IngestReport, kb: str) -> dict[str, Any]:
    counts = {s: report.count(s) for s in ("added", "updated", "unchanged", "removed", "failed")}
    return {
        "kb": kb,
        **counts,
        "chunks_embedded": report.chunks_embedded,
        "seconds": round(report.seconds, 3),
        "incomplete_sources": report.incomplete_sources,
        "documents": [asdict(outcome) for outcome in report.outcomes],
    }


def _print_report(report: IngestReport, kb: str) -> None:
    counts = ", ".join(
        f"{report.count(s)} {s}" for s in ("added", "updated", "unchanged", "removed", "failed")
    )
    rate = report.chunks_embedded / report.seconds if report.seconds else 0.0
    console.print(
        f"[bold]{kb}[/bold]: {counts} — {report.chunks_embedded} chunks embedded "
        f"in {report.seconds:.1f}s ({rate:.1f} chunks/s)"
    )
    for source in report.incomplete_sources:
        console.print(f"[yellow]not complete:[/yellow] {source} (nothing removed from it)")
    for failure in report.failures:
        console.print(
            f"[red]failed:[/red] {failure.url} — {failure.reason}", highlight=False, markup=True
        )


def _hit_json(result: SearchResult) -> dict[str, Any]:
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
    assistant = _assistant()
    for text in _queries(query):
        result = _run(lambda text=text: assistant.search(text, kb=kb, k=k))  # type: ignore[misc]
        if as_json:
            print(json.dumps(_hit_json(result), ensure_ascii=False))
            continue
        table = Table(title=f"{text}", title_justify="left", show_lines=False)
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
                f"[bold]{_escape(hit.title)}[/bold] {_escape(hit.url)}\n{_escape(snippet)}",
            )
        console.print(table)


def _answer_json(answer: Answer) -> dict[str, Any]:
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
    assistant = _assistant()
    for text in _queries(question):
        answer = _run(lambda text=text: assistant.ask(text, kb=kb))  # type: ignore[misc]
        if as_json:
            print(json.dumps(_answer_json(answer), ensure_ascii=False))
            continue
        console.print(f"[bold]Q:[/bold] {_escape(text)}", highlight=False)
        console.print(_escape(answer.answer), highlight=False)
        for citation in answer.citations:
            console.print(
                f"  [{citation.n}] [bold]{_escape(citation.title)}[/bold] — {_escape(citation.url)}\n"
                f"      “{_escape(citation.quote[:240])}”",
                highlight=False,
            )
        if answer.error:
            errors.print(f"[red]error:[/red] {_escape(answer.error.message)}")
            raise typer.Exit(1)


@app.command()
def sources(kb: KbOption = "default", as_json: JsonOption = False) -> None:
    """List what has been ingested, by source."""
    assistant = _assistant()
    summaries = _run(lambda: assistant.sources(kb=kb))
    if as_json:
        print(json.dumps({"kb": kb, "sources": [asdict(s) for s in summaries]}))
        return
    table = Table(title=f"knowledge base {kb}", title_justify="left")
    for column in ("source", "documents", "chunks", "last fetched"):
        table.add_column(column, overflow="fold")
    for summary in summaries:
        table.add_row(
            _escape(summary.source),
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
    assistant = _assistant()
    removed = _run(lambda: assistant.forget(source, kb=kb))
    console.print(f"removed {removed} chunks from {kb}")


@app.command()
def tune(
    kb: KbOption = "default",
    max_pairs: Annotated[
        int, typer.Option(help="Pseudo-query pairs to train on (more: slower, steadier).", min=32)
    ] = 8000,
    as_json: JsonOption = False,
) -> None:
    """Train the late-interaction head on a knowledge base's text; keep it if it ranks better."""
    from assistant.knowledge.training.pseudo_pairs import PairOptions
    from assistant.knowledge.training.tuning import TuneOptions, TuneStep

    assistant = _assistant()
    labels = {
        "encoding": "texts encoded",
        "training": "training steps",
        "evaluation": "held-out queries",
        "cache": "token cache rebuilt",
    }
    with _progress(disable=as_json, show_total=True) as progress:
        tasks: dict[str, Any] = {}

        def on_progress(step: TuneStep) -> None:
            if step.task not in tasks:
                tasks[step.task] = progress.add_task(labels[step.task], total=step.total)
            elif step.total is not None:
                progress.update(tasks[step.task], total=step.total)
            progress.advance(tasks[step.task], step.advance)

        options = TuneOptions(pairs=PairOptions(max_pairs=max_pairs))
        report = _run(lambda: assistant.tune(kb, progress=on_progress, options=options))
    if as_json:
        print(json.dumps({"kb": kb, **asdict(report)}))
        return
    outcome = (
        f"[green]kept[/green] head {report.head_version}"
        if report.kept
        else "[yellow]not kept[/yellow] (no better than the current ranking)"
    )
    console.print(
        f"[bold]{kb}[/bold]: held-out MRR@10 {report.mrr_before:.3f} → {report.mrr_after:.3f} "
        f"on {report.held_out_queries} queries; {outcome}"
    )
    console.print(
        f"{report.pairs} pairs, {report.steps} steps in {report.seconds:.0f}s; token vectors "
        f"{report.bytes_per_token_before} → {report.bytes_per_token_after} bytes each",
        highlight=False,
    )


@app.command("eval")
def evaluate_command(
    dataset_dir: Annotated[
        str, typer.Argument(help="A test collection in BEIR layout (corpus, queries, qrels).")
    ],
    json_file: Annotated[
        str | None, typer.Option("--json", help="Also write the results as JSON to this file.")
    ] = None,
    kb: Annotated[
        str | None, typer.Option("--kb", help="Knowledge base (default: eval-<dataset>).")
    ] = None,
    max_queries: Annotated[
        int | None, typer.Option(help="Evaluate only the first N judged queries.", min=1)
    ] = None,
) -> None:
    """Measure retrieval quality (nDCG, MRR, recall) of every ranking stage on a test set."""
    from pathlib import Path

    from assistant.evaluation import METRIC_NAMES, EvaluationStep, evaluate

    assistant = _assistant()
    with _progress() as progress:
        tasks = {
            "documents": progress.add_task("documents loaded", total=None),
            "chunks": progress.add_task("chunks embedded", total=None),
            "failed": progress.add_task("failed", total=None),
            "queries": progress.add_task("queries searched", total=None),
        }

        def on_progress(step: EvaluationStep) -> None:
            if step.total is not None:
                progress.update(tasks[step.task], total=step.total)
            progress.advance(tasks[step.task], step.advance)

        report = _run(
            lambda: evaluate(
                assistant, Path(dataset_dir), kb=kb, max_queries=max_queries, progress=on_progress
            )
        )
    table = Table(title=report.title(), title_justify="left")
    table.add_column("run")
    for name in METRIC_NAMES:
        table.add_column(name, justify="right")
    for run, metrics in report.runs.items():
        values = metrics.as_dict()
        table.add_row(run, *(f"{values[name]:.3f}" for name in METRIC_NAMES))
    console.print(table)
    for line in report.notes():
        console.print(line, highlight=False, markup=False)
    if json_file is not None:
        try:
            Path(json_file).write_text(json.dumps(report.to_json(), indent=2) + "\n", "utf-8")
        except OSError as exc:
            errors.print(f"[red]error:[/red] cannot write {_escape(json_file)}: {exc.strerror}")
            raise typer.Exit(1) from None
        console.print(f"wrote {json_file}", highlight=False, markup=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def main() -> None:
    """Entry point of the ``assistant`` console script."""
    # Registers the conversational commands on ``app``.
    import assistant.cli_chat
    import assistant.cli_report
    import assistant.cli_serve
    import assistant.cli_worker  # noqa: F401

    app()
