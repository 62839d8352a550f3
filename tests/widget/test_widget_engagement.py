"""The lead form and the handoff to a person in a real browser: the form checks what is typed,
the stored lead and its signed webhook arrive; a visitor without an answer asks for a person,
the webhook gets the transcript, and an agent's reply posted through the API shows up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from assistant.knowledge.encoder import TransformerEncoder
from assistant.webhooks import WebhookSender, verify_signature
from tests.api.conftest import ApiServer, _start
from tests.support.webhook_receiver import WebhookReceiver, webhook_receiver
from tests.widget.conftest import HostSite
from tests.widget.test_widget_browser import host_page

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SECRET = "whsec-" + "b" * 24


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    encoder: TransformerEncoder,
    admin_key: str,
    host_site: HostSite,
    receiver: WebhookReceiver,
) -> Iterator[tuple[ApiServer, str, str]]:
    """An API whose webhooks may reach the loopback receiver; an assistant with a lead form
    and handoffs, its name and public key."""
    with ExitStack() as stack:
        api = _start(
            stack,
            tmp_path_factory.mktemp("engagement") / "data",
            encoder,
            admin_key,
            {"fetch_allow_hosts": ("127.0.0.1",)},
        )
        api.app.state.webhooks = WebhookSender(
            api.core.database, api.app.state.settings.fetch_policy(), first_delay=0.05
        )
        name = api.create_assistant(
            allowed_origins=[host_site.origin()],
            webhook={"url": receiver.url, "secret": SECRET},
            handoff={"enabled": True},
            lead_form={
                "enabled": True,
                "title": "Stay in touch",
                "fields": [
                    {"key": "name", "kind": "name", "label": "Name", "required": True},
                    {"key": "email", "kind": "email", "label": "Email", "required": True},
                ],
                "consent_text": "You may email me.",
            },
        )
        yield api, name, api.create_key(name, "public")


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


def open_widget(tab: Any, api: ApiServer, key: str, host_site: HostSite, path: str) -> Any:
    tab.goto(host_site.add(path, host_page(api.url, [{"assistant": key}])))
    tab.locator("button.launcher").click()
    panel = tab.locator("[role=dialog]")
    panel.wait_for()
    return panel


def test_the_lead_form_checks_input_then_stores_the_lead_and_signs_its_webhook(
    tab: Any,
    server: tuple[ApiServer, str, str],
    host_site: HostSite,
    receiver: WebhookReceiver,
) -> None:
    api, name, key = server
    panel = open_widget(tab, api, key, host_site, "/lead")
    panel.locator("button.details").click()
    form = panel.locator("form.lead")
    form.wait_for()
    assert form.locator("h3").inner_text() == "Stay in touch"
    form.locator("button[type=submit]").click()
    assert form.locator("#lead-name-error").inner_text() == "Please fill this in."
    assert form.locator("#lead-name").get_attribute("aria-invalid") == "true"
    form.locator("#lead-name").fill("Ada Lovelace")
    form.locator("#lead-email").fill("ada-at-example")
    form.locator("button[type=submit]").click()
    assert form.locator("#lead-email-error").inner_text() == "Please enter an email address."
    form.locator("#lead-email").fill("ada@example.com")
    form.locator("button[type=submit]").click()
    assert form.locator("#lead-consent-error").inner_text() == "Please agree to be contacted."
    with api.admin() as admin:
        assert admin.get(f"/api/assistants/{name}/leads").json()["leads"] == []
    form.locator("#lead-consent").check()
    form.locator("button[type=submit]").click()
    panel.locator(".lead-done").wait_for()
    with api.admin() as admin:
        leads = admin.get(f"/api/assistants/{name}/leads").json()["leads"]
    assert leads[0]["fields"] == {"name": "Ada Lovelace", "email": "ada@example.com"}
    assert leads[0]["consent"] == "You may email me."
    hook = next(h for h in receiver.wait_for(1) if b"lead.created" in h.body)
    assert verify_signature(SECRET, hook.body, hook.headers)
    assert json.loads(hook.body)["data"]["id"] == leads[0]["id"]


def test_a_visitor_without_an_answer_reaches_a_person_whose_reply_shows_in_the_widget(
    tab: Any,
    server: tuple[ApiServer, str, str],
    host_site: HostSite,
    receiver: WebhookReceiver,
) -> None:
    api, name, key = server
    before = len(receiver.received)
    panel = open_widget(tab, api, key, host_site, "/handoff")
    panel.locator("textarea").fill("Can I return a gift without a receipt?")
    panel.locator("textarea").press("Enter")
    offer = panel.locator(".msg.bot button.offer")
    offer.wait_for(timeout=60_000)
    offer.click()
    panel.locator(".handoff-note").wait_for()
    hooks = receiver.wait_for(before + 1)
    hook = next(h for h in hooks[before:] if b"handoff.created" in h.body)
    assert verify_signature(SECRET, hook.body, hook.headers)
    data = json.loads(hook.body)["data"]
    assert data["transcript"][0]["question"] == "Can I return a gift without a receipt?"
    with api.admin() as admin:
        reply = admin.post(
            f"/api/assistants/{name}/handoffs/{data['id']}/replies",
            json={"text": "Yes, within 30 days. <b>not bold</b>", "author": "Sam"},
        )
        assert reply.status_code == 201
    agent = panel.locator(".msg.agent")
    agent.wait_for(timeout=15_000)
    assert agent.locator(".who").inner_text() == "Sam"
    assert "Yes, within 30 days. <b>not bold</b>" in agent.inner_text()
    assert agent.locator("b").count() == 0
