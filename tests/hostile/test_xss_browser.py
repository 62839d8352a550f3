"""Cross-site scripting: classic payloads in page titles, headings, text and URLs, in visitors'
questions, in the brand and in a model's output, rendered in a real browser by every page that
shows them: the widget on a host page, the full page at ``/a/{name}`` (what ``assistant serve``
links to) and the admin dashboard (top questions, content gaps, source usage).

Each payload calls ``alert`` with its own tag. The pages are opened with their content security
policy bypassed, so what is tested is the escaping itself and not the policy behind it: a
payload that became markup would run. In every page the test asserts that no dialog opened,
that no element carries an ``on*`` attribute, a ``javascript:``/``data:`` address, an inline
script or a frame, and that the payloads are shown as the text they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from assistant.knowledge.encoder import TransformerEncoder
from connectors.web import canonical_url
from tests.api.conftest import ApiServer, _start
from tests.chat.fake_openai import FakeOpenAIServer, Stream
from tests.widget.conftest import HostSite
from tests.widget.test_widget_browser import host_page

pytestmark = [pytest.mark.browser, pytest.mark.integration]

# Classic payloads, each tagged so that a run names the one that got through.
SCRIPT = "<script>alert('script')</script>"
IMG_ONERROR = "<img src=x onerror=alert('img')>"
ATTRIBUTE_BREAKER = "\"><img src=x onerror=alert('attr')>"
SVG_ONLOAD = "<svg onload=alert('svg')>"
JAVASCRIPT_LINK = "<a href=\"javascript:alert('href')\">open</a>"
DATA_FRAME = "<iframe src=\"data:text/html,<script>alert('data')</script>\"></iframe>"
TOGGLE = "<details open ontoggle=alert('toggle')>"
TEMPLATE = "{{constructor.constructor('alert(`tpl`)')()}} ${alert('tpl2')}"
SCRIPT_BREAKER = "</script><script>alert('breaker')</script>"
BARE_URLS = "javascript:alert('bare') data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="
PAYLOADS = (
    SCRIPT,
    IMG_ONERROR,
    ATTRIBUTE_BREAKER,
    SVG_ONLOAD,
    JAVASCRIPT_LINK,
    DATA_FRAME,
    TOGGLE,
    TEMPLATE,
    SCRIPT_BREAKER,
    BARE_URLS,
)
# Written entity-encoded in the page: its text is the decoded markup ("numeric") or the
# entities themselves ("double").
NUMERIC_ENTITIES = "&#60;img src=x onerror=alert('numeric')&#62;"
DOUBLE_ENCODED = "&amp;lt;script&amp;gt;alert('double')&amp;lt;/script&amp;gt;"

REFUND_TITLE = f"Refunds {IMG_ONERROR}"
SHIPPING_TITLE = f"Shipping {ATTRIBUTE_BREAKER}"
# A path and query that break out of an attribute or a script if pasted into markup.
REFUND_PATH = "/refunds/" + quote(ATTRIBUTE_BREAKER, safe="")
REFUND_QUERY = "q=" + quote(SCRIPT, safe="")


def escaped(text: str) -> str:
    """``text`` with ``&``, ``<`` and ``>`` written as entities, so a page's text holds it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def refund_page() -> str:
    sentence = (
        "Refunds are paid back to the original card within five business days after we "
        "receive the returned item {payload} and gift cards are refunded as store credit."
    )
    paragraphs = "".join(f"<p>{sentence.format(payload=escaped(p))}</p>" for p in PAYLOADS)
    # The title is raw text in HTML: markup inside it is its text.
    return (
        f"<!doctype html><html><head><title>{REFUND_TITLE}</title></head><body><article>"
        f"<h1>{escaped(SVG_ONLOAD)} Refund policy</h1>{paragraphs}"
        # Real markup, which ingestion drops: it must not come back as elements either.
        f"<p>Ask our team about refunds. {IMG_ONERROR} {JAVASCRIPT_LINK}</p>"
        "</article></body></html>"
    )


def shipping_page() -> str:
    sentences = (
        f"Shipping to Europe costs nine euros per parcel {NUMERIC_ENTITIES} and arrives in "
        "three days.",
        f"Shipping to Canada costs twelve euros per parcel {DOUBLE_ENCODED} and arrives in "
        "six days.",
        f"Express shipping costs twenty euros per parcel {escaped(TEMPLATE)} and arrives "
        "the next day.",
        f"Free shipping applies to orders over fifty euros {escaped(SCRIPT_BREAKER)} in "
        "every country.",
    )
    body = "".join(f"<p>{s}</p>" for s in sentences)
    return (
        f"<!doctype html><html><head><title>{escaped(SHIPPING_TITLE)}</title></head><body>"
        f"<main><h1>{escaped(DATA_FRAME)} Shipping costs</h1>{body}</main></body></html>"
    )


