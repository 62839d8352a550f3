"""A small website served from a thread on 127.0.0.1, for the web connector tests.

``LocalSite`` serves a route table (path → handler) with ``http.server`` and records every
request it receives, so tests can assert what was fetched, how often and with which headers.
Tests may replace or add routes before fetching. ``site_fixture`` is the pytest fixture; a test
module exposes it under the name ``site``.
"""

from __future__ import annotations

import functools
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import pytest
from fpdf import FPDF

__all__ = ["LocalSite", "Reply", "SiteRequest", "html_page", "site_fixture", "sitemap_xml"]


@dataclass(frozen=True)
class SiteRequest:
    """One request the site received: its path (with query) and headers (lower-case names)."""

    path: str
    headers: dict[str, str]
    received_at: float

    @property
    def bare_path(self) -> str:
        """The path without its query string."""
        return urlsplit(self.path).path


@dataclass
class Reply:
    """What a route answers. ``length=False`` omits Content-Length (body ends at close)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    length: bool = True


Handler = Callable[[SiteRequest], Reply]


def html_page(title: str, body: str, *, head: str = "", links: tuple[str, ...] = ()) -> Reply:
    """An HTML page with a navigation bar and a footer around ``body``."""
    nav = "".join(f'<a href="{href}">{href}</a> ' for href in NAV_LINKS)
    extra_links = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    markup = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}</head>
<body>
<header><nav>{nav}</nav></header>
<main><article><h1>{title}</h1>{body}<ul>{extra_links}</ul></article></main>
<footer><p>Example Co, 1 Main Street. All rights reserved.</p></footer>
</body></html>"""
    return Reply(body=markup.encode(), headers={"Content-Type": "text/html; charset=utf-8"})


def sitemap_xml(urls: list[str], *, index: bool = False) -> bytes:
    """A sitemap (``urlset``) or sitemap index (``sitemapindex``) listing ``urls``."""
    root, entry = ("sitemapindex", "sitemap") if index else ("urlset", "url")
    entries = "".join(f"<{entry}><loc>{escape(url)}</loc></{entry}>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<{root} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</{root}>'
    ).encode()


NAV_LINKS = ("/", "/about", "/docs/guide", "/docs/api?utm_source=nav", "/private/secret")


def _paragraphs(*sentences: str) -> str:
    return "".join(f"<p>{sentence}</p>" for sentence in sentences)


@functools.cache
def pdf_bytes() -> bytes:
    """A one-page PDF about refunds, made with fpdf2."""
    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=12)
    document.cell(text="Refund policy: refunds are paid within 14 days of a return.")
    return bytes(document.output())


# The eight-byte PNG signature and the start of an IHDR chunk: enough to be sniffed as an image.
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"


