"""``assistant eval --questions DIR --kb NAME``: a website's knowledge base, asked as visitors ask.

``print_site_report`` renders a ``SiteReport`` for people (``bench/sites.py`` prints the same):
a table of stages × hit@1/hit@5/MRR@10 per kind of question, the follow-up and no-answer
rates, and the worst failures of the shipped ranking.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from assistant.cli.common import console, errors, escape, open_assistant, progress_bars, run

if TYPE_CHECKING:
    from assistant.evaluation.site import SiteReport

__all__ = ["evaluate_site_command", "print_site_report"]

_METRICS = (("hit@1", "hit_at_1"), ("hit@5", "hit_at_5"), ("MRR@10", "mrr_at_10"))
_TASKS = {
    "questions": "questions searched",
    "conversations": "conversations",
    "asked": "questions asked",
}


def _rank(rank: int | None) -> str:
    return "-" if rank is None else str(rank)


def print_site_report(report: SiteReport, out: Console, *, worst: int = 10) -> None:
    """The report's tables and lines for people."""
    from assistant.evaluation.site import KINDS

    counts = {kind: report.metrics["fused"][kind].questions for kind in KINDS}
    table = Table(
        title=(
            f"{report.name} on {report.kb}: {counts['all']} questions ({counts['direct']} "
            f"direct, {counts['paraphrased']} paraphrased), {report.pages} pages "
            f"({report.chunks} chunks)"
        ),
        title_justify="left",
    )
    table.add_column("stage")
    for kind in KINDS:
        table.add_column(f"{kind}\nhit@1 hit@5 MRR@10", justify="right")
    for stage, by_kind in report.metrics.items():
        table.add_row(
            stage,
            *(
                " ".join(f"{getattr(by_kind[kind], attribute):.3f}" for _, attribute in _METRICS)
                for kind in KINDS
            ),
        )
    out.print(table)
    weights = ", ".join(f"{name} {value:g}" for name, value in report.weights.items())
    timings = ", ".join(f"{stage} {ms:.1f}" for stage, ms in report.timings_ms.items())
    out.print(
        f"fused = the shipped ranking (weights: {weights}); pages rank where their best chunk "
        f"ranks; pool {report.candidate_pool:.0f} chunks per question",
        highlight=False,
        markup=False,
    )
    out.print(f"mean search time (ms): {timings}", highlight=False, markup=False)
    if report.follow_ups is not None:
        for mode, rates in report.follow_ups.rates().items():
            out.print(
                f"follow-ups ({mode}): {rates['cited']:.0%} cite an acceptable page, "
                f"{rates['sources']:.0%} have one among their sources "
                f"({rates['conversations']:.0f} conversations)",
                highlight=False,
                markup=False,
            )
        out.print(
            "  rules: the offline rule-based condenser; model: a provider that writes the "
            "hand-written standalone question (an ideal model); alone: the follow-up asked "
            "without its conversation",
            highlight=False,
            markup=False,
        )
    if report.no_answer is not None:
        rates = report.no_answer.rates()
        shown = "; ".join(f"{name} {value:.0%}" for name, value in rates.items())
        out.print(
            f"no-answer at threshold {report.no_answer.threshold:g}: {shown}",
            highlight=False,
            markup=False,
        )
    failures = report.worst(worst)
    if failures:
        out.print(f"worst {len(failures)} (rank of the first acceptable page; - = not in pool):")
        for result in failures:
            ranks = " ".join(f"{stage}={_rank(rank)}" for stage, rank in result.ranks.items())
            out.print(
                f"  {escape(f'[{result.question.kind}]')} {escape(result.question.text)}\n"
                f"    wants {escape(' '.join(result.question.acceptable))}; {ranks}; "
                f"top: {escape(', '.join(result.top_pages))}",
                highlight=False,
            )


def evaluate_site_command(
    questions: str, kb: str, json_file: str | None, *, retrieval_only: bool = False
) -> None:
    """Evaluate knowledge base ``kb`` on the question set at ``questions``."""
    from assistant.evaluation import evaluate_site, load_question_set

    question_set = run(lambda: load_question_set(Path(questions)))
    assistant = open_assistant()
    with progress_bars(show_total=True) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = progress.add_task(_TASKS[task], total=total)
            progress.update(tasks[task], completed=done)

        report = run(
            lambda: evaluate_site(
                assistant,
                question_set,
                kb=kb,
                follow_ups=not retrieval_only,
                no_answer=not retrieval_only,
                progress=on_progress,
            )
        )
    print_site_report(report, console)
    if json_file is not None:
        try:
            Path(json_file).write_text(json.dumps(report.to_json(), indent=1) + "\n", "utf-8")
        except OSError as exc:
            errors.print(f"[red]error:[/red] cannot write {escape(json_file)}: {exc.strerror}")
            raise typer.Exit(1) from None
        console.print(f"wrote {json_file}", highlight=False, markup=False)
