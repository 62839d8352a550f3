"""The website widget in chromium: its size, how soon it is usable, how soon answers start.

One local server (``create_app`` under uvicorn on loopback) serves everything: our loader and
chunks, two host pages, and a peer's embed bundle, Flowise's ``dist/web.js`` (from ``npm pack
flowise-embed`` into a temporary directory, never committed; ``--peer-dist`` names an unpacked
``dist`` instead). Assistant ``bench`` holds one page of the help centre and answers through
the ``openai`` provider pointed at a fake OpenAI-compatible server on loopback that streams at
once, so the timings are the browser's and the server's, not a model's.

Measured, each run in a fresh browser context (empty cache), ``--runs`` times:

- **launcher**: from navigation start to a usable launcher (ours: the launcher button exists
  and the configuration has loaded, ``assistant:ready``; the peer's: its bubble button exists
  in ``<flowise-chatbot>``'s shadow root; its ``apiHost`` is a dead loopback port);
- **first word** (ours only; the peer has no server here): from the Enter key in the open
  panel to the first streamed word on screen.

Bytes raw and gzipped (level 9) for our loader, panel and extras chunks and the peer's bundle,
then the ratios, as a table and with ``--json FILE``.

    python bench/widget.py --runs 30 --json widget.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI  # noqa: E402
from fastapi.responses import HTMLResponse, Response  # noqa: E402

from assistant.api import create_app  # noqa: E402
from assistant.api.routes.widget import widget_dir  # noqa: E402
from assistant.core import Assistant  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from bench.common import machine_facts, percentile, write_json  # noqa: E402
from tests.api.conftest import serving  # noqa: E402
from tests.chat.fake_openai import FakeOpenAIServer, Stream  # noqa: E402
from tests.support.servers import free_loopback_port  # noqa: E402
from tests.widget.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

PAGE = ROOT / "examples" / "help-centre" / "site"
ANSWER = ("Reset ", "it from the sign-in page [1].")
QUESTION = "How do I reset my password?"

# Resolves with performance.now() once our launcher exists and the configuration has loaded.
OURS_READY = """() => {
  const host = document.querySelector("[data-assistant-widget]");
  const button = host && host.shadowRoot && host.shadowRoot.querySelector("button.launcher");
  return button && window.__ready ? window.__ready : false;
}"""
WATCH_READY = (
    "window.addEventListener('assistant:ready', () => { window.__ready = performance.now(); });"
)
PEER_READY = """() => {
  const host = document.querySelector("flowise-chatbot");
  const button = host && host.shadowRoot && host.shadowRoot.querySelector("button");
  return button ? performance.now() : false;
}"""
# Arms a timer: Enter in the panel's textarea starts it, the first answer text stops it.
ARM_FIRST_WORD = """() => {
  const root = document.querySelector("[data-assistant-widget]").shadowRoot;
  const input = root.querySelector("textarea");
  window.__firstWord = new Promise((resolve) => {
    let start = 0;
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") start = performance.now(); },
      { capture: true, once: true });
    const log = root.querySelector("[role=log]");
    const observer = new MutationObserver(() => {
      const bodies = log.querySelectorAll(".msg.bot .body");
      const body = bodies[bodies.length - 1];
      const text = body ? body.textContent.trim() : "";
      if (start && text && !text.startsWith("Thinking")) {
        observer.disconnect();
        resolve(performance.now() - start);
      }
    });
    observer.observe(log, { childList: true, subtree: true, characterData: true });
  });
}"""


def sizes(path: Path) -> dict[str, int]:
    """Raw and gzipped (level 9) bytes of ``path``."""
    data = path.read_bytes()
    return {"bytes": len(data), "gzip": len(gzip.compress(data, compresslevel=9))}


def peer_dist(given: Path | None, scratch: Path) -> Path:
    """Flowise's ``dist`` directory: ``given``, or ``npm pack flowise-embed`` into ``scratch``."""
    if given is not None:
        return given
    done = subprocess.run(
        ["npm", "pack", "flowise-embed", "--silent"],
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode != 0:
        raise SystemExit(f"npm pack flowise-embed failed: {done.stderr.strip()}")
    archive = scratch / done.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        tar.extractall(scratch, filter="data")
    return scratch / "package" / "dist"


def add_bench_pages(app: FastAPI, dist: Path, dead_port: int) -> None:
    """Our host page, the peer's host page and the peer's bundle, on the API's own server."""
    ours = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ours</title></head>'
        '<body><main><h1>Shop</h1></main><script src="/widget.js" data-name="bench" async>'
        "</script></body></html>"
    )
    peer = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>peer</title></head>'
        '<body><main><h1>Shop</h1></main><script type="module">'
        'import Chatbot from "/peer/web.js";'
        f'Chatbot.init({{chatflowid: "bench", apiHost: "http://127.0.0.1:{dead_port}"}});'
        "</script></body></html>"
    )
    bundle = (dist / "web.js").read_bytes()

    @app.get("/bench/ours.html", include_in_schema=False)
    def ours_page() -> HTMLResponse:
        return HTMLResponse(ours)

    @app.get("/bench/peer.html", include_in_schema=False)
    def peer_page() -> HTMLResponse:
        return HTMLResponse(peer)

    @app.get("/peer/web.js", include_in_schema=False)
    def peer_bundle() -> Response:
        return Response(bundle, media_type="text/javascript; charset=utf-8")


