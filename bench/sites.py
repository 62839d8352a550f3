"""Retrieval on real documentation sites asked as visitors ask: the docs-sites benchmark.

For each site of ``bench/sites/<site>/`` (``site.toml``: the root on disk, the Debian package
that installs it, the pages in scope as globs; the question files of ``bench/sites/README``):
the root is served on loopback (a fixed port per site, kept in the data dir, so page URLs and
with them the knowledge base stay the same from run to run), a ``sitemap.xml`` of the pages in
scope is served beside it, the sitemap is ingested into knowledge base ``<site>`` (a second run
finds every page unchanged and embeds nothing), and ``evaluate_site`` measures it: page-level
hit@1/hit@5/MRR@10 of every ranking stage per kind of question, follow-ups through the chat path,
no-answer decisions. One table per site; the JSON (``--json``, and always
``<data dir>/<site>-report.json``) holds every number and the candidate pools.

    python bench/sites.py [--site django --site python --site git] [--json out.json]
                          [--data-dir DIR] [--retrieval-only]
    python bench/sites.py --rescore .bench-data/sites/django-report.json \\
                          --weights dense=1,late_interaction=0,lexical=0

``--rescore`` re-ranks the saved pools with other fusion weights in seconds (no model, no
search) and prints hit@1/hit@5/MRR@10 per kind.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

# Run as a script, the repository root must be importable; bench.common comes first because
# importing it keeps the model libraries off the hub.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.common  # noqa: F401  # isort: skip

from rich.console import Console

from assistant.cli.site_eval import print_site_report
from assistant.core import Assistant
from assistant.evaluation import evaluate_site, load_pools, load_question_set, rescore
from assistant.evaluation.site import KINDS
from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.ingest import ProgressEvent
from assistant.settings import Settings
from bench.common import ROOT, load_average, machine_facts, progress_bar, table, write_json
from tests.support.servers import free_loopback_port

SITES = ROOT / "bench" / "sites"
DEFAULT_DATA = ROOT / ".bench-data" / "sites"

console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """A site's ``site.toml``: where its pages are and which of them are in scope."""

    name: str
    folder: Path
    root: Path
    package: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    @classmethod
    def load(cls, folder: Path) -> SiteConfig:
        """Read ``folder/site.toml``; exits with a message that says what is missing."""
        path = folder / "site.toml"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: every site folder needs a site.toml")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls(
            name=folder.name,
            folder=folder,
            root=Path(data["root"]),
            package=str(data.get("package", "")),
            include=tuple(data["include"]),
            exclude=tuple(data.get("exclude", ())),
        )

    def pages(self) -> list[str]:
        """Paths (relative to the root) of the pages in scope, sorted."""
        if not self.root.is_dir():
            raise SystemExit(
                f"{self.root} is missing: install the documentation "
                f"(apt-get install {self.package or 'the package named in site.toml'})"
            )
        included = {p for pattern in self.include for p in self.root.glob(pattern) if p.is_file()}
        excluded = {p for pattern in self.exclude for p in self.root.glob(pattern)}
        return sorted(str(p.relative_to(self.root)) for p in included - excluded)


def sitemap(base_url: str, pages: list[str]) -> bytes:
    """A sitemap.xml listing ``pages`` under ``base_url``."""
    urls = "".join(f"<url><loc>{xml_escape(base_url + page)}</loc></url>\n" for page in pages)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{urls}</urlset>\n"
    ).encode()


@contextlib.contextmanager
def serve(root: Path, port: int, pages: list[str]) -> Iterator[str]:
    """Serve ``root`` and a ``/sitemap.xml`` of ``pages`` on ``127.0.0.1:port``; yields the
    sitemap's URL."""
    base = f"http://127.0.0.1:{port}/"
    body = sitemap(base, pages)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            if self.path == "/sitemap.xml":
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base + "sitemap.xml"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def site_port(data_dir: Path, name: str) -> int:
    """The site's port, chosen once and kept: page URLs (and so the knowledge base) depend on
    it."""
    path = data_dir / f"{name}.port"
    if path.is_file():
        return int(path.read_text(encoding="ascii"))
    port = free_loopback_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(str(port), encoding="ascii")
    return port


def ingest(assistant: Assistant, site: SiteConfig, sitemap_url: str, pages: int) -> dict[str, Any]:
    """Ingest the site's sitemap into knowledge base ``site.name``, with progress bars."""
    with progress_bar(console) as progress:
        loaded = progress.add_task(f"{site.name}: pages loaded", total=pages)
        embedded = progress.add_task(f"{site.name}: chunks embedded", total=None)

        def on_progress(event: ProgressEvent) -> None:
            if event.kind == "embedded":
                progress.advance(embedded, event.count)
            else:
                progress.advance(loaded, event.count)

        report = assistant.ingest([sitemap_url], kb=site.name, progress=on_progress)
    for failure in report.failures[:10]:
        console.print(f"[red]failed:[/red] {failure.url}: {failure.reason}", highlight=False)
    return {
        **{s: report.count(s) for s in ("added", "updated", "unchanged", "removed", "failed")},
        "chunks_embedded": report.chunks_embedded,
        "seconds": round(report.seconds, 1),
    }


