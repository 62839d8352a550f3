"""Handoffs, leads and their signed webhooks over HTTP, with a real receiver on loopback:
signatures check out, 500s are retried, visitors reach only their own handoffs."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest

from assistant.knowledge.encoder import TransformerEncoder
from assistant.webhooks import WebhookSender, signature_headers, verify_signature
from tests.api.conftest import ApiServer, _start, unique_name
from tests.api.test_auth import assert_problem
from tests.support.webhook_receiver import ReceivedHook, WebhookReceiver, webhook_receiver

SHOP = "https://shop.example.com"
SECRET = "whsec-" + "k" * 24


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, encoder: TransformerEncoder, admin_key: str
) -> Iterator[ApiServer]:
    """A server whose webhooks may reach the loopback receiver, retrying quickly."""
    with ExitStack() as stack:
        api = _start(
            stack,
            tmp_path_factory.mktemp("handoffs") / "data",
            encoder,
            admin_key,
            {"fetch_allow_hosts": ("127.0.0.1",)},
        )
        settings = api.app.state.settings
        api.app.state.webhooks = WebhookSender(
            api.core.database, settings.fetch_policy(), attempts=4, first_delay=0.05
        )
        yield api


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def shop(server: ApiServer, receiver: WebhookReceiver) -> tuple[str, str]:
    """A fresh assistant with handoffs, a lead form and a webhook; its name and public key."""
    name = server.create_assistant(
        allowed_origins=[SHOP],
        webhook={"url": receiver.url, "secret": SECRET},
        handoff={"enabled": True},
        lead_form={
            "enabled": True,
            "fields": [
                {"key": "name", "kind": "name", "required": True},
                {"key": "email", "kind": "email", "required": True},
                {"key": "phone", "kind": "phone"},
                {"key": "plan", "kind": "text"},
            ],
            "consent_text": "You may contact me about my question.",
        },
    )
    return name, server.create_key(name, "public")


@contextmanager
def page(server: ApiServer, key: str) -> Iterator[httpx.Client]:
    """A new visitor's page: a client with the public key, the shop's origin and a token."""
    with server.client(key, Origin=SHOP) as client:
        token = client.get("/api/widget/config").headers["x-visitor-token"]
        client.headers["X-Visitor-Token"] = token
        yield client


def ask(client: httpx.Client, name: str, question: str) -> str:
    """One whole turn; the conversation's id."""
    response = client.post(
        f"/api/assistants/{name}/chat", json={"message": question, "stream": False}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["conversation_id"])


def finished_deliveries(admin: httpx.Client, name: str) -> list[dict[str, object]]:
    """The assistant's deliveries once the newest is no longer pending."""
    deadline = time.monotonic() + 30
    while True:
        deliveries: list[dict[str, object]] = admin.get(
            f"/api/assistants/{name}/webhooks/deliveries"
        ).json()
        if deliveries and deliveries[0]["status"] != "pending":
            return deliveries
        assert time.monotonic() < deadline, deliveries
        time.sleep(0.05)


def signed(hook: ReceivedHook) -> dict[str, object]:
    """The hook's JSON body, after checking its signature as a receiver would."""
    assert verify_signature(SECRET, hook.body, hook.headers)
    assert not verify_signature("another-secret-value", hook.body, hook.headers)
    body: dict[str, object] = json.loads(hook.body)
    assert hook.headers["X-Assistant-Delivery"] == body["id"]
    assert hook.headers["X-Assistant-Event"] == body["event"]
    return body


def test_signatures_bind_the_body_the_secret_and_the_time() -> None:
    body = b'{"event":"lead.created"}'
    headers = signature_headers(SECRET, body, timestamp=1_700_000_000)
    assert verify_signature(SECRET, body, headers, now=1_700_000_060)
    assert not verify_signature(SECRET, body + b" ", headers, now=1_700_000_060)
    assert not verify_signature(SECRET, body, headers, now=1_700_001_000), "too old"
    assert not verify_signature(SECRET, body, {}, now=1_700_000_000)


