"""SSRF: the 27 internal addresses (``tests.hostile.addresses``) against every path that
fetches a URL someone else chose: a page, a sitemap's pages and its child sitemaps, a crawl's
root, a redirect from an allowed site, and a webhook's endpoint.

The allowed test site listens on 127.0.0.2, allowed by that exact address, so none of the 27
forms (all of them 127.0.0.1, other ranges, or names) is inside the allowance. A refusal
(``BlockedURLError``, or for ``0177.0.0.1`` a URL that httpx will not even parse) happens
before any packet leaves: nothing listens on the refused addresses, and a guard that
let one through would surface as a connection error, not a refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from assistant.database.engine import Database, database_url
from assistant.engagement_config import WebhookConfig
from assistant.errors import BlockedURLError, ConnectorError, FetchError
from assistant.webhooks import WebhookSender
from connectors.base import FetchPolicy
from connectors.crawl import CrawlConnector
from connectors.document import SourceFailure
from connectors.netguard import check_url
from connectors.sitemap import SitemapConnector
from connectors.web import PageConnector
from tests.connectors.site import LocalSite, Reply, sitemap_xml
from tests.hostile.addresses import REFUSED_URLS

pytestmark = pytest.mark.integration

SITE_HOST = "127.0.0.2"
UNPARSED = "http://0177.0.0.1/"
POLICY = FetchPolicy(timeout_seconds=1.0)
SITE_POLICY = FetchPolicy(allow_hosts=(SITE_HOST,), timeout_seconds=1.0, respect_robots=False)


@pytest.fixture(scope="module")
def site() -> Iterator[LocalSite]:
    """An allowed site that points at every refused address: a sitemap listing them, a
    sitemap index of them, and a redirect to each."""
    served = LocalSite(SITE_HOST)
    served.static("/sitemap.xml", Reply(body=sitemap_xml(list(REFUSED_URLS))))
    children = [url + "sitemap.xml" if url.endswith("/") else url for url in REFUSED_URLS]
    served.static("/sitemap-index.xml", Reply(body=sitemap_xml(children, index=True)))
    for number, url in enumerate(REFUSED_URLS):
        served.static(f"/redirect/{number}", Reply(status=302, headers={"Location": url}))
    served.start()
    try:
        yield served
    finally:
        served.stop()


def _is_refusal(error: BaseException | None) -> bool:
    """Refused by the guard, or not accepted as a URL at all: never a network failure."""
    if isinstance(error, BlockedURLError):
        return True
    return isinstance(error, FetchError) and "nvalid" in error.reason and "URL" in error.reason


def _refused(failure: object) -> bool:
    return isinstance(failure, SourceFailure) and _is_refusal(failure.error)


def _raises_refusal(load: Callable[[], object]) -> None:
    with pytest.raises(ConnectorError) as raised:
        load()
    assert _is_refusal(raised.value), raised.value


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_check_refuses_every_form(url: str) -> None:
    with pytest.raises(ConnectorError) as refusal:
        check_url(url, POLICY)
    assert _is_refusal(refusal.value), refusal.value
    assert refusal.value.source == url


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_page_is_refused(url: str) -> None:
    _raises_refusal(lambda: list(PageConnector(url, policy=POLICY).load()))


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_crawl_root_is_refused(url: str) -> None:
    _raises_refusal(lambda: list(CrawlConnector(url, policy=POLICY, max_pages=3).load()))


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_sitemap_url_is_refused(url: str) -> None:
    _raises_refusal(lambda: list(SitemapConnector(url + "sitemap.xml", policy=POLICY).load()))


@pytest.mark.parametrize("number", range(len(REFUSED_URLS)))
def test_a_redirect_from_an_allowed_site_is_refused(site: LocalSite, number: int) -> None:
    [result] = PageConnector(site.url(f"/redirect/{number}"), policy=SITE_POLICY).load()
    assert _refused(result), result


def test_every_page_a_sitemap_lists_is_refused(site: LocalSite) -> None:
    results = list(SitemapConnector(site.url("/sitemap.xml"), policy=SITE_POLICY).load())
    assert all(_refused(result) for result in results), results
    # The one httpx does not parse is dropped from the list as not a URL, never fetched.
    assert {r.source for r in results if isinstance(r, SourceFailure)} == set(REFUSED_URLS) - {
        UNPARSED
    }
    assert [request.bare_path for request in site.requests if "sitemap" in request.path] == [
        "/sitemap.xml"
    ]


def test_every_child_sitemap_an_index_lists_is_refused(site: LocalSite) -> None:
    results = list(SitemapConnector(site.url("/sitemap-index.xml"), policy=SITE_POLICY).load())
    refused = [result for result in results if _refused(result)]
    assert len(refused) == len(REFUSED_URLS) - 1, results
    assert all(_refused(result) for result in results), results


@pytest.fixture(scope="module")
def webhooks(tmp_path_factory: pytest.TempPathFactory) -> WebhookSender:
    database = Database.open(database_url(None, tmp_path_factory.mktemp("webhooks")))
    return WebhookSender(database, POLICY, attempts=2, first_delay=0.0)


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_webhook_endpoint_is_refused_and_never_retried(webhooks: WebhookSender, url: str) -> None:
    config = WebhookConfig(url=url, secret="s" * 16)  # type: ignore[arg-type]
    recorded = webhooks.record("docs", config, "lead.created", "lead-1", {"email": "a@b.c"})
    assert recorded is not None
    delivery = webhooks.send(recorded[0].id, config, recorded[1])
    assert delivery.status == "failed"
    assert delivery.last_error is not None and delivery.last_error.startswith("refused")
    assert delivery.attempts == 1


def test_the_suite_holds_twenty_seven_distinct_addresses() -> None:
    assert len(set(REFUSED_URLS)) == 27
