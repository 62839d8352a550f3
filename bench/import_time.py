"""Import time of the SDK: ``import assistant.client`` and ``import assistant`` in fresh processes.

Each target is imported in a new interpreter ``--runs`` times (after one untimed run that warms
the file cache); the table shows the median wall time of the whole process, the time of the
import statement alone, and how many modules the import loaded, with the heavy libraries among
them. An empty interpreter (``pass``) is the baseline. The goal for the client is under 0.5 s.

    python bench/import_time.py [--runs 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from bench.common import load_average, machine_facts, pass_fail, table, write_json  # noqa: E402

TARGETS = ("pass", "import assistant", "import assistant.client")
HEAVY = ("torch", "transformers", "chromadb", "sqlalchemy", "redis", "pypdf", "docx", "lxml")
GOAL_SECONDS = 0.5

# Runs in the child: times the statement itself and reports what it loaded, as one JSON line.
_PROBE = """
import json, sys, time
before = len(sys.modules)
started = time.perf_counter()
{statement}
seconds = time.perf_counter() - started
heavy = sorted(name for name in {heavy!r} if name in sys.modules)
print(json.dumps({{"seconds": seconds, "modules": len(sys.modules) - before, "heavy": heavy}}))
"""

console = Console()


@dataclass(frozen=True)
class ImportTiming:
    """One target's timings over the runs (seconds are medians)."""

    statement: str
    runs: int
    process_seconds: float
    import_seconds: float
    cpu_seconds: float
    modules: int
    heavy: list[str]


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def probe(statement: str) -> tuple[float, float, dict[str, object]]:
    """Run ``statement`` in a fresh interpreter: (wall seconds, CPU seconds, its report)."""
    code = _PROBE.format(statement=statement, heavy=HEAVY)
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    wall = time.perf_counter() - started
    cpu = _children_cpu_seconds() - cpu_before
    report: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return wall, cpu, report


def measure(statement: str, runs: int) -> ImportTiming:
    """Median timings of ``statement`` over ``runs`` fresh processes, after one warm-up."""
    probe(statement)
    walls: list[float] = []
    cpus: list[float] = []
    imports: list[float] = []
    report: dict[str, object] = {}
    for _ in range(runs):
        wall, cpu, report = probe(statement)
        walls.append(wall)
        cpus.append(cpu)
        imports.append(float(report["seconds"]))  # type: ignore[arg-type]
    return ImportTiming(
        statement=statement,
        runs=runs,
        process_seconds=round(statistics.median(walls), 4),
        import_seconds=round(statistics.median(imports), 4),
        cpu_seconds=round(statistics.median(cpus), 4),
        modules=int(report["modules"]),  # type: ignore[call-overload]
        heavy=list(report["heavy"]),  # type: ignore[call-overload]
    )


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Time every target; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed processes per target")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)
    load_before = load_average()
    timings = [measure(statement, args.runs) for statement in TARGETS]
    client = timings[-1]
    results: dict[str, object] = {
        "machine": machine_facts() | {"load_average_start": load_before},
        "settings": {"runs": args.runs, "goal_seconds": GOAL_SECONDS, "heavy": list(HEAVY)},
        "imports": [asdict(timing) for timing in timings],
        "client_under_goal": client.process_seconds < GOAL_SECONDS and not client.heavy,
        "load_average_end": load_average(),
    }
    console.print(
        table(
            f"Import time, median of {args.runs} fresh processes",
            ["statement", "process s", "import s", "process CPU s", "modules", "heavy libraries"],
            [
                [
                    timing.statement,
                    f"{timing.process_seconds:.3f}",
                    f"{timing.import_seconds:.3f}",
                    f"{timing.cpu_seconds:.3f}",
                    str(timing.modules),
                    ", ".join(timing.heavy) or "none",
                ]
                for timing in timings
            ],
        )
    )
    verdict = pass_fail(bool(results["client_under_goal"]))
    console.print(
        f"client process under {GOAL_SECONDS} s with no heavy library: {verdict} "
        f"(load average {load_before} → {results['load_average_end']})"
    )
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    console.print(f"total {time.perf_counter() - started:.1f} s")