def evaluate(
    assistant: Assistant, site: SiteConfig, data_dir: Path, *, retrieval_only: bool
) -> dict[str, Any]:
    """Serve, ingest and evaluate one site; print its table; return its JSON."""
    pages = site.pages()
    question_set = load_question_set(site.folder)
    console.print(
        f"[bold]{site.name}[/bold]: {len(pages)} pages in scope under {site.root}", highlight=False
    )
    with serve(site.root, site_port(data_dir, site.name), pages) as sitemap_url:
        ingested = ingest(assistant, site, sitemap_url, len(pages))
        with progress_bar(console) as progress:
            tasks: dict[str, Any] = {}

            def on_progress(task: str, done: int, total: int) -> None:
                if task not in tasks:
                    tasks[task] = progress.add_task(f"{site.name}: {task}", total=total)
                progress.update(tasks[task], completed=done)

            report = evaluate_site(
                assistant,
                question_set,
                kb=site.name,
                follow_ups=not retrieval_only,
                no_answer=not retrieval_only,
                progress=on_progress,
            )
    print_site_report(report, console)
    console.print(
        f"ingest: {ingested['added'] + ingested['updated']} pages embedded, "
        f"{ingested['unchanged']} unchanged, {ingested['failed']} failed, "
        f"{ingested['chunks_embedded']} chunks in {ingested['seconds']:.0f}s; evaluation "
        + ", ".join(f"{part} {seconds:.0f}s" for part, seconds in report.seconds.items()),
        highlight=False,
    )
    result = {"pages_in_scope": len(pages), "ingest": ingested, **report.to_json()}
    write_json(data_dir / f"{site.name}-report.json", result)
    return result


def parse_weights(text: str) -> FusionWeights:
    """``dense=1,late_interaction=0,lexical=1`` as weights (unnamed signals weigh 0)."""
    values = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        values[name.strip()] = float(value)
    return FusionWeights(**{"dense": 0.0, "late_interaction": 0.0, "lexical": 0.0, **values})


def rescore_saved(path: Path, weights: FusionWeights) -> None:
    """Print the metrics of the saved pools of a report re-ranked with ``weights``."""
    pools = load_pools(json.loads(path.read_text(encoding="utf-8")))
    started = time.perf_counter()
    metrics = rescore(pools, weights)
    rows = [
        (kind, str(m.questions), f"{m.hit_at_1:.3f}", f"{m.hit_at_5:.3f}", f"{m.mrr_at_10:.3f}")
        for kind, m in metrics.items()
    ]
    title = (
        f"{path.name} re-ranked with {weights.as_dict()} in {time.perf_counter() - started:.2f}s"
    )
    console.print(table(title, ("kind", "questions", "hit@1", "hit@5", "MRR@10"), rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", action="append", help="a folder name under --sites-dir")
    parser.add_argument("--sites-dir", type=Path, default=SITES, help="default: bench/sites")
    parser.add_argument("--json", type=Path, help="write every site's results to this file")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="kept between runs")
    parser.add_argument("--retrieval-only", action="store_true", help="skip chat and no-answer")
    parser.add_argument("--rescore", type=Path, help="a saved <site>-report.json to re-rank")
    parser.add_argument("--weights", default="dense=1,late_interaction=1,lexical=1")
    args = parser.parse_args()
    if args.rescore:
        rescore_saved(args.rescore, parse_weights(args.weights))
        return
    sites_dir: Path = args.sites_dir
    names = args.site or sorted(p.name for p in sites_dir.glob("*") if (p / "site.toml").is_file())
    if not names:
        raise SystemExit(f"no site under {sites_dir}")
    started = time.perf_counter()
    data_dir: Path = args.data_dir.resolve()
    settings = Settings(_env_file=None, data_dir=data_dir, fetch_allow_hosts=("127.0.0.1",))  # type: ignore[call-arg]
    results: dict[str, Any] = {"machine": machine_facts(), "kinds": list(KINDS), "sites": {}}
    with Assistant(settings) as assistant:
        for name in names:
            site = SiteConfig.load(sites_dir / name)
            results["sites"][name] = evaluate(
                assistant, site, data_dir, retrieval_only=args.retrieval_only
            )
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_end"] = load_average()
    if args.json:
        write_json(args.json, results)
        console.print(f"wrote {args.json}", highlight=False)


if __name__ == "__main__":
    main()
