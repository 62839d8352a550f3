"""What every ``assistant`` command shares: the typer app, consoles, options, error handling.

Output for people goes through rich; ``--json`` prints the contract shapes for scripts. Expected
failures print one line and exit 1; no traceback reaches the user.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape as escape_markup
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from assistant.control_characters import strip_control_characters
from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.knowledge.ingest import IngestReport
from assistant.settings import Settings

__all__ = [
    "JsonOption",
    "KbOption",
    "app",
    "console",
    "errors",
    "escape",
    "open_assistant",
    "print_report",
    "progress_bars",
    "queries",
    "run",
]

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


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    level = logging.INFO if verbose else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    # Some libraries set their own loggers' levels; keep them at ours.
    for name in ("bm25s", "chromadb", "httpx", "transformers"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def open_assistant() -> Assistant:
    """The in-process assistant built from the environment's settings."""
    # Model libraries are chatty at import and load; the CLI shows its own progress instead.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return run(lambda: Assistant.from_settings(Settings()))


def run(action: Callable[[], T]) -> T:
    """Run ``action``, turning expected errors into one line and exit status 1."""
    try:
        return action()
    except AssistantError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, markup=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        errors.print("interrupted")
        raise typer.Exit(130) from None


def progress_bars(*, disable: bool = False, show_total: bool = False) -> Progress:
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


def queries(query: str) -> Iterator[str]:
    """``query`` itself, or for ``-`` each non-blank line of standard input."""
    if query != "-":
        yield query
        return
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def escape(text: str) -> str:
    """``text`` to print literally: terminal control characters dropped and rich markup
    escaped, for printing stored questions, page and model text verbatim."""
    return escape_markup(strip_control_characters(text))


def print_report(report: IngestReport, kb: str) -> None:
    """An ingestion's counts, incomplete sources and failures, for people."""
    counts = ", ".join(
        f"{report.count(s)} {s}" for s in ("added", "updated", "unchanged", "removed", "failed")
    )
    rate = report.chunks_embedded / report.seconds if report.seconds else 0.0
    console.print(
        f"[bold]{escape(kb)}[/bold]: {counts} — {report.chunks_embedded} chunks embedded "
        f"in {report.seconds:.1f}s ({rate:.1f} chunks/s)"
    )
    for source in report.incomplete_sources:
        console.print(
            f"[yellow]not complete:[/yellow] {escape(source)} (nothing removed from it)",
            highlight=False,
        )
    for failure in report.failures:
        console.print(
            f"[red]failed:[/red] {escape(failure.url)} — {escape(str(failure.reason))}",
            highlight=False,
            markup=True,
        )
