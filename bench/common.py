"""Helpers shared by the benchmarks: latency summaries, machine facts, memory and JSON output.

Importing this module keeps the model libraries off the hub (the encoder ships inside a
package), so a benchmark imports it before anything that loads them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from assistant.knowledge.encoder import TransformerEncoder

__all__ = [
    "ROOT",
    "Latency",
    "Stopwatch",
    "add_run_arguments",
    "available_memory_bytes",
    "finish_results",
    "format_bytes",
    "load_average",
    "machine_facts",
    "minor_page_faults",
    "new_results",
    "pass_fail",
    "percentile",
    "product_encoder",
    "progress_bar",
    "table",
    "timed_runs",
    "write_json",
]


# Read by huggingface_hub and transformers when they are imported, hence at this import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (``examples/`` and ``../shared/eval`` are found from here)."""


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``, interpolated linearly between ranks.

    >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50)
    3.0
    """
    if not samples:
        raise ValueError("percentile of no samples")
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


@dataclass(frozen=True)
class Latency:
    """Summary of repeated timings, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Latency:
        """Summarise ``samples_ms`` (at least one sample)."""
        return cls(
            count=len(samples_ms),
            p50_ms=round(percentile(samples_ms, 50), 3),
            p99_ms=round(percentile(samples_ms, 99), 3),
            mean_ms=round(float(np.mean(samples_ms)), 3),
            min_ms=round(min(samples_ms), 3),
            max_ms=round(max(samples_ms), 3),
        )

    def as_dict(self) -> dict[str, float]:
        """The summary as JSON-ready numbers."""
        return {key: float(value) for key, value in asdict(self).items()}


class Stopwatch:
    """Durations of named stages collected over repeated runs.

    >>> watch = Stopwatch()
    >>> with watch.time("stage"):
    ...     pass
    >>> watch.summary()["stage"].count
    1
    """

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    @contextmanager
    def time(self, stage: str, *, record: bool = True) -> Iterator[None]:
        """Time the block; ``record=False`` runs it untimed (a warm-up)."""
        started = time.perf_counter()
        yield
        if record:
            self.add(stage, (time.perf_counter() - started) * 1000.0)

    def add(self, stage: str, milliseconds: float) -> None:
        """Record one duration of ``stage``."""
        self.samples.setdefault(stage, []).append(milliseconds)

    def summary(self) -> dict[str, Latency]:
        """One summary per stage, in the order the stages were first seen."""
        return {stage: Latency.of(values) for stage, values in self.samples.items() if values}


def timed_runs(function: Callable[[], object], runs: int, warmup: int = 2) -> Latency:
    """Latency of ``function`` over ``runs`` calls after ``warmup`` untimed calls."""
    samples = []
    for position in range(warmup + runs):
        started = time.perf_counter()
        function()
        if position >= warmup:
            samples.append((time.perf_counter() - started) * 1000.0)
    return Latency.of(samples)


def available_memory_bytes() -> int | None:
    """Memory the kernel can give new allocations (``MemAvailable``), None where unknown."""
    try:
        lines = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _total_memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def minor_page_faults() -> int:
    """Minor page faults of the calling thread so far (each first touch of a fresh page)."""
    return resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)).ru_minflt


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    return [round(value, 2) for value in os.getloadavg()]


def machine_facts() -> dict[str, object]:
    """What the numbers were measured on."""
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_total_bytes": _total_memory_bytes(),
        "memory_available_bytes": available_memory_bytes(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def format_bytes(count: float | None) -> str:
    """Bytes in binary units, e.g. ``format_bytes(3 * 2**30) == '3.00 GiB'``."""
    if count is None:
        return "n/a"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def product_encoder() -> TransformerEncoder:
    """The encoder the product builds from its settings (``ASSISTANT_*`` in the environment,
    no ``.env``): the same model, runtime and threads a server would use."""
    # Imported here: this module sets the offline variables before transformers is imported.
    from assistant.knowledge.encoder import TransformerEncoder
    from assistant.settings import Settings
    from assistant.wiring import build_encoder

    encoder = build_encoder(Settings(_env_file=None))  # type: ignore[call-arg]
    if not isinstance(encoder, TransformerEncoder):
        raise SystemExit(f"the benchmark needs a TransformerEncoder, got {type(encoder).__name__}")
    return encoder


def process_rss(pid: int | str = "self") -> int:
    """Resident memory of process ``pid`` (this one by default) in bytes; 0 when it cannot be
    read (the process is gone, or the system has no ``/proc``)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def progress_bar(console: Console) -> Progress:
    """A progress display with a bar, a count and the elapsed time."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """A rich table: the first column left-aligned, the others right-aligned."""
    result = Table(title=title)
    for position, column in enumerate(columns):
        result.add_column(column, justify="left" if position == 0 else "right")
    for row in rows:
        result.add_row(*row)
    return result


def pass_fail(ok: bool) -> str:
    """A coloured PASS or FAIL for a rich table cell."""
    return "[green]PASS[/green]" if ok else "[red]FAIL[/red]"


def write_json(path: Path, data: object) -> None:
    """Write ``data`` as indented JSON, replacing the file in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    staging.replace(path)


def add_run_arguments(parser: argparse.ArgumentParser, default_questions: Sequence[Path]) -> None:
    """Add the options every scale benchmark takes: ``--questions``, ``--seed``, ``--json``."""
    parser.add_argument(
        "--questions",
        type=Path,
        nargs="+",
        default=list(default_questions),
        help="text files (one question per line) or BEIR queries.jsonl files",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results to this file")


def new_results(args: argparse.Namespace, **settings: object) -> dict[str, Any]:
    """The start of a run's JSON: the machine, and the arguments (paths as text) plus ``settings``.

    ``args`` must hold the options of ``add_run_arguments``.
    """
    return {
        "machine": machine_facts(),
        "settings": vars(args)
        | {
            "questions": [str(path) for path in args.questions],
            "json": str(args.json) if args.json else None,
        }
        | settings,
    }


def finish_results(results: dict[str, Any], started: float, json_path: Path | None) -> None:
    """Record the run's total time (since ``perf_counter()`` gave ``started``) and the load
    average at its end, and write the JSON when ``json_path`` is given."""
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_end"] = load_average()
    if json_path is not None:
        write_json(json_path, results)
