"""The admin console in a real browser: sign in with the admin key, see the figures and the
chart of turns asked through the API, at desktop and phone sizes, under the page's strict
policy; axe-core finds no violation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import ApiServer
from tests.widget.test_widget_browser import AXE, WATCH

pytestmark = [pytest.mark.browser, pytest.mark.integration]

QUESTIONS = ("How do I reset my password?", "How do refunds work?", "Where is the Berlin office?")


def sign_in_and_wait(page: Any, api_server: ApiServer, harbor: str) -> None:
    """Sign in through the form and wait for ``harbor``'s figures."""
    assert api_server.admin_key is not None
    page.goto(api_server.url + "/admin")
    page.fill("#key", api_server.admin_key)
    page.click("button[type=submit]")
    page.locator("#assistant").wait_for(timeout=10_000)
    page.select_option("#assistant", harbor)
    page.select_option("#period", "7d")
    # A locator, not wait_for_function: the page's policy forbids the eval that needs.
    page.locator(".status", has_text="last 7d").wait_for()
    page.locator(".chart svg").wait_for()


def test_the_admin_signs_in_and_sees_the_figures_and_chart(
    browser: Any, api_server: ApiServer, harbor: str, artifacts: Path
) -> None:
    started = time.monotonic()
    with api_server.admin() as client:
        for question in QUESTIONS:
            response = client.post(
                f"/api/assistants/{harbor}/chat", json={"message": question, "stream": False}
            )
            assert response.status_code == 200, response.text
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.add_init_script(WATCH)
        sign_in_and_wait(page, api_server, harbor)
        cards = page.locator(".card")
        assert cards.count() == 8  # volume, quality and lead figures
        turns = cards.filter(has_text="Turns").locator(".value").inner_text()
        assert int(turns) >= len(QUESTIONS)
        bars = page.locator(".chart svg rect")
        heights = [float(bars.nth(i).get_attribute("height") or 0) for i in range(bars.count())]
        assert max(heights) > 0
        assert page.locator("a.download", has_text="content gaps").get_attribute("href") == (
            f"/api/assistants/{harbor}/analytics/gaps.csv?since=7d"
        )
        # The key is nowhere a script could read it.
        stored = page.evaluate(
            "JSON.stringify([document.cookie, {...localStorage}, {...sessionStorage}, location.href])"
        )
        assert api_server.admin_key not in stored
        page.screenshot(path=str(artifacts / "dashboard-desktop.png"), full_page=True)
        assert page.evaluate("window.__violations") == []
        page.evaluate(AXE.read_text(encoding="utf-8"))
        violations = page.evaluate(
            "axe.run(document).then(r => r.violations.map("
            "v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', ')))"
        )
        assert violations == []

        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        try:
            phone.set_default_timeout(10_000)
            small = phone.new_page()
            sign_in_and_wait(small, api_server, harbor)
            width = small.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
            small.screenshot(path=str(artifacts / "dashboard-phone.png"), full_page=True)
        finally:
            phone.close()
    finally:
        context.close()
    assert time.monotonic() - started < 30