# What every page is checked for: dialogs are recorded by ``alert``/``confirm``/``prompt``
# hooks installed before any page script runs (and by Playwright's dialog event).
HOOKS = """
window.__xss = [];
for (const name of ["alert", "confirm", "prompt"]) {
  const original = window[name];
  window[name] = function (message) {
    window.__xss.push(name + ": " + String(message));
    return original.apply(this, arguments);
  };
}
"""
# Elements and attributes a payload would leave behind, in the document and every shadow root.
SCAN = """
(allowedScripts) => {
  const found = [];
  const unsafeUrl = /^(javascript|data|vbscript):/;
  const urlAttributes = ["href", "src", "action", "formaction", "xlink:href", "data", "srcdoc"];
  const visit = (root) => {
    for (const element of root.querySelectorAll("*")) {
      const tag = element.tagName.toLowerCase();
      for (const attribute of element.attributes) {
        const name = attribute.name.toLowerCase();
        const value = attribute.value.replace(/[\\s\\u0000-\\u001f]/g, "").toLowerCase();
        if (name.startsWith("on")) found.push(`${tag}[${name}]`);
        if (urlAttributes.includes(name) && unsafeUrl.test(value)) found.push(`${tag}[${name}=${value}]`);
      }
      if (["iframe", "object", "embed", "frame"].includes(tag)) found.push(tag);
      if (tag === "script" && !allowedScripts.some((origin) => element.src.startsWith(origin))) {
        found.push(`script ${element.src || element.textContent.slice(0, 40)}`);
      }
      if (element.shadowRoot) visit(element.shadowRoot);
    }
  };
  visit(document);
  return found;
}
"""


def model_payload(source_url: str) -> tuple[str, ...]:
    """The deltas of a model that writes every kind of markup a page could ask it to, and
    one link to a source (``source_url``)."""
    return (
        "Refunds take five days. [Open the form](javascript:alert('md-link')) or ",
        "[the policy](JaVaScRiPt:alert('md-case')) or [details](data:text/html,alert('md-data')) ",
        f"or [the refund page]({source_url}) [1].\n\n",
        # Addresses a browser reads as https://evil.example/… though they lack the "//".
        "Also [the form](https:evil.example/>x) and [click\nhere](https:/evil.example/y).\n\n",
        f"{SCRIPT} {IMG_ONERROR} {SVG_ONLOAD} {JAVASCRIPT_LINK} {DATA_FRAME}\n\n",
        "![receipt](x\" onerror=\"alert('md-image')) **<b onmouseover=alert('strong')>bold</b>** ",
        f"`{SCRIPT_BREAKER}` {TEMPLATE}\n\n",
        "| step | <i onclick=alert('th')>when</i> |\n|---|---|\n",
        f"| ask | {TOGGLE} |\n\n",
        "```\n</code></pre><img src=x onerror=alert('fence')>\n```\n",
    )


