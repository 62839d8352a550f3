"""Assistants and their keys over HTTP, on SQLite and PostgreSQL: create, read, change, delete
(with everything it owns), keys shown once, the widget's brand, and problem documents."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ApiServer, unique_name
from tests.api.test_auth import assert_problem


@pytest.fixture
def server(make_api_server: Callable[..., ApiServer], database_url: str) -> ApiServer:
    """A server on a fresh database of each kind."""
    return make_api_server(database_url=database_url)


def test_assistants_are_created_read_changed_and_deleted(server: ApiServer) -> None:
    with server.admin() as admin:
        created = admin.post(
            "/api/assistants",
            json={"name": "shop", "config": {"brand": {"company": "Shop", "tone": "Brief."}}},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["name"] == "shop" and body["created_at"]
        assert body["config"]["brand"]["company"] == "Shop"
        assert body["config"]["limits"]["requests_per_minute"] == 120

        assert_problem(admin.post("/api/assistants", json={"name": "shop"}), 409, "conflict")
        assert [a["name"] for a in admin.get("/api/assistants").json()["assistants"]] == ["shop"]
        assert admin.get("/api/assistants/shop").json() == body

        changed = admin.patch(
            "/api/assistants/shop",
            json={"brand": {"tone": "Warm."}, "allowed_origins": ["https://Shop.example.com/"]},
        )
        assert changed.status_code == 200, changed.text
        config = changed.json()["config"]
        assert config["brand"] == {**body["config"]["brand"], "tone": "Warm."}
        assert config["allowed_origins"] == ["https://shop.example.com"]
        assert server.core.config("shop").brand.tone == "Warm."
        assert_problem(
            admin.patch("/api/assistants/shop", json={"brand": {"colour": "red"}}),
            400,
            "invalid_input",
        )
        assert_problem(
            admin.patch("/api/assistants/shop", json={"theme": {}}), 422, "invalid_input"
        )

        assert admin.delete("/api/assistants/shop").status_code == 204
        assert_problem(admin.get("/api/assistants/shop"), 404, "not_found")
        assert_problem(admin.delete("/api/assistants/shop"), 404, "not_found")
        assert admin.get("/api/assistants").json() == {"assistants": []}


def test_names_must_be_knowledge_base_names(server: ApiServer) -> None:
    with server.admin() as admin:
        for name in ("Shop", "a b", "-shop", "x" * 64, ""):
            response = admin.post("/api/assistants", json={"name": name})
            assert_problem(response, 422, "invalid_input")
            assert response.json()["errors"][0]["loc"] == ["body", "name"]
        assert_problem(admin.get("/api/assistants/No%20Such"), 404, "not_found")


def test_keys_are_shown_once_listed_without_secret_and_revoked(server: ApiServer) -> None:
    name = server.create_assistant()
    with server.admin() as admin:
        created = admin.post(
            f"/api/assistants/{name}/keys", json={"kind": "public", "label": "website"}
        )
        assert created.status_code == 201, created.text
        key = created.json()
        assert key["key"].startswith("pk_") and key["prefix"] == key["key"][:11]
        assert (key["kind"], key["label"], key["revoked_at"]) == ("public", "website", None)

        listed = admin.get(f"/api/assistants/{name}/keys").json()["keys"]
        assert [item["id"] for item in listed] == [key["id"]]
        assert "key" not in listed[0] and key["key"] not in str(listed)

        assert admin.delete(f"/api/assistants/{name}/keys/{key['id']}").status_code == 204
        assert admin.get(f"/api/assistants/{name}/keys").json()["keys"][0]["revoked_at"]
        assert_problem(admin.delete(f"/api/assistants/{name}/keys/nope"), 404, "not_found")
        other = server.create_assistant()
        assert_problem(admin.delete(f"/api/assistants/{other}/keys/{key['id']}"), 404, "not_found")
        assert_problem(
            admin.post(f"/api/assistants/{name}/keys", json={"kind": "root"}), 422, "invalid_input"
        )
        assert_problem(
            admin.post("/api/assistants/missing/keys", json={"kind": "secret"}), 404, "not_found"
        )


def test_deleting_an_assistant_removes_everything_it_owns(
    server: ApiServer, tmp_path: Path
) -> None:
    core = server.core
    name = server.create_assistant()
    page = tmp_path / "returns.md"
    page.write_text("# Returns\n\nReturns are accepted within 30 days.\n", encoding="utf-8")
    assert core.ingest([str(page)], kb=name).count("added") == 1
    assert core.search("returns", kb=name).hits
    secret = server.create_key(name, "secret")
    answer = core.chat("How long do I have to return an item?", kb=name)
    assert answer.turn_id is not None and core.conversations(kb=name)
    core.feedback(answer.turn_id, 1, kb=name)
    untouched = server.create_assistant()

    with server.admin() as admin:
        assert admin.delete(f"/api/assistants/{name}").status_code == 204
        assert name not in core.knowledge_bases() and untouched in core.knowledge_bases()
        assert core.conversations(kb=name) == []
        with server.client(secret) as client:
            assert_problem(client.get(f"/api/assistants/{name}"), 401, "authentication_failed")
        # The same name starts afresh: no chunk of the deleted knowledge base comes back.
        assert admin.post("/api/assistants", json={"name": name}).status_code == 201
    assert core.search("returns", kb=name).hits == []
    assert core.conversations(kb=name) == []


def test_the_widget_shows_the_brand(server: ApiServer) -> None:
    name = server.create_assistant(
        brand={
            "greeting": "Hi! Ask me about orders.",
            "suggested_questions": ["Where is my order?"],
            "logo_url": "https://cdn.example.com/logo.png",
            "primary_colour": "#112233",
        }
    )
    with server.admin() as admin:
        widget = admin.get(f"/api/assistants/{name}/widget").json()
        assert_problem(admin.get("/api/assistants/missing/widget"), 404, "not_found")
    assert widget == {
        "name": name,
        "display_name": name,
        "greeting": "Hi! Ask me about orders.",
        "suggested_questions": ["Where is my order?"],
        "logo_url": "https://cdn.example.com/logo.png",
        "primary_colour": "#112233",
        "on_primary_colour": "#ffffff",
        "position": "bottom-right",
        "z_index": 2147483000,
        "language": "auto",
        # Off unless configured: no person to ask for, no lead form.
        "handoff": False,
        "handoff_confirmation": "",
        "lead_form": None,
    }


@pytest.mark.slow
def test_knowledge_bases_made_by_the_command_line_are_assistants(
    api_server: ApiServer, harbor: str, admin_client: httpx.Client
) -> None:
    api_server.core.ingest_connectors([], kb="cli-made")
    listed = {a["name"]: a for a in admin_client.get("/api/assistants").json()["assistants"]}
    assert listed["cli-made"]["created_at"] is None
    assert listed[harbor]["config"]["brand"]["display_name"] == "Harbor Help"
    assert admin_client.get("/api/assistants/cli-made").status_code == 200
    assert admin_client.get(f"/api/assistants/{harbor}/widget").json()["display_name"] == (
        "Harbor Help"
    )
    assert_problem(admin_client.post("/api/assistants", json={"name": "cli-made"}), 409, "conflict")
    assert api_server.core.search("How much does the Team plan cost?", kb=harbor).hits


def test_errors_are_problem_documents(api_client: httpx.Client, admin_client: httpx.Client) -> None:
    assert_problem(api_client.get("/no/such/route"), 404, "not_found")
    assert_problem(admin_client.put("/api/assistants"), 405, "method_not_allowed")
    broken = admin_client.post(
        "/api/assistants", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(broken, 422, "invalid_input")
    assert_problem(
        admin_client.post("/api/assistants", json={"name": unique_name(), "extra": 1}),
        422,
        "invalid_input",
    )
