"""Calibrating the no-answer threshold on questions the knowledge base can and cannot answer.

A chat turn is declined (a content gap, no provider call) when the best late-interaction score
of its hits, the mean MaxSim over the query tokens in -1..1, is under the threshold. The sample
help centre is ingested into a temporary data dir; the answerable questions
(``examples/questions.tsv``) and the unanswerable ones (``examples/unanswerable.txt``) are
scored; the threshold is swept. The rule: **decline as many unanswerable questions as possible
while keeping at least 95% of the answerable ones**; of those thresholds the lowest (it keeps
the most), centred between the two scores around it. ``--beir NAME`` does the same on a BEIR
corpus: its judged queries against the queries of other collections.

    python bench/no_answer.py [--beir scifact --beir-unanswerable cranfield] [--json FILE]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

# The benchmark never talks to the model hub: the encoder ships inside a package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from assistant.chat.orchestrator import DEFAULT_NO_ANSWER_THRESHOLD, TurnBudget  # noqa: E402
from assistant.core import Assistant  # noqa: E402
from assistant.evaluation import BeirDataset, load_beir  # noqa: E402
from assistant.knowledge.encoder import Encoder  # noqa: E402
from assistant.knowledge.ingest import ProgressEvent  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from bench.common import load_average, machine_facts, progress_bar, table, write_json  # noqa: E402
from connectors.beir import BeirConnector  # noqa: E402

SAMPLE = ROOT / "examples" / "help-centre"
ANSWERABLE = ROOT / "examples" / "questions.tsv"
UNANSWERABLE = ROOT / "examples" / "unanswerable.txt"
EVAL = ROOT.parent / "shared" / "eval"
KEEP_GOAL = 0.95
# The orchestrator takes the best score over the hits of a search for this many passages.
CANDIDATES = TurnBudget().candidates

T = TypeVar("T")

console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a threshold does: shares kept and declined, per group of questions."""

    threshold: float
    kept: float
    """Share of answerable questions answered (score >= threshold)."""
    declined: float
    """Share of unanswerable questions declined (score < threshold, or no hit at all)."""
    balanced_accuracy: float
    declined_by_group: dict[str, float]


def read_questions(path: Path) -> dict[str, list[str]]:
    """Questions by group: a ``.tsv`` file's first column, or a text file with optional
    ``# section: NAME`` lines (other ``#`` lines are comments)."""
    groups: dict[str, list[str]] = {}
    group = path.stem
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("\t", 1)[0].strip() if path.suffix == ".tsv" else line.strip()
        if text.startswith("# section:"):
            group = text.removeprefix("# section:").strip()
        elif text and not text.startswith("#"):
            groups.setdefault(group, []).append(text)
    return groups


def best_scores(assistant: Assistant, kb: str, questions: Sequence[str]) -> list[float | None]:
    """The best plain MaxSim of each question's hits (``best_match``), as the orchestrator
    takes it."""
    scores: list[float | None] = []
    with progress_bar(console) as progress:
        task = progress.add_task(f"scoring ({kb})", total=len(questions))
        for question in questions:
            scores.append(assistant.search(question, kb=kb, k=CANDIDATES).best_match)
            progress.advance(task)
    return scores


def outcome(
    threshold: float,
    answerable: Sequence[float | None],
    unanswerable: Mapping[str, Sequence[float | None]],
) -> Outcome:
    """Shares kept and declined at ``threshold``; a question without hits is always declined."""
    kept = sum(s is not None and s >= threshold for s in answerable) / len(answerable)
    by_group = {
        group: sum(s is None or s < threshold for s in scores) / len(scores)
        for group, scores in unanswerable.items()
    }
    every = [s for scores in unanswerable.values() for s in scores]
    declined = sum(s is None or s < threshold for s in every) / len(every)
    return Outcome(threshold, kept, declined, (kept + declined) / 2, by_group)