@dataclass
class XssSite:
    """The API with two assistants over the payload pages: ``pages`` answers from them
    (extractive), ``model`` through a wire-faked model that writes payloads."""

    api: ApiServer
    pages: str
    pages_key: str
    model: str
    model_key: str
    refund_url: str
    fake: FakeOpenAIServer


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    encoder: TransformerEncoder,
    host_site: HostSite,
) -> Iterator[XssSite]:
    """The payload pages on the host site, ingested by URL into two assistants, on a server
    run as ``assistant serve`` runs by default: loopback, no admin key."""
    refund_url = host_site.add(REFUND_PATH, refund_page()) + "?" + REFUND_QUERY
    shipping_url = host_site.add("/shipping", shipping_page())
    with ExitStack() as stack:
        fake = stack.enter_context(FakeOpenAIServer())
        api = _start(
            stack,
            tmp_path_factory.mktemp("xss") / "data",
            encoder,
            None,
            {
                "fetch_allow_hosts": ("127.0.0.1",),
                "openai_api_key": SecretStr("sk-test"),
                "openai_base_url": fake.url,
            },
        )
        origins = [host_site.origin(), api.url]
        brand = {
            "greeting": f"Hello {SVG_ONLOAD}",
            "suggested_questions": [f"Refunds? {IMG_ONERROR}"],
            "display_name": f"Shop {SCRIPT}",
        }
        pages = api.create_assistant(allowed_origins=origins, brand=brand)
        model = api.create_assistant(
            allowed_origins=origins,
            answering={"provider": "openai", "model": "gpt-test"},
            brand={"position": "bottom-left"},
        )
        for name in (pages, model):
            report = api.core.ingest([refund_url, shipping_url], kb=name)
            assert not report.failures, report.failures
        refund_source = canonical_url(refund_url)
        fake.script(Stream(model_payload(refund_source)))
        yield XssSite(
            api,
            pages,
            api.create_key(pages, "public"),
            model,
            api.create_key(model, "public"),
            refund_source,
            fake,
        )


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Opens pages in fresh contexts with the policy bypassed and the hooks installed;
    every dialog is recorded in ``page.dialogs`` and dismissed."""
    contexts: list[Any] = []

    def open_page() -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        context.set_default_timeout(20_000)
        contexts.append(context)
        tab = context.new_page()
        tab.add_init_script(HOOKS)
        tab.dialogs = []
        tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
        return tab

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


def assert_nothing_ran(tab: Any, api: ApiServer) -> None:
    """No dialog, no hooked call, no element or attribute a payload would leave behind."""
    # An image's error event or a toggle event fires after rendering: give them a moment.
    tab.wait_for_timeout(300)
    assert tab.dialogs == []
    assert tab.evaluate("window.__xss") == []
    assert tab.evaluate(SCAN, [api.url + "/widget"]) == []


def ask(panel: Any, question: str) -> Any:
    """Ask ``question`` in an open panel; the finished answer's element."""
    before = panel.locator(".msg.bot .actions").count()
    panel.locator("textarea").fill(question)
    panel.locator("textarea").press("Enter")
    panel.locator(".msg.bot .actions").nth(before).wait_for(timeout=60_000)
    return panel.locator(".msg.bot").last


def check_extractive_answer(answer: Any) -> None:
    """The answer quotes payload text as text; the chips name the payload titles."""
    text = answer.inner_text()
    assert any(payload in text for payload in (*PAYLOADS, "alert('numeric')")), text
    titles = " ".join(
        (chip.inner_text() + " " + (chip.get_attribute("title") or ""))
        for chip in answer.locator(".cites li > *").all()
    )
    assert REFUND_TITLE in titles or SHIPPING_TITLE in titles, titles


def check_model_answer(answer: Any, refund_source: str) -> None:
    """The model's markup is text; only its link to a source is a link."""
    text = answer.locator(".body").inner_text()
    for shown in (
        SCRIPT,
        SVG_ONLOAD,
        DATA_FRAME,
        JAVASCRIPT_LINK,
        "<b onmouseover=alert('strong')>",
        "<i onclick=alert('th')>",
        TOGGLE,
        "{{constructor.constructor(",
        "${alert('tpl2')}",
    ):
        assert shown in text, shown
    # The words of links to other addresses stay; the server drops raw images.
    assert "Open the form" in text and "the policy" in text and "details" in text
    assert "the form" in text and "here" in text
    assert "onerror=alert('img')" not in text and "onerror=alert('fence')" not in text
    assert "</code></pre>" in answer.locator("pre").inner_text()
    assert "</script><script>alert('breaker')</script>" in answer.locator("code").first.inner_text()
    assert answer.locator("img, script, iframe, b, i, details").count() == 0
    # The only drawn graphics are the widget's own button icons.
    assert answer.locator("svg").count() == answer.locator(".actions button > svg").count()
    links = [a.get_attribute("href") for a in answer.locator(".body a").all()]
    assert links == [refund_source], links