class LocalSite:
    """The test site: a route table served on 127.0.0.1 (or another loopback ``host``) and a
    log of received requests."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[SiteRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), _make_handler(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._add_default_routes()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this site."""
        return self.base_url + path

    def hits(self, path: str) -> int:
        """How many requests arrived for ``path`` (query strings ignored)."""
        with self._lock:
            return sum(1 for request in self.requests if request.bare_path == path)

    def requested(self, path: str) -> list[SiteRequest]:
        """The requests received for ``path`` (query strings ignored), in arrival order."""
        with self._lock:
            return [request for request in self.requests if request.bare_path == path]

    def record(self, request: SiteRequest) -> None:
        """Log one received request."""
        with self._lock:
            self.requests.append(request)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def static(self, path: str, reply: Reply) -> None:
        """Serve ``reply`` at ``path`` on every request."""
        self.routes[path] = lambda _request: reply

    def _add_default_routes(self) -> None:
        pages = {
            "/": html_page(
                "Welcome to Example Co",
                _paragraphs(
                    "Example Co makes bicycles for commuters who ride every day of the year.",
                    "Our shop in the old town repairs any bicycle within two working days.",
                ),
                links=(
                    "/dup-a",
                    "/dup-b",
                    "/noindex",
                    "/print/guide",
                    "/doc.pdf",
                    "/image.png",
                    "/notes.md",
                    "/missing",
                    "/redirect/private",
                    "mailto:hello@example.com",
                    "http://example.com/elsewhere",
                ),
            ),
            "/about": html_page(
                "About us",
                _paragraphs(
                    "The company was founded by two mechanics who loved long rides.",
                    "Today twelve people work in the workshop and the store.",
                ),
                links=("/about/team",),
            ),
            "/about/team": html_page(
                "Our team",
                _paragraphs("Ana builds wheels by hand.", "Ben answers every support email."),
                links=("/about/team/history",),
            ),
            "/about/team/history": html_page(
                "Team history",
                _paragraphs("The team grew from two to twelve people in ten years."),
                links=("/about/team/history/origins",),
            ),
            "/about/team/history/origins": html_page(
                "Origins", _paragraphs("This page is four link hops from the home page.")
            ),
            "/docs/guide": html_page(
                "User guide",
                _paragraphs(
                    "Inflate the tyres to the pressure printed on their side before each ride.",
                    "Oil the chain every two hundred kilometres and after rain.",
                ),
            ),
            "/print/guide": html_page(
                "User guide (print)",
                _paragraphs("Printable guide: inflate the tyres and oil the chain regularly."),
                head='<link rel="canonical" href="/docs/guide?utm_campaign=print">',
            ),
            "/docs/api": html_page(
                "API reference",
                _paragraphs("The orders endpoint lists the orders of the signed-in customer."),
            ),
            "/private/secret": html_page(
                "Private", _paragraphs("Internal price list that robots must not fetch.")
            ),
            "/noindex": html_page(
                "Hidden hub",
                _paragraphs("This hub page asks search engines not to index it."),
                head='<meta name="robots" content="noindex">',
                links=("/hidden-child",),
            ),
            "/hidden-child": html_page(
                "Hidden child", _paragraphs("Reached only through the page marked noindex.")
            ),
            "/dup-a": html_page("Shipping", _paragraphs("We ship to every country in Europe.")),
            "/dup-b": html_page("Shipping", _paragraphs("We ship to every country in Europe.")),
        }
        for path, reply in pages.items():
            self.static(path, reply)
        self.static(
            "/doc.pdf", Reply(body=pdf_bytes(), headers={"Content-Type": "application/pdf"})
        )
        self.static("/image.png", Reply(body=PNG_BYTES, headers={"Content-Type": "image/png"}))
        self.static(
            "/notes.md",
            Reply(
                body=b"# Release notes\n\nVersion 2 adds gear hubs to every model.\n",
                headers={"Content-Type": "text/markdown"},
            ),
        )
        self.static(
            "/robots.txt",
            Reply(
                body=b"User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"}
            ),
        )
        self._add_redirect_routes()
        self._add_error_routes()
        self._add_sitemap_routes()
        self.routes["/etag"] = _etag_route

    def _add_redirect_routes(self) -> None:
        def redirect(status: int, location: str) -> Reply:
            return Reply(status=status, headers={"Location": location})

        self.static("/redirect/start", redirect(301, "/redirect/middle"))
        self.static("/redirect/middle", redirect(302, self.url("/about")))
        self.static("/loop/a", redirect(302, "/loop/b"))
        self.static("/loop/b", redirect(302, "/loop/a"))
        self.static("/redirect/private", redirect(302, f"http://127.0.0.2:{self.port}/about"))
        self.static("/redirect/file", redirect(302, "file:///etc/passwd"))
        for hop in range(12):
            self.static(f"/hops/{hop}", redirect(302, f"/hops/{hop + 1}"))

    def _add_error_routes(self) -> None:
        self.static("/error", Reply(status=500, body=b"boom"))
        self.static(
            "/slow",
            Reply(body=b"<html><title>Slow</title><p>late</p></html>", delay_seconds=1.5),
        )
        big = b"<html><body>" + b"x" * (300 * 1024) + b"</body></html>"
        html_type = {"Content-Type": "text/html"}
        self.static("/big", Reply(body=big, headers=html_type))
        self.static("/big-stream", Reply(body=big, headers=html_type, length=False))
        self.static("/busy", Reply(status=429, headers={"Retry-After": "3600"}))
        state = {"calls": 0}

        def flaky(_request: SiteRequest) -> Reply:
            state["calls"] += 1
            if state["calls"] == 1:
                return Reply(status=503, headers={"Retry-After": "0"})
            return html_page("Back again", _paragraphs("The service answers on the second try."))

        self.routes["/flaky"] = flaky

    def _add_sitemap_routes(self) -> None:
        xml_type = {"Content-Type": "application/xml"}
        listed = [
            "/",
            "/about",
            "/docs/guide",
            "/docs/api",
            "/docs/api?utm_source=sitemap&utm_medium=xml",
            "/dup-a",
            "/dup-b",
            "/noindex",
            "/private/secret",
            "/missing",
            "/doc.pdf",
        ]
        self.static(
            "/sitemap.xml", Reply(body=sitemap_xml([self.url(p) for p in listed]), headers=xml_type)
        )
        children = [self.url("/sitemaps/pages.xml"), self.url("/sitemaps/more.xml.gz")]
        self.static(
            "/sitemap_index.xml", Reply(body=sitemap_xml(children, index=True), headers=xml_type)
        )
        self.static(
            "/sitemaps/pages.xml",
            Reply(
                body=sitemap_xml([self.url("/about"), self.url("/docs/guide")]), headers=xml_type
            ),
        )
        gzipped = gzip.compress(sitemap_xml([self.url("/docs/api"), self.url("/notes.md")]))
        self.static(
            "/sitemaps/more.xml.gz",
            Reply(body=gzipped, headers={"Content-Type": "application/octet-stream"}),
        )


def _etag_route(request: SiteRequest) -> Reply:
    etag = '"v1"'
    last_modified = "Wed, 01 Jan 2025 00:00:00 GMT"
    validators = {"ETag": etag, "Last-Modified": last_modified}
    if request.headers.get("if-none-match") == etag or (
        "if-none-match" not in request.headers
        and request.headers.get("if-modified-since") == last_modified
    ):
        return Reply(status=304, headers=validators)
    page = html_page("Versioned page", _paragraphs("This page changes rarely."))
    page.headers.update(validators)
    return page


def _make_handler(site: LocalSite) -> type[BaseHTTPRequestHandler]:
    class RouteHandler(BaseHTTPRequestHandler):
        """Answers GET from the site's route table; 404 for unknown paths."""

        def do_GET(self) -> None:
            request = SiteRequest(
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                received_at=time.monotonic(),
            )
            site.record(request)
            handler = site.routes.get(request.bare_path)
            reply = handler(request) if handler else Reply(status=404, body=b"not found")
            if reply.delay_seconds:
                time.sleep(reply.delay_seconds)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.length:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (a timeout or a size limit): nothing left to answer.
                pass

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

    return RouteHandler


@pytest.fixture(name="site")
def site_fixture() -> Iterator[LocalSite]:
    """A ``LocalSite`` serving for the duration of one test."""
    site = LocalSite()
    site.start()
    try:
        yield site
    finally:
        site.stop()