@contextmanager
def bench_server(scratch: Path, provider_url: str, dist: Path) -> Iterator[str]:
    """The API with assistant ``bench`` answering through the fake provider; its URL."""
    from pydantic import SecretStr

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=scratch / "data",
        openai_api_key=SecretStr("sk-bench"),
        openai_base_url=provider_url,
    )
    with ExitStack() as stack:
        core = Assistant(settings)
        stack.callback(core.close)
        report = core.ingest([str(PAGE / "account.html")], kb="bench")
        if report.failures:
            raise SystemExit(f"ingest failed: {report.failures}")
        core.configure(
            "bench",
            answering={"provider": "openai", "model": "gpt-4o-mini"},
            retrieval={"no_answer_threshold": -1.0, "decline_unknown_names": False},
        )
        app = create_app(settings, core=core)
        add_bench_pages(app, dist, free_loopback_port())
        yield stack.enter_context(serving(app))


def timed(browser: Any, url: str, ready: str, init: str | None) -> tuple[float, Any]:
    """Milliseconds from navigation start to ``ready`` in a fresh context; the open context."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    if init:
        page.add_init_script(init)
    page.goto(url, wait_until="commit")
    value = page.wait_for_function(ready, polling="raf", timeout=30_000).json_value()
    return float(value), (context, page)


def first_word(page: Any) -> float:
    """Open our panel, ask, and time Enter → first streamed word (ms)."""
    host = page.locator("[data-assistant-widget]")
    host.locator("button.launcher").click()
    textarea = host.locator("textarea")
    textarea.wait_for()
    textarea.fill(QUESTION)
    page.evaluate(ARM_FIRST_WORD)
    textarea.press("Enter")
    result = float(page.evaluate("() => window.__firstWord"))
    host.locator(".msg.bot .actions").last.wait_for(timeout=30_000)
    return result


def summary(samples: list[float]) -> dict[str, float]:
    """p50 / p95 / mean of ``samples`` (ms)."""
    return {
        "p50_ms": round(percentile(samples, 50), 1),
        "p95_ms": round(percentile(samples, 95), 1),
        "mean_ms": round(sum(samples) / len(samples), 1),
    }


def measure(url: str, runs: int) -> dict[str, list[float]]:
    """``runs`` of each timing, alternating ours and the peer's so drift hits both alike."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    samples: dict[str, list[float]] = {"ours_launcher": [], "peer_launcher": [], "first_word": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            # One untimed round warms the server and the browser process.
            for timing in range(runs + 1):
                ms, (context, page) = timed(
                    browser, url + "/bench/ours.html", OURS_READY, WATCH_READY
                )
                word = first_word(page)
                context.close()
                peer_ms, (peer_context, _) = timed(
                    browser, url + "/bench/peer.html", PEER_READY, None
                )
                peer_context.close()
                if timing:
                    samples["ours_launcher"].append(ms)
                    samples["first_word"].append(word)
                    samples["peer_launcher"].append(peer_ms)
        finally:
            browser.close()
    return samples


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; print the table; write ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--peer-dist", type=Path, default=None, help="an unpacked flowise dist/")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    manifest = json.loads((widget_dir() / "manifest.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="bench-widget-") as scratch_name:
        scratch = Path(scratch_name)
        dist = peer_dist(args.peer_dist, scratch)
        files = {
            "loader (widget.js)": sizes(widget_dir() / "widget.js"),
            "panel chunk": sizes(widget_dir() / manifest["panel"]["file"]),
            "extras chunk": sizes(widget_dir() / manifest["extras"]["file"]),
            "flowise-embed web.js": sizes(dist / "web.js"),
        }
        with FakeOpenAIServer() as provider:
            provider.script(Stream(ANSWER))
            with bench_server(scratch, provider.url, dist) as url:
                started = time.monotonic()
                samples = measure(url, args.runs)
                seconds = time.monotonic() - started
    ours_first_open = files["loader (widget.js)"]["gzip"] + files["panel chunk"]["gzip"]
    peer = files["flowise-embed web.js"]
    timings = {name: summary(values) for name, values in samples.items()}
    ratios = {
        "peer_bytes_gzip_over_loader": round(peer["gzip"] / files["loader (widget.js)"]["gzip"], 1),
        "peer_bytes_gzip_over_loader_and_panel": round(peer["gzip"] / ours_first_open, 1),
        "peer_launcher_p50_over_ours": round(
            timings["peer_launcher"]["p50_ms"] / timings["ours_launcher"]["p50_ms"], 2
        ),
        "peer_launcher_p95_over_ours": round(
            timings["peer_launcher"]["p95_ms"] / timings["ours_launcher"]["p95_ms"], 2
        ),
    }
    results = {
        "runs": args.runs,
        "seconds": round(seconds, 1),
        "files": files,
        "timings": timings,
        "samples_ms": samples,
        "ratios": ratios,
        "machine": machine_facts(),
    }
    print(f"{'file':<24}{'bytes':>10}{'gzip':>10}")
    for name, entry in files.items():
        print(f"{name:<24}{entry['bytes']:>10,}{entry['gzip']:>10,}")
    print(f"\n{'timing (ms), ' + str(args.runs) + ' runs':<40}{'p50':>8}{'p95':>8}")
    labels = {
        "ours_launcher": "ours: page load → usable launcher",
        "peer_launcher": "flowise-embed: page load → bubble",
        "first_word": "ours: Enter → first streamed word",
    }
    for name, label in labels.items():
        print(f"{label:<40}{timings[name]['p50_ms']:>8}{timings[name]['p95_ms']:>8}")
    print()
    for name, value in ratios.items():
        print(f"{name:<44}{value:>8}")
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