def test_the_widget_on_a_host_page_shows_payloads_as_text(
    new_page: Any, site: XssSite, host_site: HostSite
) -> None:
    tab = new_page()
    url = host_site.add(
        "/embed",
        host_page(site.api.url, [{"assistant": site.pages_key}, {"assistant": site.model_key}]),
    )
    tab.goto(url)
    widgets = tab.locator("[data-assistant-widget]")
    named = tab.locator("button.launcher[aria-label*='Shop']")
    named.wait_for()
    assert f"Shop {SCRIPT}" in (named.get_attribute("aria-label") or "")
    pages_widget = widgets.filter(has=named)
    pages_widget.locator("button.launcher").click()
    panel = pages_widget.locator("[role=dialog]")
    assert panel.locator(".greeting").inner_text() == f"Hello {SVG_ONLOAD}"
    assert IMG_ONERROR in panel.inner_text()  # the suggested question
    answer = ask(panel, f"How long do refunds take? {IMG_ONERROR}")
    check_extractive_answer(answer)
    assert (
        f"How long do refunds take? {IMG_ONERROR}" in panel.locator(".msg.user").last.inner_text()
    )
    answer = ask(panel, f"How much does shipping to Europe cost? {TEMPLATE}")
    check_extractive_answer(answer)
    panel.press("Escape")

    model_widget = widgets.filter(has_not=named)
    model_widget.locator("button.launcher").click()
    answer = ask(model_widget.locator("[role=dialog]"), f"Refunds? {SCRIPT_BREAKER}")
    check_model_answer(answer, site.refund_url)
    assert_nothing_ran(tab, site.api)

    # A reload draws the stored turns again, from the conversation the server returns.
    tab.reload()
    tab.locator("button.launcher[aria-label*='Shop']").wait_for()
    widgets.filter(has_not=named).locator("button.launcher").click()
    restored = widgets.filter(has_not=named).locator("[role=dialog] .msg.bot .actions")
    restored.first.wait_for()
    check_model_answer(widgets.filter(has_not=named).locator(".msg.bot").last, site.refund_url)
    assert_nothing_ran(tab, site.api)


def test_the_full_page_shows_payloads_as_text(new_page: Any, site: XssSite) -> None:
    tab = new_page()
    tab.goto(f"{site.api.url}/a/{site.pages}")
    panel = tab.locator("main [role=region]")
    panel.wait_for()
    check_extractive_answer(ask(panel, f"Do refunds go back to my card? {SVG_ONLOAD}"))
    assert_nothing_ran(tab, site.api)

    tab = new_page()
    tab.goto(f"{site.api.url}/a/{site.model}")
    panel = tab.locator("main [role=region]")
    panel.wait_for()
    check_model_answer(ask(panel, f"Refunds? {DATA_FRAME}"), site.refund_url)
    assert_nothing_ran(tab, site.api)


def test_the_dashboard_shows_visitors_questions_and_page_titles_as_text(
    new_page: Any, site: XssSite
) -> None:
    questions = (
        f"How long do refunds take {IMG_ONERROR}?",
        f"How long do refunds take {SCRIPT}?",
        f"What does shipping to Canada cost {ATTRIBUTE_BREAKER}?",
        # Nothing in the pages answers these: content gaps, with the nearest pages listed.
        f"Can I pay with seashells on Jupiter {SVG_ONLOAD}?",
        f"Can I pay with seashells on Mars {TEMPLATE}?",
    )
    with site.api.admin() as client:
        for question in questions:
            response = client.post(
                f"/api/assistants/{site.pages}/chat", json={"message": question, "stream": False}
            )
            assert response.status_code == 200, response.text
    tab = new_page()
    tab.goto(site.api.url + "/admin")
    tab.fill("#key", site.api.create_key(site.pages, "secret"))
    tab.click("button[type=submit]")
    tab.locator("#assistant").wait_for()
    tab.select_option("#assistant", site.pages)
    # The report the page itself was given (a second one could group new turns otherwise).
    with tab.expect_response(lambda response: "/analytics?since=7d" in response.url) as given:
        tab.select_option("#period", "7d")
    tab.locator(".status", has_text="last 7d").wait_for()

    text = tab.locator(".content").inner_text()
    # What the page was given to show: every question and title in it appears as typed.
    report = given.value.json()
    clusters = [*report["top_questions"], *report["content_gaps"]]
    shown = [(c["questions"] or [c["label"]])[0] for c in clusters]
    titles = [s["title"] for s in report["source_usage"]]
    titles += [n["title"] for gap in report["content_gaps"] for n in gap["nearest_sources"]]
    assert any(payload in question for question in shown for payload in PAYLOADS), shown
    assert REFUND_TITLE in titles and SHIPPING_TITLE in titles, titles
    for expected in shown + titles:
        assert expected in text, expected
    # Titles are links to their pages' addresses, not to anything a payload made up.
    hrefs = [a.get_attribute("href") or "" for a in tab.locator(".content td a").all()]
    assert hrefs
    assert all(href.startswith("http://127.0.0.1:") for href in hrefs), hrefs
    assert tab.locator(".content img, .content script, .content iframe").count() == 0
    assert_nothing_ran(tab, site.api)