def _in_gap(lower: float, upper: float) -> float:
    """A round number near the middle of ``(lower, upper]`` (every value there acts alike)."""
    middle, quarter = (lower + upper) / 2, (upper - lower) / 4
    for digits in (2, 3, 4):
        # Within the middle half of the gap, so no score sits right next to it.
        if abs(round(middle, digits) - middle) <= quarter:
            return round(middle, digits)
    return middle


def recommend(answerable: Sequence[float | None], unanswerable: Sequence[float | None]) -> float:
    """The threshold that declines the most ``unanswerable`` while keeping >= 95% of
    ``answerable``; of those, the one that keeps the most answerable, centred in its gap."""
    kept = sorted((s for s in answerable if s is not None), reverse=True)
    needed = math.ceil(KEEP_GOAL * len(answerable) - 1e-9)
    if needed == 0:
        return 1.0
    if len(kept) < needed:
        return -1.0
    # Raising the threshold never declines fewer, so the highest allowed one declines the most.
    highest = kept[needed - 1]
    present = [s for s in unanswerable if s is not None]
    declined = [s for s in present if s < highest]
    every = [*kept, *present]
    if not declined:
        # Nothing can be declined at this recall: keep every question.
        return _in_gap(min(every) - 0.02, min(every))
    # The lowest threshold declining the same questions lies just above the last of them.
    last = max(declined)
    return _in_gap(last, min(s for s in every if s > last))


def calibrate(
    name: str,
    answerable: Sequence[float | None],
    unanswerable: Mapping[str, Sequence[float | None]],
) -> dict[str, Any]:
    """The sweep over a 0.01 grid, the recommended threshold, the best balanced accuracy."""
    every = [
        s for s in [*answerable, *(s for v in unanswerable.values() for s in v)] if s is not None
    ]
    low, high = math.floor(min(every) * 100) - 1, math.ceil(max(every) * 100) + 1
    sweep = [outcome(step / 100, answerable, unanswerable) for step in range(low, high + 1)]
    chosen = recommend(answerable, [s for scores in unanswerable.values() for s in scores])
    best = max(sweep, key=lambda row: (row.balanced_accuracy, -row.threshold))
    return {
        "name": name,
        "answerable_questions": len(answerable),
        "unanswerable_questions": {group: len(scores) for group, scores in unanswerable.items()},
        "rule": (
            f"decline the most unanswerable while keeping >= {KEEP_GOAL:.0%} of answerable; "
            "the lowest such threshold, centred between two scores"
        ),
        "recommended": asdict(outcome(chosen, answerable, unanswerable)),
        "best_balanced_accuracy": asdict(best),
        "current_default": asdict(outcome(DEFAULT_NO_ANSWER_THRESHOLD, answerable, unanswerable)),
        "sweep": [asdict(row) for row in sweep],
    }


def ingest_sample(assistant: Assistant) -> dict[str, float]:
    """The sample help centre's pages and documents, as the README ingests them."""
    sources = [*sorted(str(p) for p in (SAMPLE / "site").glob("*.html")), str(SAMPLE / "docs")]
    report = assistant.ingest(sources, kb="sample")
    if report.failures:
        raise SystemExit(f"ingest failed: {report.failures}")
    return {
        "documents": report.count("added"),
        "chunks": report.chunks_embedded,
        "seconds": round(report.seconds, 1),
    }


