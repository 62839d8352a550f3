"""Offline follow-ups: does the second turn of a conversation cite a page that answers it?

Two-turn conversations over the sample help centre (``bench/help_centre_conversations.tsv``)
and over Python's tutorial, HOWTOs and FAQ (the rows of ``bench/sites/python/conversations.tsv``
whose answer is in those sections) are chatted with the default offline answerer (rules
condenser, extractive answer). A follow-up passes when one of its citations names an acceptable
page. The table gives the share that pass; ``--json`` also keeps every standalone question and
answer.

    python bench/follow_ups.py --data-dir /tmp/pydocs-bench [--json follow_ups.json]

``--data-dir`` is the one ``bench/answerer.py`` ingests the Python docs into (ingested here if
missing); the help centre is ingested into ``--data-dir``/help-centre once.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.common  # noqa: F401  # isort: skip

from rich.console import Console

from assistant.core import Assistant
from assistant.settings import Settings
from bench.answerer import KB_NAME, ensure_ingested, page_of
from bench.common import ROOT, finish_results, machine_facts, table

HELP_CENTRE = ROOT / "examples" / "help-centre"
HELP_CONVERSATIONS = ROOT / "bench" / "help_centre_conversations.tsv"
PYTHON_CONVERSATIONS = ROOT / "bench" / "sites" / "python" / "conversations.tsv"
SECTIONS = ("tutorial/", "howto/", "faq/")


def read_rows(path: Path) -> list[list[str]]:
    """The tab-separated rows of ``path``, comments and blank lines left out."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


def conversations() -> dict[str, list[tuple[str, str, set[str]]]]:
    """(first question, follow-up, acceptable pages) by knowledge base."""
    help_centre = [
        (first, second, set(pages.split()))
        for first, second, pages in read_rows(HELP_CONVERSATIONS)
    ]
    python = [
        (first, second, set(pages.split()))
        for first, second, _standalone, pages in read_rows(PYTHON_CONVERSATIONS)
        if any(page.startswith(SECTIONS) for page in pages.split())
    ]
    return {"help-centre": help_centre, "python": python}


def run(
    assistant: Assistant, kb: str, rows: list[tuple[str, str, set[str]]], help_pages: bool
) -> dict[str, Any]:
    """Chat every conversation; count the follow-ups that cite an acceptable page."""
    passed = 0
    details = []
    for first, second, pages in rows:
        opening = assistant.chat(first, kb=kb)
        follow = assistant.chat(second, kb=kb, conversation_id=opening.conversation_id)
        cited = [
            Path(citation.url).name if help_pages else page_of(citation.url)
            for citation in follow.citations
        ]
        ok = bool(set(cited) & pages)
        passed += ok
        details.append(
            {
                "first": first,
                "follow_up": second,
                "standalone": follow.standalone_question,
                "answer": follow.answer,
                "cited": cited,
                "acceptable": sorted(pages),
                "ok": ok,
            }
        )
    return {"conversations": len(rows), "passed": passed, "details": details}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="kept between runs")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine_facts()}
    sets = conversations()
    help_settings = Settings(_env_file=None, data_dir=args.data_dir / "help-centre")  # type: ignore[call-arg]
    with Assistant(help_settings) as assistant:
        if "default" not in assistant.knowledge_bases():
            published = sorted(HELP_CENTRE.glob("site/*.html")) + sorted(HELP_CENTRE.glob("docs/*"))
            assistant.ingest([str(path) for path in published])
        results["help-centre"] = run(assistant, "default", sets["help-centre"], help_pages=True)
    python_settings = Settings(
        _env_file=None, data_dir=args.data_dir, fetch_allow_hosts=("127.0.0.1",)
    )  # type: ignore[call-arg]
    with Assistant(python_settings) as assistant:
        ensure_ingested(assistant)
        results["python"] = run(assistant, KB_NAME, sets["python"], help_pages=False)
    rows = []
    for name in ("help-centre", "python"):
        outcome = results[name]
        rows.append(
            [
                name,
                str(outcome["conversations"]),
                str(outcome["passed"]),
                f"{outcome['passed'] / max(1, outcome['conversations']):.0%}",
            ]
        )
    total = sum(results[name]["conversations"] for name in ("help-centre", "python"))
    passed = sum(results[name]["passed"] for name in ("help-centre", "python"))
    rows.append(["all", str(total), str(passed), f"{passed / max(1, total):.0%}"])
    results["share_passed"] = round(passed / max(1, total), 3)
    Console().print(
        table(
            "follow-ups citing an acceptable page", ["", "conversations", "passed", "share"], rows
        )
    )
    finish_results(results, started, args.json)


if __name__ == "__main__":
    main()
