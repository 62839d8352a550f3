"""Offline answer latency on a real documentation site, and what the answers quote.

Python's tutorial, HOWTOs and FAQ (Debian's python3.11-doc) are served on loopback, crawled and
ingested once into ``--data-dir`` (kept between runs: a later run with the same directory skips
the ingest). Then every question of ``bench/pydocs_questions.tsv`` (question, expected page) is
asked with the default offline (extractive) answerer: once untimed to warm the model and the
token cache, then ``--rounds`` times timed. The table gives p50/p99 of ``ask`` and of the
answerer alone (the ``answer`` stage of the turn), its share of the turn, the CPU time of
``ask`` (all threads; on a shared machine wall time is mostly the other processes), and how many first
citations name the expected page. ``--compare`` reads an earlier run's JSON and counts the
questions whose first citation or quoted sentences changed. Goal: **ask p50 <= 60 ms**.

    python bench/answerer.py --data-dir /tmp/pydocs-bench [--json answers.json] [--compare old.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.common  # noqa: F401  # isort: skip

from rich.console import Console

from assistant.core import Assistant
from assistant.settings import Settings
from bench.common import (
    ROOT,
    Latency,
    finish_results,
    machine_facts,
    pass_fail,
    table,
)
from tests.support.servers import StaticSite
from tests.test_docs_site import DOCS

KB_NAME = "pydocs"
QUESTIONS = ROOT / "bench" / "pydocs_questions.tsv"
SECTIONS = ("tutorial", "howto", "faq")
TARGET_P50_MS = 60.0
# Only the three sections are crawled: everything else at the top level is refused.
ROBOTS = "User-agent: *\n" + "".join(
    f"Disallow: /{path}\n"
    for path in (
        "genindex",
        "py-modindex",
        "search",
        "_",
        "download",
        "whatsnew/",
        "library/",
        "reference/",
        "c-api/",
        "using/",
        "extending/",
        "installing/",
        "distributing/",
        "deprecations/",
        "contents",
        "glossary",
        "about",
        "bugs",
        "copyright",
        "license",
    )
)


def read_questions(path: Path) -> list[tuple[str, str]]:
    """(question, expected page path) pairs of a tab-separated file."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            question, page = line.split("\t")
            pairs.append((question.strip(), page.strip()))
    return pairs


def ensure_ingested(assistant: Assistant) -> dict[str, Any]:
    """Crawl the three sections into the knowledge base unless it already holds them."""
    if KB_NAME in assistant.knowledge_bases() and assistant.documents(kb=KB_NAME):
        return {"ingested": False, "documents": len(assistant.documents(kb=KB_NAME))}
    with StaticSite(DOCS, ROBOTS) as site:
        roots = [f"{site.url}{section}/index.html" for section in SECTIONS]
        report = assistant.ingest(roots, kb=KB_NAME, crawl=True, max_pages=400, max_depth=3)
    return {
        "ingested": True,
        "documents": report.count("added"),
        "chunks": report.chunks_embedded,
        "seconds": round(report.seconds, 1),
    }


def page_of(url: str) -> str:
    """``tutorial/venv.html`` of ``http://127.0.0.1:PORT/tutorial/venv.html#anchor``."""
    path = url.split("://", 1)[-1].split("/", 1)[-1]
    return path.split("#", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="kept between runs")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--rounds", type=int, default=2, help="timed passes over the questions")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument("--compare", type=Path, help="an earlier run's JSON to compare with")
    args = parser.parse_args()
    started = time.perf_counter()
    questions = read_questions(args.questions)
    # Every timed ``ask`` encodes its question (no encoding kept from the round before).
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=args.data_dir,
        fetch_allow_hosts=("127.0.0.1",),
        query_cache_bytes=0,
    )
    results: dict[str, Any] = {"machine": machine_facts(), "questions": len(questions)}
    with Assistant(settings) as assistant:
        results["knowledge_base"] = ensure_ingested(assistant)
        answers: dict[str, dict[str, Any]] = {}
        for question, page in questions:  # warm: model, token cache, answerer
            answer = assistant.ask(question, kb=KB_NAME)
            answers[question] = {
                "expected": page,
                "answer": answer.answer,
                "citations": [[c.n, page_of(c.url), c.quote] for c in answer.citations],
            }
        ask_ms: list[float] = []
        ask_cpu_ms: list[float] = []
        answer_ms: list[float] = []
        for _ in range(args.rounds):
            for question, _page in questions:
                begun, begun_cpu = time.perf_counter(), time.process_time()
                answer = assistant.ask(question, kb=KB_NAME)
                ask_ms.append((time.perf_counter() - begun) * 1000.0)
                # CPU time of every thread of the process: what the turn costs on a busy
                # machine, where wall time mostly measures the other processes.
                ask_cpu_ms.append((time.process_time() - begun_cpu) * 1000.0)
                answer_ms.append(answer.timings_ms.get("answer", 0.0))
    ask, answering, ask_cpu = Latency.of(ask_ms), Latency.of(answer_ms), Latency.of(ask_cpu_ms)
    right = sum(
        1
        for item in answers.values()
        if item["citations"] and item["citations"][0][1] == item["expected"]
    )
    results |= {
        "ask": ask.__dict__,
        "answerer": answering.__dict__,
        "ask_cpu": ask_cpu.__dict__,
        "answerer_share_of_p50": round(answering.p50_ms / ask.p50_ms, 3),
        "first_citation_on_expected_page": right,
        "answers": answers,
    }
    rows = [
        ["ask", f"{ask.p50_ms:.1f}", f"{ask.p99_ms:.1f}", pass_fail(ask.p50_ms <= TARGET_P50_MS)],
        ["answerer", f"{answering.p50_ms:.1f}", f"{answering.p99_ms:.1f}", ""],
        ["ask, CPU time", f"{ask_cpu.p50_ms:.1f}", f"{ask_cpu.p99_ms:.1f}", ""],
    ]
    console = Console()
    console.print(
        table(f"{len(questions)} questions x {args.rounds}", ["", "p50 ms", "p99 ms", "goal"], rows)
    )
    console.print(f"first citation on the expected page: {right}/{len(questions)}")
    if args.compare is not None:
        earlier = json.loads(args.compare.read_text(encoding="utf-8"))["answers"]
        results["compare"] = compare(earlier, answers)
        console.print(f"compared with {args.compare}: {results['compare']}")
    finish_results(results, started, args.json)


def compare(earlier: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]) -> dict[str, int]:
    """How many answers kept or changed their first cited page and their quoted sentences."""
    counts = {
        "same_quotes": 0,
        "same_first_page": 0,
        "first_page_right_before": 0,
        "first_page_right_now": 0,
    }
    for question, item in now.items():
        before = earlier.get(question)
        if before is None:
            continue
        first_before = before["citations"][0][1] if before["citations"] else None
        first_now = item["citations"][0][1] if item["citations"] else None
        counts["same_quotes"] += before["citations"] == item["citations"]
        counts["same_first_page"] += first_before == first_now
        counts["first_page_right_before"] += first_before == item["expected"]
        counts["first_page_right_now"] += first_now == item["expected"]
    return counts


if __name__ == "__main__":
    main()
