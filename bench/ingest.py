"""Ingest throughput, index size and answer latency on the embedded defaults.

Measures, in one run on this machine:
  * ingesting the bundled sample help centre (files) and a local documentation site (Python's
    tutorial from Debian's python3.11-doc, served on loopback and crawled): pages/s, chunks/s,
    and the data dir's size on disk;
  * `ask` latency over the 20 sample questions, in process with a warm model (p50/p99), and the
    wall time of one cold `assistant ask` command (model load included).

    python bench/ingest.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from assistant.core import Assistant  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.wiring import build_encoder  # noqa: E402
from tests.support.servers import StaticSite  # noqa: E402
from tests.test_docs_site import DOCS, ROBOTS  # noqa: E402

SAMPLE = ROOT / "examples" / "help-centre"


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args()
    # The encoder as the CLI and the server build it (ONNX Runtime unless configured otherwise).
    encoder = build_encoder(Settings(_env_file=None))  # type: ignore[call-arg]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "sample"
        assistant = Assistant(Settings(_env_file=None, data_dir=data), encoder=encoder)  # type: ignore[call-arg]
        sources = [*sorted(str(p) for p in (SAMPLE / "site").glob("*.html")), str(SAMPLE / "docs")]
        report = assistant.ingest(sources)
        pages = report.count("added")
        results["sample help centre"] = {
            "pages": pages,
            "chunks": report.chunks_embedded,
            "seconds": report.seconds,
            "pages_per_s": pages / report.seconds,
            "chunks_per_s": report.chunks_embedded / report.seconds,
            "disk_bytes": _size(data),
        }
        questions = (ROOT / "examples" / "questions.txt").read_text().splitlines()
        latencies = []
        for question in questions:
            started = time.perf_counter()
            assistant.ask(question)
            latencies.append((time.perf_counter() - started) * 1000)
        env = {**os.environ, "ASSISTANT_DATA_DIR": str(data)}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "assistant", "ask", questions[0]],
            env=env,
            check=True,
            capture_output=True,
        )
        cold = (time.perf_counter() - started) * 1000
        results["ask (in process, warm)"] = {
            "questions": len(latencies),
            "p50_ms": statistics.median(latencies),
            "p99_ms": _percentile(latencies, 0.99),
        }
        results["ask (one cold CLI run)"] = {"wall_ms": cold}
        assistant.close()

        site_data = Path(scratch) / "docs-site"
        with StaticSite(DOCS, ROBOTS) as site:
            settings = Settings(
                _env_file=None, data_dir=site_data, fetch_allow_hosts=("127.0.0.1",)
            )  # type: ignore[call-arg]
            crawler = Assistant(settings, encoder=encoder)
            report = crawler.ingest(
                [site.url + "tutorial/index.html"], crawl=True, max_pages=60, max_depth=2
            )
            pages = report.count("added")
            results["python docs site (crawl)"] = {
                "pages": pages,
                "chunks": report.chunks_embedded,
                "seconds": report.seconds,
                "pages_per_s": pages / report.seconds,
                "chunks_per_s": report.chunks_embedded / report.seconds,
                "disk_bytes": _size(site_data),
            }
            crawler.close()

    table = Table(title="ingest and ask on the embedded defaults")
    table.add_column("run")
    table.add_column("figures")
    for name, figures in results.items():
        table.add_row(name, ", ".join(f"{k}={v:,.1f}" for k, v in figures.items()))
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