def evenly(items: Sequence[T], limit: int) -> list[T]:
    """``limit`` of ``items`` spread evenly over them, in order (all of them when fewer)."""
    if limit >= len(items):
        return list(items)
    return [items[position * len(items) // limit] for position in range(limit)]


def beir_subset(name: str, queries: int, documents: int) -> tuple[BeirDataset, list[str]]:
    """``queries`` judged queries of a collection and a corpus of about ``documents`` rows:
    every document judged relevant to those queries, then others spread over the corpus."""
    dataset = load_beir(EVAL / name)
    judged = evenly([(q, text) for q, text in dataset.judged_queries() if text.strip()], queries)
    if documents:
        relevant = {
            doc_id
            for query_id, _ in judged
            for doc_id, grade in dataset.qrels[query_id].items()
            if grade >= 1
        }
        others = [row.doc_id for row in dataset.corpus if row.doc_id not in relevant]
        keep = relevant | set(evenly(others, max(0, documents - len(relevant))))
        dataset = replace(dataset, corpus=[row for row in dataset.corpus if row.doc_id in keep])
    return dataset, [text for _, text in judged]


def ingest_beir(assistant: Assistant, dataset: BeirDataset) -> dict[str, float]:
    """A BEIR corpus, one document per row, into a knowledge base named after it."""
    with progress_bar(console) as progress:
        task = progress.add_task(f"ingest {dataset.name}", total=len(dataset.corpus))

        def advance(event: ProgressEvent) -> None:
            if event.kind == "loaded":
                progress.advance(task, event.count)

        connector = BeirConnector(dataset)
        report = assistant.ingest_connectors([connector], kb=dataset.name, progress=advance)
    return {
        "documents": report.count("added"),
        "chunks": report.chunks_embedded,
        "seconds": round(report.seconds, 1),
    }


def _share(value: float) -> str:
    return f"{value:.0%}"


def print_calibration(result: Mapping[str, Any]) -> None:
    """The sweep (the rows where the outcome changes) and the recommendation."""
    groups = list(result["unanswerable_questions"])
    chosen = result["recommended"]["threshold"]
    rows, previous = [], None
    for row in result["sweep"]:
        key = (row["kept"], row["declined"])
        if key != previous:
            rows.append(row)
            previous = key
    rows = sorted([*rows, result["recommended"]], key=lambda row: row["threshold"])
    console.print(
        table(
            f"{result['name']}: {result['answerable_questions']} answerable, "
            + ", ".join(f"{n} {g}" for g, n in result["unanswerable_questions"].items())
            + " (decline when the best score < threshold; rows where the outcome changes)",
            ["threshold", "answerable kept", "unanswerable declined", *groups, "balanced acc."],
            [
                [
                    f"{row['threshold']:.3f}"
                    + ("  <- recommended" if row is result["recommended"] else ""),
                    _share(row["kept"]),
                    _share(row["declined"]),
                    *(_share(row["declined_by_group"][g]) for g in groups),
                    f"{row['balanced_accuracy']:.3f}",
                ]
                for row in rows
            ],
        )
    )
    best, default = result["best_balanced_accuracy"], result["current_default"]
    console.print(
        f"[bold]{result['name']}: recommended threshold {chosen:.3f}[/bold] ({result['rule']}): "
        f"keeps {_share(result['recommended']['kept'])} of answerable, declines "
        f"{_share(result['recommended']['declined'])} of unanswerable. Best balanced accuracy "
        f"{best['balanced_accuracy']:.3f} at {best['threshold']:.2f}; the current default "
        f"{default['threshold']:.2f} keeps {_share(default['kept'])}, declines "
        f"{_share(default['declined'])}."
    )
    transferred = result.get("sample_threshold_here")
    if transferred:
        console.print(
            f"the sample's threshold {transferred['threshold']:.3f} on the {result['name']}: "
            f"keeps {_share(transferred['kept'])}, declines {_share(transferred['declined'])}"
        )


def print_closest(scored: Mapping[str, Sequence[tuple[str, float | None]]], count: int = 5) -> None:
    """The lowest-scoring answerable and the highest-scoring unanswerable questions."""
    rows = [(q, group, -1.0 if s is None else s) for group, v in scored.items() for q, s in v]
    answerable = sorted((row for row in rows if row[1] == "answerable"), key=lambda r: r[2])
    others = sorted((row for row in rows if row[1] != "answerable"), key=lambda r: -r[2])
    console.print(
        table(
            "closest calls: lowest answerable, highest unanswerable (-1: no hit)",
            ["question", "group", "best score"],
            [[q, group, f"{s:.3f}"] for q, group, s in answerable[:count] + others[:count]],
        )
    )


def run_sample(
    assistant: Assistant, answerable_file: Path, unanswerable_file: Path
) -> tuple[dict[str, Any], dict[str, list[tuple[str, float | None]]]]:
    """Calibrate on the sample help centre; also every question with its score, by group."""
    answerable = [q for qs in read_questions(answerable_file).values() for q in qs]
    scored = {
        "answerable": list(
            zip(answerable, best_scores(assistant, "sample", answerable), strict=True)
        )
    }
    for group, questions in read_questions(unanswerable_file).items():
        scored[group] = list(
            zip(questions, best_scores(assistant, "sample", questions), strict=True)
        )
    result = calibrate(
        "sample help centre",
        [score for _, score in scored["answerable"]],
        {g: [score for _, score in v] for g, v in scored.items() if g != "answerable"},
    )
    result["scores"] = {
        group: [{"question": q, "score": score} for q, score in items]
        for group, items in scored.items()
    }
    return result, scored


def run_beir(
    assistant: Assistant,
    name: str,
    foreign: Sequence[str],
    queries: int,
    documents: int,
    sample_threshold: float,
) -> dict[str, Any]:
    """Calibrate on a BEIR corpus: its judged queries against queries of other collections."""
    dataset, own = beir_subset(name, queries, documents)
    ingested = ingest_beir(assistant, dataset)
    answerable = best_scores(assistant, name, own)
    unanswerable = {}
    for other in foreign:
        texts = [text for text in load_beir(EVAL / other).queries.values() if text.strip()]
        unanswerable[f"{other} queries"] = best_scores(assistant, name, evenly(texts, queries))
    result = calibrate(f"{name} corpus", answerable, unanswerable)
    result["ingest"] = ingested
    result["sample_threshold_here"] = asdict(outcome(sample_threshold, answerable, unanswerable))
    return result


def main(argv: Sequence[str] | None = None, *, encoder: Encoder | None = None) -> None:
    """Ingest, score, sweep and recommend; print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--answerable", type=Path, default=ANSWERABLE)
    parser.add_argument("--unanswerable", type=Path, default=UNANSWERABLE)
    parser.add_argument(
        "--beir", default="none", help="a collection in ../shared/eval (e.g. scifact), or none"
    )
    parser.add_argument("--beir-unanswerable", nargs="+", default=["cranfield"])
    parser.add_argument("--beir-queries", type=int, default=100, help="queries per group")
    parser.add_argument(
        "--beir-documents", type=int, default=1000, help="corpus rows to ingest (0: all)"
    )
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)
    if args.beir in args.beir_unanswerable:
        parser.error("--beir-unanswerable must name other collections than --beir")
    started = time.perf_counter()
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "settings": options | {"candidates": CANDIDATES, "keep_goal": KEEP_GOAL},
    }
    with tempfile.TemporaryDirectory(prefix="bench-no-answer-") as scratch:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=Path(scratch),
            database_url=None,
            chroma_url=None,
            redis_url=None,
        )
        results["settings"]["embedding_model"] = settings.embedding_model
        results["settings"]["late_interaction_model"] = settings.late_interaction_model
        with Assistant(settings, encoder=encoder) as assistant:
            results["ingest"] = {"sample": ingest_sample(assistant)}
            sample, scored = run_sample(assistant, args.answerable, args.unanswerable)
            results["calibrations"] = [sample]
            if args.json:
                write_json(args.json, results)
            if args.beir != "none":
                results["calibrations"].append(
                    run_beir(
                        assistant,
                        args.beir,
                        args.beir_unanswerable,
                        args.beir_queries,
                        args.beir_documents,
                        sample["recommended"]["threshold"],
                    )
                )
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_end"] = load_average()
    if args.json:
        write_json(args.json, results)
    print_closest(scored)
    for calibration in results["calibrations"]:
        print_calibration(calibration)
    console.print(f"total {results['total_seconds']:.0f} s, load average {load_average()}")


if __name__ == "__main__":
    main()
