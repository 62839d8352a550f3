"""Faults on the production topology: processes killed or restarted under concurrent load.

The topology of ``docker/compose.yaml`` runs as real processes on loopback
(``tests.support.topology``): PostgreSQL, ``redis-server``, ``chroma run``, two ``assistant
serve`` replicas and two ``assistant worker`` processes, with a fake OpenAI-compatible
provider in this process for the ``llm`` assistant. A small help site is served on loopback
and ingested once (the clean run). Then, for each fault in turn, ``--clients`` clients stream
chat turns (widget-style with the public key, origin and visitor token, or with the secret key),
alternating between the replicas; for the faults that concern ingestion a crawl of the site
into a fresh assistant runs too; the fault is injected mid-run, and the run is judged: chats
sent, failed cleanly (a problem response, an ``error`` event, or a connection the client may
retry), hung, and lost or corrupt data (chunks missing or extra against the clean run, streams
that end without ``done`` or ``error``, half-written or mismatched turns in PostgreSQL, an
ingest that did not succeed). The goal is 0 hung and 0 lost or corrupt everywhere, and 0
failed chats for Redis and for a worker killed.

    python bench/faults.py [--faults redis worker api chroma postgres provider]
        [--clients 8] [--pages 12] [--json faults.json]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Run as a script, the repository root must be importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console

from bench.common import load_average, machine_facts, pass_fail, table, write_json
from tests.chat.fake_openai import FakeOpenAIServer
from tests.support.fault_load import prepare, serve_site
from tests.support.fault_scenarios import FAULTS, FaultOutcome, provider_answers, run_fault
from tests.support.topology import running_topology

console = Console()


def passed(outcome: FaultOutcome) -> bool:
    """Whether a fault's run meets the goal."""
    return not outcome.problems()


def print_table(summaries: Sequence[dict[str, Any]], outcomes: Sequence[FaultOutcome]) -> None:
    """One row per fault, then what failed and why."""
    rows = [
        [
            summary["fault"],
            str(summary["chats"]),
            str(summary["failed_clean"]),
            str(summary["hung"]),
            str(summary["lost_or_corrupt"]),
            "-" if summary["job"] is None else f"{summary['job']['status']}",
            f"{summary['seconds']:.0f}",
            pass_fail(passed(outcome)),
        ]
        for summary, outcome in zip(summaries, outcomes, strict=True)
    ]
    console.print(
        table(
            "faults under load (chats streamed through 2 API replicas)",
            [
                *("fault", "requests sent", "failed (clean)", "hung", "lost or corrupt"),
                *("ingest", "seconds", "goal"),
            ],
            rows,
        )
    )
    for summary in summaries:
        details = {
            key: summary[key]
            for key in ("problems", "failure_kinds", "providers", "turn_problems", "notes")
            if summary[key]
        }
        if summary["lost_chunks"] or summary["extra_chunks"]:
            details["chunks"] = f"{summary['lost_chunks']} lost, {summary['extra_chunks']} extra"
        console.print(f"[bold]{summary['fault']}[/bold]: {summary['description']}; {details}")


async def run_all(args: argparse.Namespace, results: dict[str, Any]) -> list[FaultOutcome]:
    """Bring the topology up, ingest the clean run, then run each fault in turn."""
    outcomes: list[FaultOutcome] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-faults-") as scratch,
        FakeOpenAIServer() as provider,
        serve_site(Path(scratch) / "site", args.pages) as site,
    ):
        provider_answers(provider)
        environment = {"OPENAI_BASE_URL": provider.url, "OPENAI_API_KEY": "sk-faults"}
        console.log(f"starting the topology, load average {load_average()}")
        started = time.perf_counter()
        with running_topology(environment=environment) as topology:
            results["topology_start_seconds"] = round(time.perf_counter() - started, 1)
            console.log(f"topology ready in {results['topology_start_seconds']} s; clean ingest")
            setup = await asyncio.to_thread(prepare, topology, site, args.pages)
            results["clean_run_chunks"] = sum(setup.baseline.values())
            for name in args.faults:
                console.log(f"fault {name}, load average {load_average()}")
                outcome = await run_fault(
                    topology, setup, FAULTS[name], clients=args.clients, provider=provider
                )
                outcomes.append(outcome)
                results["faults"].append(outcome.summary())
                if args.json:
                    write_json(args.json, results)
    return outcomes


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run the faults, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--faults", nargs="+", choices=list(FAULTS), default=list(FAULTS))
    parser.add_argument("--clients", type=int, default=8, help="concurrent chat clients")
    parser.add_argument("--pages", type=int, default=12, help="pages of the ingested site")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.pages < 4:
        parser.error("--clients must be at least 1 and --pages at least 4")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "settings": {
            "faults": args.faults,
            "clients": args.clients,
            "pages": args.pages,
            "json": str(args.json) if args.json else None,
        },
        "faults": [],
    }
    outcomes = asyncio.run(run_all(args, results))
    results["passed"] = all(passed(outcome) for outcome in outcomes)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_end"] = load_average()
    if args.json:
        write_json(args.json, results)
    print_table(results["faults"], outcomes)
    console.print(
        f"all goals met: {pass_fail(results['passed'])}; total {results['total_seconds']:.0f} s, "
        f"load average {load_average()}"
    )


if __name__ == "__main__":
    main()
