"""The built widget in a real browser: a host page on one loopback origin embeds it from the
API on another, under a strict content security policy, and a visitor asks, reloads, uses the
keyboard only; payloads in pages and model output stay text; axe-core finds no violation."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from assistant.database.models import FeedbackRow
from tests.api.conftest import HELP_CENTRE_PAGES, ApiServer
from tests.chat.fake_openai import FakeOpenAIServer, Stream
from tests.widget.conftest import HostSite

pytestmark = [pytest.mark.browser, pytest.mark.integration]

AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
QUESTION = "How do I reset my password?"
XSS_TITLE = "<img src=x onerror=alert('title')>"
XSS_TEXT = "<script>alert('text')</script><img src=x onerror=alert('body')>"
MODEL_PAYLOAD = (
    "Refunds <img src=x onerror=alert('model')> take [five days](javascript:alert('link')) ",
    "see [policy](https://example.com/refunds) [1] <script>alert('s')</script>\n\n",
    "| step | <b>when</b> |\n|---|---|\n| ask | <svg onload=alert('t')> |\n",
)
# Records what the page's policy refused, before any page script runs.
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""


def host_page(api: str, scripts: list[dict[str, str]], before: str = "") -> str:
    """An HTML page embedding one widget per ``scripts`` entry (its ``data-*`` attributes)."""
    tags = "\n".join(
        f'<script src="{api}/widget.js" async '
        + " ".join(f'data-{name}="{value}"' for name, value in attributes.items())
        + "></script>"
        for attributes in scripts
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        f"<body><main><h1>Shop</h1>{before}<p>Welcome.</p></main>{tags}</body></html>"
    )


@pytest.fixture(scope="module")
def site_key(api_server: ApiServer, harbor: str, host_site: HostSite) -> str:
    """Harbor's public key, allowed on the host site's 127.0.0.1 origin only."""
    api_server.core.registry.update(
        harbor,
        {
            "allowed_origins": [host_site.origin()],
            "brand": {"greeting": "Hello from Harbor", "suggested_questions": [QUESTION]},
        },
    )
    return api_server.create_key(harbor, "public")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own storage) and page, with policy violations and dialogs
    recorded in ``page.dialogs``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.add_init_script(WATCH)
    tab.dialogs = []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    try:
        yield tab
    finally:
        context.close()


def ask(widget: Any, question: str) -> None:
    """Type ``question`` into an open panel, send it, wait for the finished answer."""
    widget.locator("textarea").fill(question)
    widget.locator("textarea").press("Enter")
    widget.locator(".msg.bot .actions").last.wait_for(timeout=60_000)


def test_a_visitor_gets_a_streamed_cited_answer_that_survives_a_reload_under_a_strict_csp(
    page: Any,
    api_server: ApiServer,
    host_site: HostSite,
    site_key: str,
    harbor: str,
    artifacts: Path,
) -> None:
    policy = f"script-src {api_server.url}; style-src 'self'"
    url = host_site.add(
        "/strict",
        host_page(api_server.url, [{"assistant": site_key}]),
        {"Content-Security-Policy": policy},
    )
    page.goto(url)
    launcher = page.locator("button.launcher")
    assert "Harbor Help" in (launcher.get_attribute("aria-label") or "") or launcher.is_visible()
    launcher.click()
    panel = page.locator("[role=dialog]")
    panel.wait_for()
    assert panel.locator(".greeting").inner_text() == "Hello from Harbor"
    log = panel.locator("[role=log]")
    assert log.get_attribute("aria-live") == "polite"
    page.screenshot(path=str(artifacts / "widget-desktop-open.png"))
    ask(panel, QUESTION)
    answer = panel.locator(".msg.bot").last
    assert len(answer.locator(".body").inner_text()) > 20
    # The help centre is ingested from files: chips name them, without linking file URLs.
    chips = answer.locator(".cites li")
    assert chips.count() >= 1
    assert chips.first.locator(".n").inner_text().isdigit()
    assert chips.first.locator(".t").inner_text().strip() != ""
    # The answer's actions are drawn icons (no font needed), and a rating is stored.
    for label in ("Copy answer", "Helpful", "Not helpful"):
        box = answer.get_by_role("button", name=label, exact=True).locator("svg").bounding_box()
        assert box is not None and box["width"] >= 16 and box["height"] >= 16, label

    def helpful_ratings() -> int:
        with api_server.core.database.session() as session:
            ratings = select(FeedbackRow.rating).where(
                FeedbackRow.assistant == harbor, FeedbackRow.rating == 1
            )
            return len(session.scalars(ratings).all())

    before = helpful_ratings()
    helpful = answer.get_by_role("button", name="Helpful", exact=True)
    helpful.click()
    page.wait_for_function(
        "(button) => button.getAttribute('aria-pressed') === 'true'", arg=helpful.element_handle()
    )
    assert helpful_ratings() == before + 1
    page.screenshot(path=str(artifacts / "widget-desktop-answer.png"))
    # The page's policy refused nothing: styles are adopted sheets, scripts come from the API.
    assert page.evaluate("window.__violations") == []

    page.reload()
    page.locator("button.launcher").click()
    restored = page.locator("[role=dialog] .msg.bot")
    restored.first.wait_for()
    assert restored.count() == 1
    assert page.locator("[role=dialog] .msg.user").first.inner_text().endswith(QUESTION)
    assert restored.first.locator(".cites li").count() >= 1
    assert page.evaluate("window.__violations") == []


def test_two_assistants_on_one_page_keep_their_own_conversations(
    page: Any, api_server: ApiServer, host_site: HostSite, site_key: str
) -> None:
    other = api_server.create_assistant(
        allowed_origins=[host_site.origin()],
        brand={"greeting": "Other here", "position": "bottom-left", "display_name": "Other"},
    )
    other_key = api_server.create_key(other, "public")
    url = host_site.add(
        "/two", host_page(api_server.url, [{"assistant": site_key}, {"assistant": other_key}])
    )
    page.goto(url)
    # The two async scripts may add their widgets in either order: find each by its name.
    widgets = page.locator("[data-assistant-widget]")
    named_other = page.locator("button.launcher[aria-label*='Other']")
    other_widget = widgets.filter(has=named_other)
    harbor_widget = widgets.filter(has_not=named_other)
    named_other.wait_for()  # labelled once its configuration has loaded
    harbor_widget.locator("button.launcher").click()
    ask(harbor_widget.locator("[role=dialog]"), QUESTION)
    harbor_widget.locator("[role=dialog]").press("Escape")
    other_widget.locator("button.launcher").click()
    other_panel = other_widget.locator("[role=dialog]")
    other_panel.wait_for()
    assert other_panel.locator(".greeting").inner_text() == "Other here"
    assert other_panel.locator(".msg").count() == 0
    stored = page.evaluate("Object.entries(localStorage)")
    sessions = [json.loads(value) for key, value in stored if key.startswith("assistant-widget")]
    conversations = [s["conversation"] for s in sessions]
    tokens = [s["token"] for s in sessions]
    assert len(sessions) == 2 and len(set(tokens)) == 2 and conversations.count(None) == 1
    page.reload()
    named_other.wait_for()
    other_widget.locator("button.launcher").click()
    other_widget.locator("[role=dialog] .greeting").wait_for()
    page.wait_for_timeout(300)
    assert other_widget.locator("[role=dialog] .msg").count() == 0


@pytest.fixture
def fake_openai(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeOpenAIServer]:
    """A model that answers with markup payloads, for assistants configured with ``openai``.

    The server read its settings at start-up, so the key goes into them (restored after)."""
    with FakeOpenAIServer() as fake:
        core = api_server.core
        settings = core.settings.model_copy(
            update={"openai_api_key": SecretStr("sk-test"), "openai_base_url": fake.url}
        )
        monkeypatch.setattr(core, "settings", settings)
        fake.script(Stream(MODEL_PAYLOAD))
        yield fake


def open_on_page(
    page: Any,
    api_server: ApiServer,
    host_site: HostSite,
    source: Path,
    answering: dict[str, str] | None = None,
) -> Any:
    """A new assistant made of ``source`` (answered by ``answering``, else offline), embedded
    in a host page with its public key; its panel, opened."""
    name = api_server.create_assistant(allowed_origins=[host_site.origin()])
    report = api_server.core.ingest([str(source)], kb=name)
    assert not report.failures, report.failures
    if answering is not None:
        api_server.core.configure(name, answering=answering)
    key = api_server.create_key(name, "public")
    page.goto(host_site.add(f"/{source.stem}", host_page(api_server.url, [{"assistant": key}])))
    page.locator("button.launcher").click()
    return page.locator("[role=dialog]")


def test_payloads_in_pages_and_model_output_render_as_text(
    page: Any,
    api_server: ApiServer,
    host_site: HostSite,
    tmp_path: Path,
    fake_openai: FakeOpenAIServer,
) -> None:
    source = tmp_path / "refunds.html"
    body = (
        "Refunds are paid back to the original card within five business days after we "
        "receive the returned item. Refunds for gift cards are paid as store credit. "
    )
    source.write_text(
        f"<html><head><title>{XSS_TITLE.replace('<', '&lt;')}</title></head><body><article>"
        f"<h1>Refund policy</h1><p>{body * 3}</p><p>{XSS_TEXT.replace('<', '&lt;')}</p>"
        "</article></body></html>",
        encoding="utf-8",
    )
    panel = open_on_page(
        page, api_server, host_site, source, {"provider": "openai", "model": "gpt-test"}
    )
    ask(panel, "How long do refunds take to reach my card?")
    answer = panel.locator(".msg.bot").last
    text = answer.inner_text()
    assert "<script>alert('s')</script>" in text and "<svg onload=" in text
    # The server drops images and links to anything but the sources before the widget sees
    # them: the link's words stay, the addresses go.
    assert "onerror=alert('model')" not in text and "five days" in text and "policy" in text
    assert page.dialogs == []
    # Nothing the page or the model wrote became an element or a script link.
    assert panel.locator("img, script, iframe").count() == 0
    # The only drawn graphics are the widget's own button icons.
    assert panel.locator("svg").count() == panel.locator(".actions button > svg").count()
    assert panel.locator("a[href^='javascript']").count() == 0
    assert panel.locator("a[href*='example.com'], a[href*='evil.example']").count() == 0
    assert answer.locator("table td").count() == 2
    chip = answer.locator(".cites li").first
    assert XSS_TITLE in (chip.inner_text() + (chip.locator("[title]").get_attribute("title") or ""))
    # The file's URL is not a web link: shown, not linked.
    assert answer.locator(".cites a[href^='file']").count() == 0


def test_a_page_on_an_origin_not_allowed_is_told_so(
    page: Any, api_server: ApiServer, host_site: HostSite, site_key: str
) -> None:
    host_site.add("/elsewhere", host_page(api_server.url, [{"assistant": site_key}]))
    # localhost is another origin than the allowed 127.0.0.1.
    page.goto(host_site.origin("localhost") + "/elsewhere")
    page.locator("button.launcher").click()
    status = page.locator("[role=dialog] [role=alert]")
    status.wait_for()
    assert "not enabled on this website" in status.inner_text()
    assert page.locator("[role=dialog] textarea").is_disabled()


def test_keyboard_only_and_axe_on_the_open_panel(
    page: Any, api_server: ApiServer, host_site: HostSite, site_key: str, artifacts: Path
) -> None:
    url = host_site.add(
        "/keys", host_page(api_server.url, [{"assistant": site_key}], before='<a href="#x">Top</a>')
    )
    page.goto(url)
    page.locator("button.launcher").wait_for()
    page.wait_for_function("document.querySelector('[data-assistant-widget]')")
    active = "document.activeElement?.shadowRoot?.activeElement?.className || document.activeElement?.tagName"
    for _ in range(5):
        page.keyboard.press("Tab")
        if page.evaluate(active) == "launcher":
            break
    assert page.evaluate(active) == "launcher"
    page.keyboard.press("Enter")
    page.locator("[role=dialog] textarea").wait_for()
    page.wait_for_function(
        "document.activeElement?.shadowRoot?.activeElement?.tagName === 'TEXTAREA'"
    )
    for _ in range(12):
        page.keyboard.press("Tab")
        inside = page.evaluate(
            "(() => { const a = document.activeElement?.shadowRoot?.activeElement;"
            " return !!a && !!a.closest('[role=dialog]'); })()"
        )
        assert inside, "focus left the dialog"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(active) != "BODY"
    page.keyboard.press("Escape")
    assert page.locator("[role=dialog]").is_hidden()
    assert page.evaluate(active) == "launcher"

    page.keyboard.press("Enter")
    page.locator("[role=dialog] textarea").wait_for()
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "axe.run({include: [['[data-assistant-widget]']]}).then(r => r.violations.map("
        "v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))"
    )
    assert result == []

    phone = page.context.browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        small = phone.new_page()
        small.goto(url)
        small.locator("button.launcher").click()
        panel = small.locator("[role=dialog]")
        panel.wait_for()
        box = panel.bounding_box()
        assert box is not None and box["width"] == 390 and box["height"] >= 800
        assert small.evaluate("getComputedStyle(document.body).overflow") == "hidden"
        font = small.evaluate(
            "getComputedStyle(document.querySelector('[data-assistant-widget]')"
            ".shadowRoot.querySelector('textarea')).fontSize"
        )
        assert font == "16px"
        small.screenshot(path=str(artifacts / "widget-phone-390x844.png"))
        small.locator("[role=dialog]").press("Escape")
        assert small.evaluate("getComputedStyle(document.body).overflow") != "hidden"
    finally:
        phone.close()


def test_the_full_page_of_a_keyless_loopback_server_answers_with_sources(
    page: Any, make_api_server: Callable[..., ApiServer]
) -> None:
    server = make_api_server(admin_key=None)
    report = server.core.ingest([str(path) for path in HELP_CENTRE_PAGES], kb="default")
    assert not report.failures, report.failures
    page.goto(server.url + "/")
    panel = page.locator("main [role=region]")
    panel.wait_for()
    ask(panel, QUESTION)
    answer = panel.locator(".msg.bot").last
    assert len(answer.locator(".body").inner_text()) > 20
    assert answer.locator(".cites li").count() >= 1
    assert page.evaluate("window.__violations") == []


def test_an_offline_answer_shows_the_code_its_sentence_introduces_as_a_code_block(
    page: Any, api_server: ApiServer, host_site: HostSite, tmp_path: Path, artifacts: Path
) -> None:
    source = tmp_path / "deploy.html"
    source.write_text(
        "<html><head><title>Deploying</title></head><body><article><h1>Deploying</h1>"
        "<p>Uvicorn serves the ASGI application of a project from the command line.</p>"
        "<p>For a typical project, starting Uvicorn would look like:</p>"
        "<pre>python -m uvicorn shop.asgi:application --workers 2</pre>"
        "</article></body></html>",
        encoding="utf-8",
    )
    panel = open_on_page(page, api_server, host_site, source)
    ask(panel, "How do I start Uvicorn for my project?")
    answer = panel.locator(".msg.bot").last
    assert "would look like:" in answer.inner_text()
    code = answer.locator("pre code")
    assert code.count() == 1
    assert code.inner_text() == "python -m uvicorn shop.asgi:application --workers 2"
    page.screenshot(path=str(artifacts / "widget-desktop-code-answer.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts / "widget-phone-code-answer.png"))
