"""The fetcher and the web connectors against a real HTTP site on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from assistant.errors import (
    BlockedURLError,
    FetchError,
    ParseError,
    TooLargeError,
    UnsupportedContentError,
)
from connectors.base import FetchPolicy, Validators
from connectors.crawl import CrawlConnector
from connectors.document import Document, LoadResult, SourceFailure, Unchanged
from connectors.fetch import FetchResult, HTTPStatusError, NotModified, fetch
from connectors.netguard import guarded_client
from connectors.sitemap import SitemapConnector, parse_sitemap
from connectors.web import PageConnector, canonical_url, same_site
from tests.connectors.site import (  # noqa: F401 - site_fixture is the "site" fixture
    LocalSite,
    Reply,
    html_page,
    site_fixture,
    sitemap_xml,
)

pytestmark = pytest.mark.integration

POLICY = FetchPolicy(
    allow_hosts=("127.0.0.1",), timeout_seconds=0.5, max_bytes=256 * 1024, concurrency=4
)


def fetch_url(site: LocalSite, path: str, validators: Validators | None = None) -> FetchResult:
    with guarded_client(POLICY) as client:
        result = fetch(client, site.url(path), POLICY, validators)
    assert isinstance(result, FetchResult)
    return result


def documents(results: list[LoadResult]) -> dict[str, Document]:
    return {result.source: result for result in results if isinstance(result, Document)}


def failures(results: list[LoadResult]) -> dict[str, SourceFailure]:
    return {result.source: result for result in results if isinstance(result, SourceFailure)}


def page_requests(site: LocalSite) -> list[str]:
    return [request.path for request in site.requests if request.bare_path != "/robots.txt"]


# --- canonical URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM:80/a/../b/?utm_source=x&z=1&a=2#top", "http://example.com/b/?a=2&z=1"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com/p?gclid=1&fbclid=2&msclkid=3&ref=4&_ga=5", "https://example.com/p"),
        (
            "https://example.com/p?mc_cid=1&mc_eid=2&utm_campaign=3&page=2",
            "https://example.com/p?page=2",
        ),
        ("http://127.0.0.1:8080/docs#install", "http://127.0.0.1:8080/docs"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_same_site_is_host_and_port_with_https_upgrade() -> None:
    assert same_site("https://example.com/a", "http://example.com/")
    assert same_site("http://EXAMPLE.com/a", "http://example.com/")
    assert not same_site("http://example.com/a", "https://example.com/")
    assert not same_site("http://www.example.com/", "http://example.com/")
    assert not same_site("http://example.com:8080/", "http://example.com/")


# --- the fetcher ------------------------------------------------------------------------------


def test_fetch_follows_a_redirect_chain(site: LocalSite) -> None:
    result = fetch_url(site, "/redirect/start")
    assert result.url == site.url("/about")
    assert result.status == 200
    assert result.content_type == "text/html"
    assert b"About us" in result.body
    assert [request.path for request in site.requests] == [
        "/redirect/start",
        "/redirect/middle",
        "/about",
    ]
    assert site.requests[0].headers["user-agent"] == POLICY.user_agent


def test_fetch_reports_a_redirect_loop(site: LocalSite) -> None:
    with pytest.raises(FetchError, match="redirect loop"):
        fetch_url(site, "/loop/a")


def test_fetch_stops_after_max_redirects(site: LocalSite) -> None:
    with pytest.raises(FetchError, match="too many redirects"):
        fetch_url(site, "/hops/0")
    assert site.hits("/hops/5") == 1
    assert site.hits("/hops/6") == 0


def test_fetch_refuses_a_redirect_to_an_address_not_allowed(site: LocalSite) -> None:
    with pytest.raises(BlockedURLError) as refusal:
        fetch_url(site, "/redirect/private")
    assert refusal.value.source == site.url("/redirect/private")
    assert "127.0.0.2" in refusal.value.reason
    assert site.hits("/about") == 0


def test_fetch_refuses_a_redirect_to_a_file_url(site: LocalSite) -> None:
    with pytest.raises(BlockedURLError, match="only http and https"):
        fetch_url(site, "/redirect/file")


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/error", 500)])
def test_fetch_reports_http_errors_with_their_status(
    site: LocalSite, path: str, status: int
) -> None:
    with pytest.raises(HTTPStatusError, match=f"HTTP {status}") as failure:
        fetch_url(site, path)
    assert failure.value.status == status
    assert failure.value.source == site.url(path)


def test_fetch_times_out(site: LocalSite) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timed out after 0.5s"):
        fetch_url(site, "/slow")
    assert time.monotonic() - started < 1.4


@pytest.mark.parametrize("path", ["/big", "/big-stream"])
def test_fetch_refuses_a_body_over_max_bytes(site: LocalSite, path: str) -> None:
    with pytest.raises(TooLargeError, match=str(POLICY.max_bytes)):
        fetch_url(site, path)


def test_fetch_sends_validators_and_reports_not_modified(site: LocalSite) -> None:
    with guarded_client(POLICY) as client:
        by_etag = fetch(client, site.url("/etag"), POLICY, Validators(etag='"v1"'))
        by_date = fetch(
            client,
            site.url("/etag"),
            POLICY,
            Validators(last_modified="Wed, 01 Jan 2025 00:00:00 GMT"),
        )
        stale = fetch(client, site.url("/etag"), POLICY, Validators(etag='"v0"'))
    assert by_etag == NotModified(site.url("/etag"))
    assert by_date == NotModified(site.url("/etag"))
    assert isinstance(stale, FetchResult)
    assert stale.etag == '"v1"'
    assert stale.last_modified == "Wed, 01 Jan 2025 00:00:00 GMT"
    sent = site.requested("/etag")
    assert sent[0].headers["if-none-match"] == '"v1"'
    assert sent[1].headers["if-modified-since"] == "Wed, 01 Jan 2025 00:00:00 GMT"


def test_fetch_retries_once_after_503(site: LocalSite) -> None:
    result = fetch_url(site, "/flaky")
    assert b"Back again" in result.body
    assert site.hits("/flaky") == 2


def test_fetch_does_not_wait_for_a_long_retry_after(site: LocalSite) -> None:
    started = time.monotonic()
    with pytest.raises(HTTPStatusError, match="wait 3600s") as failure:
        fetch_url(site, "/busy")
    assert failure.value.status == 429
    assert site.hits("/busy") == 1
    assert time.monotonic() - started < 1.0


def test_fetch_reports_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with guarded_client(POLICY) as client, pytest.raises(FetchError, match="connection failed"):
        fetch(client, f"http://127.0.0.1:{port}/", POLICY)


# --- PageConnector ----------------------------------------------------------------------------


def load_page(
    url: str, known: dict[str, Validators] | None = None
) -> tuple[PageConnector, list[LoadResult]]:
    connector = PageConnector(url, policy=POLICY, known=known or {})
    return connector, list(connector.load())


def test_page_connector_loads_an_html_page(site: LocalSite) -> None:
    connector, results = load_page(site.url("/docs/guide?utm_source=mail#oil"))
    assert connector.complete
    [document] = results
    assert isinstance(document, Document)
    assert document.source == site.url("/docs/guide")
    assert document.title == "User guide"
    assert document.content_type == "html"
    assert "Oil the chain every two hundred kilometres" in document.text


def test_page_connector_uses_a_same_site_canonical_link(site: LocalSite) -> None:
    _, [document] = load_page(site.url("/print/guide"))
    assert isinstance(document, Document)
    assert document.source == site.url("/docs/guide")
    assert "Printable guide" in document.text


def test_page_connector_ignores_a_canonical_link_to_another_site(site: LocalSite) -> None:
    site.static(
        "/copied",
        html_page(
            "Copied article",
            "<p>An article first published on another site, reproduced here.</p>",
            head='<link rel="canonical" href="https://elsewhere.example/original">',
        ),
    )
    _, [document] = load_page(site.url("/copied"))
    assert isinstance(document, Document)
    assert document.source == site.url("/copied")


def test_page_connector_reads_a_pdf(site: LocalSite) -> None:
    _, [document] = load_page(site.url("/doc.pdf"))
    assert isinstance(document, Document)
    assert document.source == site.url("/doc.pdf")
    assert document.content_type == "pdf"
    assert "refunds are paid within 14 days" in document.text


def test_page_connector_reads_markdown(site: LocalSite) -> None:
    _, [document] = load_page(site.url("/notes.md"))
    assert isinstance(document, Document)
    assert document.source == site.url("/notes.md")
    assert "gear hubs" in document.text


def test_page_connector_reports_an_image_as_unsupported(site: LocalSite) -> None:
    connector, [failure] = load_page(site.url("/image.png"))
    assert isinstance(failure, SourceFailure)
    assert failure.source == site.url("/image.png")
    assert isinstance(failure.error, UnsupportedContentError)
    assert connector.complete


@pytest.mark.parametrize(
    ("path", "error_type"),
    [
        ("/missing", HTTPStatusError),
        ("/slow", FetchError),
        ("/big", TooLargeError),
        ("/redirect/private", BlockedURLError),
    ],
)
def test_page_connector_yields_page_failures(
    site: LocalSite, path: str, error_type: type[Exception]
) -> None:
    _, [failure] = load_page(site.url(path))
    assert isinstance(failure, SourceFailure)
    assert failure.source == site.url(path)
    assert isinstance(failure.error, error_type)
    assert failure.reason


def test_page_connector_raises_for_a_refused_or_invalid_url(site: LocalSite) -> None:
    with pytest.raises(BlockedURLError):
        list(PageConnector(site.url("/")).load())
    with pytest.raises(BlockedURLError):
        list(PageConnector("file:///etc/passwd", policy=POLICY).load())
    with pytest.raises(FetchError):
        list(PageConnector("http://", policy=POLICY).load())
    assert site.requests == []


def test_page_connector_reports_unchanged_pages(site: LocalSite) -> None:
    url = site.url("/etag")
    _, [first] = load_page(url)
    assert isinstance(first, Document)
    assert first.etag == '"v1"'
    _, [second] = load_page(url, known={url: Validators(etag=first.etag)})
    assert second == Unchanged(url)


def test_page_connector_ignores_robots_for_a_named_page(site: LocalSite) -> None:
    _, [document] = load_page(site.url("/private/secret"))
    assert isinstance(document, Document)
    assert site.hits("/robots.txt") == 0


# --- SitemapConnector -------------------------------------------------------------------------


def load_sitemap(
    site: LocalSite, path: str, max_pages: int = 10_000
) -> tuple[SitemapConnector, list[LoadResult]]:
    connector = SitemapConnector(site.url(path), policy=POLICY, max_pages=max_pages)
    return connector, list(connector.load())


def test_sitemap_loads_every_listed_page_once(site: LocalSite) -> None:
    connector, results = load_sitemap(site, "/sitemap.xml")
    loaded = documents(results)
    shipping = {site.url("/dup-a"), site.url("/dup-b")} & set(loaded)
    assert len(shipping) == 1  # the same content at two URLs is yielded once
    assert set(loaded) - shipping == {
        site.url("/"),
        site.url("/about"),
        site.url("/docs/guide"),
        site.url("/docs/api"),
        site.url("/doc.pdf"),
    }
    failed = failures(results)
    assert set(failed) == {site.url("/private/secret"), site.url("/missing")}
    assert isinstance(failed[site.url("/private/secret")].error, BlockedURLError)
    assert "robots.txt" in failed[site.url("/private/secret")].reason
    assert site.url("/noindex") not in loaded
    assert site.hits("/docs/api") == 1
    assert site.hits("/private/secret") == 0
    assert connector.complete


def test_sitemap_pages_on_refused_addresses_fail_alone(site: LocalSite) -> None:
    listed = [f"http://127.0.0.2:{site.port}/about", site.url("/about")]
    site.static("/mixed.xml", Reply(body=sitemap_xml(listed)))
    connector, results = load_sitemap(site, "/mixed.xml")
    assert set(documents(results)) == {site.url("/about")}
    [failure] = failures(results).values()
    assert isinstance(failure.error, BlockedURLError)
    assert "127.0.0.2" in failure.reason
    assert connector.complete


def test_sitemap_index_with_a_gzipped_child(site: LocalSite) -> None:
    connector, results = load_sitemap(site, "/sitemap_index.xml")
    assert set(documents(results)) == {
        site.url("/about"),
        site.url("/docs/guide"),
        site.url("/docs/api"),
        site.url("/notes.md"),
    }
    assert failures(results) == {}
    assert connector.complete


def test_sitemap_child_failure_is_yielded_and_makes_it_incomplete(site: LocalSite) -> None:
    children = [site.url("/sitemaps/pages.xml"), site.url("/sitemaps/gone.xml")]
    site.static("/broken_index.xml", Reply(body=sitemap_xml(children, index=True)))
    connector, results = load_sitemap(site, "/broken_index.xml")
    assert set(documents(results)) == {site.url("/about"), site.url("/docs/guide")}
    assert set(failures(results)) == {site.url("/sitemaps/gone.xml")}
    assert not connector.complete


def test_sitemap_nesting_is_limited(site: LocalSite) -> None:
    for level in range(6):
        site.static(
            f"/nest/{level}.xml",
            Reply(body=sitemap_xml([site.url(f"/nest/{level + 1}.xml")], index=True)),
        )
    connector, results = load_sitemap(site, "/nest/0.xml")
    assert set(failures(results)) == {site.url("/nest/4.xml")}
    assert site.hits("/nest/3.xml") == 1
    assert site.hits("/nest/4.xml") == 0
    assert not connector.complete


def test_sitemap_max_pages_cuts_and_makes_it_incomplete(site: LocalSite) -> None:
    connector, results = load_sitemap(site, "/sitemap.xml", max_pages=2)
    assert len(results) == 2
    assert len(page_requests(site)) == 3  # the sitemap and two pages
    assert not connector.complete


def test_sitemap_top_failure_raises(site: LocalSite) -> None:
    with pytest.raises(HTTPStatusError, match="404"):
        load_sitemap(site, "/no-sitemap.xml")
    with pytest.raises(ParseError, match="sitemap"):
        load_sitemap(site, "/about")


def test_sitemap_with_unreadable_robots_fails_its_pages(site: LocalSite) -> None:
    site.static("/robots.txt", Reply(status=500))
    connector, results = load_sitemap(site, "/sitemaps/pages.xml")
    failed = failures(results)
    assert set(failed) == {site.url("/about"), site.url("/docs/guide")}
    assert all("robots.txt could not be read" in failure.reason for failure in failed.values())
    assert site.hits("/about") == 0
    assert connector.complete


def test_parse_sitemap_resolves_no_external_entities(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("http://example.com/leaked")
    body = (
        '<?xml version="1.0"?>'
        f'<!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>&xxe;</loc></url><url><loc>http://example.com/a</loc></url></urlset>"
    ).encode()
    sitemap = parse_sitemap(body, "http://example.com/sitemap.xml", max_bytes=64 * 1024)
    assert sitemap.locations == ("http://example.com/a",)


# --- CrawlConnector ---------------------------------------------------------------------------


def crawl(
    site: LocalSite,
    known: dict[str, Validators] | None = None,
    max_pages: int = 200,
    max_depth: int = 3,
) -> tuple[CrawlConnector, list[LoadResult]]:
    connector = CrawlConnector(
        site.url("/"),
        policy=POLICY,
        known=known or {},
        max_pages=max_pages,
        max_depth=max_depth,
    )
    return connector, list(connector.load())


def test_crawl_walks_the_site(site: LocalSite) -> None:
    connector, results = crawl(site, max_depth=3)
    loaded = documents(results)
    shipping = {site.url("/dup-a"), site.url("/dup-b")} & set(loaded)
    assert len(shipping) == 1
    assert set(loaded) - shipping == {
        site.url("/"),
        site.url("/about"),
        site.url("/about/team"),
        site.url("/about/team/history"),
        site.url("/docs/guide"),
        site.url("/docs/api"),
        site.url("/hidden-child"),
        site.url("/doc.pdf"),
        site.url("/notes.md"),
    }
    failed = failures(results)
    assert set(failed) == {site.url("/missing"), site.url("/redirect/private")}
    assert isinstance(failed[site.url("/redirect/private")].error, BlockedURLError)
    assert connector.complete
    # Yielded once each: no source twice (the print page's canonical is the guide).
    sources = [result.source for result in results]
    assert len(sources) == len(set(sources))
    for path in ("/private/secret", "/about/team/history/origins", "/image.png"):
        assert site.hits(path) == 0, path
    assert site.hits("/docs/api") == 1
    assert site.hits("/noindex") == 1
    assert site.url("/noindex") not in loaded


def test_crawl_depth_counts_link_hops(site: LocalSite) -> None:
    connector, results = crawl(site, max_depth=1)
    assert site.url("/about") in documents(results)
    assert site.hits("/about/team") == 0
    assert site.hits("/hidden-child") == 0
    assert connector.complete


def test_crawl_max_pages_makes_it_incomplete(site: LocalSite) -> None:
    connector, results = crawl(site, max_pages=3)
    assert len(page_requests(site)) == 3
    assert len(results) <= 3
    assert not connector.complete


def test_crawl_refuses_to_start_when_robots_cannot_be_read(site: LocalSite) -> None:
    site.static("/robots.txt", Reply(status=503, headers={"Retry-After": "0"}))
    with pytest.raises(BlockedURLError, match=r"robots\.txt could not be read"):
        crawl(site)
    assert page_requests(site) == []


def test_crawl_without_robots_file_fetches_everything(site: LocalSite) -> None:
    del site.routes["/robots.txt"]
    _, results = crawl(site, max_depth=1)
    assert site.url("/private/secret") in documents(results)


def test_crawl_honours_crawl_delay(site: LocalSite) -> None:
    site.static("/robots.txt", Reply(body=b"User-agent: *\nCrawl-delay: 1\n"))
    home = (
        b"<html><title>Home</title><body><p>Read <a href='/about'>about us</a>.</p></body></html>"
    )
    site.static("/", Reply(body=home, headers={"Content-Type": "text/html"}))
    crawl(site, max_depth=1)
    times = [request.received_at for request in site.requests if request.bare_path != "/robots.txt"]
    assert len(times) == 2
    assert times[1] - times[0] >= 0.9


def test_crawl_reports_unchanged_pages(site: LocalSite) -> None:
    site.static(
        "/", html_page("Home", "<p>The home page links a versioned page.</p>", links=("/etag",))
    )
    url = site.url("/etag")
    known = {url: Validators(etag='"v1"')}
    # At the last level links are not needed: a conditional request and a 304.
    _, results = crawl(site, known, max_depth=1)
    assert Unchanged(url) in results
    assert site.requested("/etag")[-1].headers.get("if-none-match") == '"v1"'
    # Above it the page is read in full for its links, and still reported unchanged.
    _, results = crawl(site, known, max_depth=2)
    assert Unchanged(url) in results
    assert "if-none-match" not in site.requested("/etag")[-1].headers


def test_crawl_raises_when_the_root_fails(site: LocalSite) -> None:
    site.static("/", Reply(status=404))
    with pytest.raises(HTTPStatusError, match="404"):
        crawl(site)


def test_crawl_follows_the_site_its_root_redirects_to(site: LocalSite) -> None:
    # localhost and 127.0.0.1 are two hosts: the root's redirect makes the second one in scope.
    site.static("/start", Reply(status=301, headers={"Location": site.url("/")}))
    policy = FetchPolicy(allow_hosts=("127.0.0.1", "localhost"), timeout_seconds=0.5)
    connector = CrawlConnector(f"http://localhost:{site.port}/start", policy=policy, max_depth=1)
    loaded = documents(list(connector.load()))
    assert {site.url("/"), site.url("/about"), site.url("/docs/guide")} <= set(loaded)
    assert connector.complete


def test_crawl_refuses_a_root_not_allowed(site: LocalSite) -> None:
    with pytest.raises(BlockedURLError):
        list(CrawlConnector(site.url("/")).load())
    assert site.requests == []
