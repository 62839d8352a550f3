"""Cross-tenant and cross-visitor probes, generated from the OpenAPI document.

Every operation of ``app.openapi()`` is called on assistant A's resources (its name, a
conversation, a turn, a job, a key, a handoff, a lead) by three callers who must not reach
them: assistant B's secret key, assistant B's public key from B's page with a visitor of B,
and a second visitor of A on A's page (whose first visitor owns the conversation and the
handoff). Each answer must be 401, 403 or 404 and must never carry A's data (the secret words
of A's knowledge base and of its visitor's question, its lead's e-mail, its key).

An operation that answers a caller with what is the caller's own (B's models, B's widget
settings) is listed in ``CALLER_SCOPED`` with the reason; its answer is still searched for A's
data. A new route is probed as soon as it is in the document; one that may not be is listed in
``PUBLIC`` with a reason, or the coverage test fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from assistant.api import create_app
from assistant.jobs.store import JobSpec, JobStore
from assistant.settings import Settings
from tests.api.conftest import ApiServer

DOCUMENT: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}

PUBLIC = {
    "GET /healthz": "liveness: answers the same to anyone, names no assistant",
    "GET /readyz": "readiness of the stores: names no assistant and holds no content",
}
ANY_CALLER = frozenset({"secret key of B", "visitor of B", "other visitor of A"})
CALLER_SCOPED: dict[str, tuple[frozenset[str], str]] = {
    "GET /api/widget/config": (ANY_CALLER, "a public key reads its own assistant's settings"),
    "GET /v1/models": (ANY_CALLER, "a key lists the models (assistants) it may use: its own"),
    "GET /api/assistants": (ANY_CALLER, "a key lists the assistants it may manage: its own"),
    "GET /api/assistants/{name}/widget": (
        frozenset({"other visitor of A"}),
        "the public brand fields of the page's own assistant, the same for every visitor",
    ),
}
A_SECRET = "ALPHA-SECRET-7731"
A_VISITOR_SECRET = "ALPHA-VISITOR-4409"
A_LEAD = "alpha-lead@example.com"
A_ORIGIN = "https://alpha.example"
B_ORIGIN = "https://beta.example"


@dataclass
class Tenants:
    """A's resources and the three callers who must not reach them."""

    server: ApiServer
    values: dict[str, str]
    callers: dict[str, dict[str, str]]
    a_key: str


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def _events(text: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("data", "").startswith("{"):
            merged.update(json.loads(lines["data"]))
    return merged


def _visitor(client: httpx.Client) -> dict[str, str]:
    response = client.get("/api/widget/config")
    assert response.status_code == 200, response.text
    return {"X-Visitor-Token": response.headers["x-visitor-token"]}


@pytest.fixture(scope="module")
def tenants(api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Tenants:
    server = api_server
    a = server.create_assistant(
        "tenant-alpha",
        allowed_origins=[A_ORIGIN],
        handoff={"enabled": True},
        lead_form={"enabled": True},
    )
    b = server.create_assistant("tenant-beta", allowed_origins=[B_ORIGIN])
    folder = tmp_path_factory.mktemp("alpha-docs")
    (folder / "refunds.md").write_text(
        f"# Refunds\n\nRefunds are paid within 14 days. The vault code is {A_SECRET}.\n",
        encoding="utf-8",
    )
    server.core.ingest([str(folder)], kb=a)
    a_public, b_public = server.create_key(a, "public"), server.create_key(b, "public")
    a_secret, b_secret = server.create_key(a), server.create_key(b)
    with server.admin() as admin:
        key_id = admin.get(f"/api/assistants/{a}/keys").json()["keys"][0]["id"]
    with server.client(a_public, Origin=A_ORIGIN) as page:
        owner = _visitor(page)
        chat = page.post(
            f"/api/assistants/{a}/chat",
            json={"message": f"Where are refunds? {A_VISITOR_SECRET}"},
            headers=owner,
        )
        assert chat.status_code == 200, chat.text
        events = _events(chat.text)
        handoff = page.post(
            f"/api/assistants/{a}/widget/handoffs",
            json={"conversation_id": events["conversation_id"], "message": f"Call {A_LEAD}"},
            headers=owner,
        )
        lead = page.post(
            f"/api/assistants/{a}/widget/leads",
            json={"fields": {"email": A_LEAD, "name": "Alpha Lead"}, "consent": True},
            headers=owner,
        )
        intruder = _visitor(page)
        assert handoff.status_code == 201 and lead.status_code == 201, (handoff.text, lead.text)
    with server.admin() as admin:
        stored = admin.get(f"/api/assistants/{a}/conversations/{events['conversation_id']}")
    turn_id = stored.json()["turns"][0]["id"]
    with server.client(b_public, Origin=B_ORIGIN) as page:
        b_visitor = _visitor(page)
    job = JobStore(server.core.database).create(a, "resync", JobSpec())
    values = {
        "name": a,
        "conversation_id": str(events["conversation_id"]),
        "turn_id": str(turn_id),
        "job_id": job.id,
        "key_id": key_id,
        "handoff_id": str(handoff.json()["id"]),
        "lead_id": str(lead.json()["id"]),
    }
    callers = {
        "secret key of B": {"Authorization": f"Bearer {b_secret}"},
        "visitor of B": {"Authorization": f"Bearer {b_public}", "Origin": B_ORIGIN, **b_visitor},
        "other visitor of A": {
            "Authorization": f"Bearer {a_public}",
            "Origin": A_ORIGIN,
            **intruder,
        },
    }
    return Tenants(server, values, callers, a_secret)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = DOCUMENT["components"]["schemas"][name]
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            options = [s for s in schema[combined] if s.get("type") != "null"]
            return _resolve(options[0])
    return schema


def _example(schema: dict[str, Any], name: str, values: dict[str, str]) -> Any:
    """A value for field ``name`` that names A's resources where it can."""
    schema = _resolve(schema)
    if name in values:
        return int(values[name]) if schema.get("type") == "integer" else values[name]
    if name == "model":
        return values["name"]
    if name == "fields":
        return {"email": "probe@example.com", "name": "Probe"}
    if name == "messages":
        return [{"role": "user", "content": "What is the vault code?"}]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        # Required fields, and every optional one that can name A's resources.
        wanted = set(schema.get("required", [])) | (set(properties) & (set(values) - {"name"}))
        return {key: _example(properties[key], key, values) for key in sorted(wanted)}
    if kind == "array":
        return []
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if name == "email":
        return "probe@example.com"
    return "What is the vault code?"


def _request(
    method: str, path: str, operation: dict[str, Any], values: dict[str, str]
) -> dict[str, Any]:
    url = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "none"), path)
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = _example(content["application/json"]["schema"], "", values)
        return {"method": method, "url": url, "json": body}
    if "multipart/form-data" in content:
        return {"method": method, "url": url, "files": {"files": ("faq.md", b"# FAQ\n\nHi.\n")}}
    return {"method": method, "url": url}


