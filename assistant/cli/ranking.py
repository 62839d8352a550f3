"""``assistant tune`` and ``assistant eval``: improve and measure the ranking."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import (
    JsonOption,
    KbOption,
    app,
    console,
    errors,
    escape,
    open_assistant,
    progress_bars,
    run,
)

__all__ = ["evaluate_command", "tune"]


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

    assistant = open_assistant()
    labels = {
        "encoding": "texts encoded",
        "training": "training steps",
        "evaluation": "held-out queries",
        "cache": "token cache rebuilt",
    }
    with progress_bars(disable=as_json, show_total=True) as progress:
        tasks: dict[str, Any] = {}

        def on_progress(step: TuneStep) -> None:
            if step.task not in tasks:
                tasks[step.task] = progress.add_task(labels[step.task], total=step.total)
            elif step.total is not None:
                progress.update(tasks[step.task], total=step.total)
            progress.advance(tasks[step.task], step.advance)

        options = TuneOptions(pairs=PairOptions(max_pairs=max_pairs))
        report = run(lambda: assistant.tune(kb, progress=on_progress, options=options))
    if as_json:
        print(json.dumps({"kb": kb, **asdict(report)}))
        return
    outcome = (
        f"[green]kept[/green] head {report.head_version}"
        if report.kept
        else "[yellow]not kept[/yellow] (not better than the current ranking beyond noise)"
    )
    console.print(
        f"[bold]{kb}[/bold]: held-out MRR@10 {report.mrr_before:.3f} → {report.mrr_after:.3f} "
        f"(± {report.gain_standard_error:.3f}) on {report.held_out_queries} queries; {outcome}"
    )
    console.print(
        f"{report.pairs} pairs, {report.steps} steps in {report.seconds:.0f}s; token vectors "
        f"{report.bytes_per_token_before} → {report.bytes_per_token_after} bytes each",
        highlight=False,
    )


@app.command("eval")
def evaluate_command(
    dataset_dir: Annotated[
        str | None,
        typer.Argument(help="A test collection in BEIR layout (corpus, queries, qrels)."),
    ] = None,
    json_file: Annotated[
        str | None, typer.Option("--json", help="Also write the results as JSON to this file.")
    ] = None,
    kb: Annotated[
        str | None,
        typer.Option(
            "--kb",
            help="Knowledge base (BEIR: default eval-<dataset>; with --questions: required, "
            "an existing one).",
        ),
    ] = None,
    max_queries: Annotated[
        int | None, typer.Option(help="Evaluate only the first N judged queries.", min=1)
    ] = None,
    questions: Annotated[
        str | None,
        typer.Option(
            "--questions",
            help="A website question set (folder with questions.tsv, unanswerable.tsv, "
            "conversations.tsv, or one questions.tsv) to evaluate an existing knowledge base on.",
        ),
    ] = None,
    retrieval_only: Annotated[
        bool,
        typer.Option(help="With --questions: skip the follow-up and no-answer questions."),
    ] = False,
) -> None:
    """Measure retrieval quality of every ranking stage on a BEIR test set, or (with
    --questions) of an existing knowledge base on a website question set."""
    if questions is not None:
        if dataset_dir is not None or kb is None:
            errors.print(
                "[red]error:[/red] --questions evaluates an existing knowledge base: give "
                "--kb NAME and no dataset folder"
            )
            raise typer.Exit(2)
        from assistant.cli.site_eval import evaluate_site_command

        evaluate_site_command(questions, kb, json_file, retrieval_only=retrieval_only)
        return
    if dataset_dir is None:
        errors.print("[red]error:[/red] give a BEIR dataset folder, or --questions DIR --kb NAME")
        raise typer.Exit(2)
    _evaluate_beir(dataset_dir, json_file, kb, max_queries)


def _evaluate_beir(
    dataset_dir: str, json_file: str | None, kb: str | None, max_queries: int | None
) -> None:
    from pathlib import Path

    from assistant.evaluation import METRIC_NAMES, EvaluationStep, evaluate

    assistant = open_assistant()
    with progress_bars() as progress:
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

        report = run(
            lambda: evaluate(
                assistant, Path(dataset_dir), kb=kb, max_queries=max_queries, progress=on_progress
            )
        )
    table = Table(title=report.title(), title_justify="left")
    table.add_column("run")
    for name in METRIC_NAMES:
        table.add_column(name, justify="right")
    for run_name, metrics in report.runs.items():
        values = metrics.as_dict()
        table.add_row(run_name, *(f"{values[name]:.3f}" for name in METRIC_NAMES))
    console.print(table)
    for line in report.notes():
        console.print(line, highlight=False, markup=False)
    if json_file is not None:
        try:
            Path(json_file).write_text(json.dumps(report.to_json(), indent=2) + "\n", "utf-8")
        except OSError as exc:
            errors.print(f"[red]error:[/red] cannot write {escape(json_file)}: {exc.strerror}")
            raise typer.Exit(1) from None
        console.print(f"wrote {json_file}", highlight=False, markup=False)