def test_a_handoff_reaches_the_webhook_and_the_agents_reply_reaches_only_its_visitor(
    server: ApiServer, shop: tuple[str, str], receiver: WebhookReceiver
) -> None:
    name, key = shop
    with page(server, key) as anna, page(server, key) as ben:
        conversation = ask(anna, name, "Can I pay by invoice?")
        # Ben knows the conversation id, but it is not his.
        stolen = ben.post(
            f"/api/assistants/{name}/widget/handoffs", json={"conversation_id": conversation}
        )
        assert_problem(stolen, 404, "not_found")
        created = anna.post(
            f"/api/assistants/{name}/widget/handoffs",
            json={"conversation_id": conversation, "message": "Please call me"},
        )
        assert created.status_code == 201, created.text
        handoff = created.json()
        assert handoff["status"] == "open" and handoff["messages"] == []
        assert "transcript" not in handoff, "visitors get the status and replies only"

        event = signed(receiver.wait_for(1)[0])
        assert event["event"] == "handoff.created" and event["assistant"] == name
        data = event["data"]
        assert isinstance(data, dict) and data["id"] == handoff["id"]
        assert data["transcript"][0]["question"] == "Can I pay by invoice?"
        assert data["message"] == "Please call me" and "visitor" not in data

        with server.admin() as admin:
            listed = admin.get(f"/api/assistants/{name}/handoffs", params={"status": "open"})
            assert [h["id"] for h in listed.json()["handoffs"]] == [handoff["id"]]
            reply = admin.post(
                f"/api/assistants/{name}/handoffs/{handoff['id']}/replies",
                json={"text": "Yes, invoices are fine.", "author": "Sam"},
            )
            assert reply.status_code == 201 and reply.json()["status"] == "answered"
            detail = admin.get(f"/api/assistants/{name}/handoffs/{handoff['id']}").json()
            assert detail["transcript"][0]["question"] == "Can I pay by invoice?"
            assert detail["deliveries"][0]["status"] == "delivered"
            assert detail["deliveries"][0]["attempts"] == 1

        path = f"/api/assistants/{name}/widget/handoffs/{handoff['id']}"
        seen = anna.get(path).json()
        assert seen["status"] == "answered"
        assert [(m["role"], m["author"], m["text"]) for m in seen["messages"]] == [
            ("agent", "Sam", "Yes, invoices are fine.")
        ]
        assert_problem(ben.get(path), 404, "not_found")
        # A public key cannot use the owners' routes.
        assert_problem(anna.get(f"/api/assistants/{name}/handoffs"), 403, "permission_denied")

    with server.admin() as admin:
        closed = admin.patch(
            f"/api/assistants/{name}/handoffs/{handoff['id']}", json={"status": "closed"}
        )
        assert closed.json()["status"] == "closed"
        assert admin.get(f"/api/assistants/{name}/handoffs?status=open").json()["handoffs"] == []


def test_deliveries_are_retried_after_500s_and_recorded(
    server: ApiServer, shop: tuple[str, str], receiver: WebhookReceiver
) -> None:
    name, key = shop
    receiver.replies.extend([500, 503])
    with page(server, key) as visitor:
        created = visitor.post(f"/api/assistants/{name}/widget/handoffs", json={})
    assert created.status_code == 201
    hooks = receiver.wait_for(3)
    bodies = [signed(hook) for hook in hooks]
    assert len({body["id"] for body in bodies}) == 1, "one delivery, retried"
    with server.admin() as admin:
        deliveries = finished_deliveries(admin, name)
    assert len(deliveries) == 1
    assert deliveries[0]["status"] == "delivered" and deliveries[0]["attempts"] == 3
    assert deliveries[0]["last_status"] == 200 and deliveries[0]["last_error"] is None


def test_a_refusing_endpoint_ends_the_delivery_as_failed(
    server: ApiServer, shop: tuple[str, str], receiver: WebhookReceiver
) -> None:
    name, key = shop
    receiver.replies.extend([500] * 10)
    with page(server, key) as visitor:
        assert visitor.post(f"/api/assistants/{name}/widget/handoffs", json={}).status_code == 201
    receiver.wait_for(4)
    with server.admin() as admin:
        deliveries = finished_deliveries(admin, name)
    assert deliveries[0]["status"] == "failed" and deliveries[0]["attempts"] == 4
    assert deliveries[0]["last_status"] == 500 and "500" in str(deliveries[0]["last_error"])
    assert len(receiver.received) == 4, "no attempt after the policy gave up"