PROBES = [
    pytest.param(method, path, operation, id=f"{method} {path}")
    for method, path, operation in _operations()
    if f"{method} {path}" not in PUBLIC
]


@pytest.mark.parametrize(("method", "path", "operation"), PROBES)
def test_no_caller_of_another_tenant_or_visitor_reaches_a_resource(
    tenants: Tenants, method: str, path: str, operation: dict[str, Any]
) -> None:
    label = f"{method} {path}"
    request = _request(method, path, operation, tenants.values)
    leaks = (A_SECRET, A_VISITOR_SECRET, A_LEAD, tenants.a_key)
    for caller, headers in tenants.callers.items():
        with tenants.server.client(**headers) as client:
            response = client.request(**request)
        body = response.text
        assert not any(leak in body for leak in leaks), f"{label} as {caller}: {body[:500]}"
        if caller in CALLER_SCOPED.get(label, (frozenset(), ""))[0] and response.is_success:
            continue
        assert response.status_code in (401, 403, 404), (
            f"{label} as {caller}: {response.status_code} {body[:300]}"
        )


def test_every_operation_is_probed_or_public_with_a_reason() -> None:
    operations = {f"{method} {path}" for method, path, _ in _operations()}
    probed = {f"{param.values[0]} {param.values[1]}" for param in PROBES}
    assert operations - probed == set(PUBLIC)
    assert set(CALLER_SCOPED) <= probed
    assert all(PUBLIC.values()) and all(reason for _, reason in CALLER_SCOPED.values())


def test_the_probes_reach_real_resources(tenants: Tenants) -> None:
    # The owner can read what the probes are refused, so their refusals are not for want of
    # a resource; and the secret words are where the probes look for them.
    with tenants.server.client(tenants.a_key) as client:
        conversation = client.get(
            f"/api/assistants/{tenants.values['name']}/conversations/"
            f"{tenants.values['conversation_id']}"
        )
        job = client.get(
            f"/api/assistants/{tenants.values['name']}/jobs/{tenants.values['job_id']}"
        )
    assert conversation.status_code == 200 and A_VISITOR_SECRET in conversation.text
    assert job.status_code == 200