def test_handoffs_are_refused_where_they_are_switched_off(server: ApiServer) -> None:
    name = server.create_assistant(allowed_origins=[SHOP])
    key = server.create_key(name, "public")
    with page(server, key) as visitor:
        refused = visitor.post(f"/api/assistants/{name}/widget/handoffs", json={})
        assert_problem(refused, 403, "permission_denied")
        assert visitor.get("/api/widget/config").json()["handoff"] is False


def test_leads_are_checked_against_the_form_stored_per_visitor_and_exported(
    server: ApiServer, shop: tuple[str, str], receiver: WebhookReceiver
) -> None:
    name, key = shop
    leads = f"/api/assistants/{name}/widget/leads"
    with page(server, key) as visitor:
        form = visitor.get("/api/widget/config").json()["lead_form"]
        assert [field["key"] for field in form["fields"]] == ["name", "email", "phone", "plan"]
        assert form["consent_text"].startswith("You may contact me")
        conversation = ask(visitor, name, "What does the pro plan cost?")
        for fields, consent, why in [
            ({"name": "Ada"}, True, "email: required"),
            ({"name": "Ada", "email": "not-an-address"}, True, "email: not an email"),
            ({"name": "Ada", "email": "ada@example.com", "phone": "call me"}, True, "phone"),
            ({"name": "Ada", "email": "ada@example.com", "admin": "yes"}, True, "not a field"),
            ({"name": "Ada", "email": "ada@example.com"}, False, "consent: required"),
        ]:
            refused = visitor.post(leads, json={"fields": fields, "consent": consent})
            assert_problem(refused, 400, "invalid_input")
            assert why in refused.json()["detail"]
        stored = visitor.post(
            leads,
            json={
                "fields": {"name": " Ada  Lovelace ", "email": "ada@example.com", "plan": "=1+1"},
                "consent": True,
                "conversation_id": conversation,
            },
        )
        assert stored.status_code == 201, stored.text
        lead_id = stored.json()["id"]
    with page(server, key) as other:
        # Another visitor cannot attach a lead to this conversation.
        borrowed = other.post(
            leads,
            json={
                "fields": {"name": "Eve", "email": "eve@example.com"},
                "consent": True,
                "conversation_id": conversation,
            },
        )
        assert_problem(borrowed, 404, "not_found")
        assert_problem(other.get(f"/api/assistants/{name}/leads"), 403, "permission_denied")

    event = signed(receiver.wait_for(1)[0])
    assert event["event"] == "lead.created"
    assert event["data"]["fields"]["name"] == "Ada Lovelace"  # type: ignore[index]

    with server.admin() as admin:
        listed = admin.get(f"/api/assistants/{name}/leads").json()["leads"]
        assert [lead["id"] for lead in listed] == [lead_id]
        assert listed[0]["conversation_id"] == conversation
        assert listed[0]["consent"] == "You may contact me about my question."
        exported = admin.get(f"/api/assistants/{name}/leads.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows[0]["name"] == "Ada Lovelace" and rows[0]["email"] == "ada@example.com"
    assert rows[0]["plan"] == "'=1+1", "a typed formula stays text in a spreadsheet"


def test_a_webhook_needs_a_signing_secret(server: ApiServer) -> None:
    with server.admin() as admin:
        response = admin.post(
            "/api/assistants",
            json={"name": unique_name(), "config": {"webhook": {"url": "https://example.com/h"}}},
        )
    assert response.status_code == 422


def test_a_webhook_to_a_private_address_is_refused(
    make_api_server: Callable[..., ApiServer], receiver: WebhookReceiver
) -> None:
    api = make_api_server()
    name = api.create_assistant(
        webhook={"url": receiver.url, "secret": SECRET}, handoff={"enabled": True}
    )
    with api.admin() as admin:
        assert admin.post(f"/api/assistants/{name}/widget/handoffs", json={}).status_code == 201
        deliveries = finished_deliveries(admin, name)
    assert deliveries[0]["status"] == "failed" and "private" in str(deliveries[0]["last_error"])
    assert receiver.received == []
