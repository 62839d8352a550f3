"""Keys and who may do what, against a real server: admin, secret and public keys, origins,
CORS, revocation, the open mode of a server without an admin key; and the key store itself on
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from assistant.api.keys import KeyStore
from assistant.database import ApiKeyRow, Database
from assistant.errors import InvalidInputError, NotFoundError
from tests.api.conftest import ApiServer

SHOP = "https://shop.example.com"


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    """The response is a problem document with ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"https://assistant-rag.dev/problems/{code}"
    assert body["title"] and body["detail"]


# The key store ---------------------------------------------------------------------------------


def test_keys_are_stored_as_hashes_and_verified_until_revoked(database_url: str) -> None:
    database = Database.open(database_url)
    try:
        store = KeyStore(database)
        secret, secret_key = store.create("shop", "secret", "backend")
        public, public_key = store.create("shop", "public")
        assert secret_key.startswith("sk_") and public_key.startswith("pk_")
        assert len(secret_key) > 40 and secret_key != public_key
        assert secret.prefix == secret_key[:11] and public.prefix == public_key[:11]
        with database.session() as session:
            rows = session.scalars(select(ApiKeyRow)).all()
            assert {row.key_hash for row in rows} == {
                hashlib.sha256(key.encode()).hexdigest() for key in (secret_key, public_key)
            }
            stored = " ".join(f"{row.prefix} {row.key_hash} {row.label}" for row in rows)
            assert secret_key not in stored and public_key not in stored

        verified = store.verify(secret_key)
        assert verified is not None
        assert (verified.id, verified.assistant, verified.kind) == (secret.id, "shop", "secret")
        assert store.verify(secret_key + "x") is None
        assert store.verify("sk_" + "a" * 43) is None
        assert store.verify("not-a-key") is None

        assert store.revoke("shop", secret.id).revoked
        assert store.verify(secret_key) is None
        assert store.verify(public_key) is not None
        assert [(key.id, key.revoked) for key in store.list("shop")] == [
            (secret.id, True),
            (public.id, False),
        ]
        with pytest.raises(NotFoundError):
            store.revoke("another", public.id)
        with pytest.raises(InvalidInputError):
            store.create("shop", "admin")  # type: ignore[arg-type]
    finally:
        database.close()


def test_last_use_is_written_at_most_once_a_minute(database_url: str) -> None:
    database = Database.open(database_url)
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def clock() -> datetime:
        return now

    try:
        store = KeyStore(database, clock=clock)
        created, key = store.create("shop", "secret")
        assert created.last_used_at is None
        first = store.verify(key)
        assert first is not None and first.last_used_at == now
        now += timedelta(seconds=59)
        assert store.get("shop", created.id).last_used_at == first.last_used_at
        assert store.verify(key) is not None
        assert store.get("shop", created.id).last_used_at == first.last_used_at
        now += timedelta(seconds=2)
        store.verify(key)
        assert store.get("shop", created.id).last_used_at == now
    finally:
        database.close()


# Who may do what -----------------------------------------------------------------------------


def test_requests_without_a_valid_key_are_refused(api_server: ApiServer) -> None:
    with api_server.client() as anonymous:
        response = anonymous.get("/api/assistants")
    assert_problem(response, 401, "authentication_failed")
    assert response.headers["www-authenticate"] == "Bearer"
    for header in ("Bearer sk_unknown", "Bearer", "Basic c2s6eA==", "sk_no_scheme"):
        with api_server.client(Authorization=header) as client:
            assert_problem(client.get("/api/assistants"), 401, "authentication_failed")
    with api_server.client("wrong-admin-key") as client:
        assert_problem(client.get("/api/assistants"), 401, "authentication_failed")


def test_only_the_admin_key_manages_assistants_and_keys(api_server: ApiServer) -> None:
    name = api_server.create_assistant()
    secret = api_server.create_key(name, "secret")
    with api_server.client(secret) as client:
        assert client.get(f"/api/assistants/{name}").status_code == 200
        assert_problem(client.get("/api/assistants"), 403, "permission_denied")
        assert_problem(
            client.post("/api/assistants", json={"name": "mine"}), 403, "permission_denied"
        )
        assert_problem(
            client.post(f"/api/assistants/{name}/keys", json={"kind": "secret"}),
            403,
            "permission_denied",
        )
        assert_problem(client.delete(f"/api/assistants/{name}"), 403, "permission_denied")
    with api_server.admin() as admin:
        assert admin.get(f"/api/assistants/{name}").status_code == 200


def test_a_key_of_one_assistant_cannot_reach_another(api_server: ApiServer) -> None:
    first = api_server.create_assistant()
    second = api_server.create_assistant(allowed_origins=[SHOP])
    first_secret = api_server.create_key(first, "secret")
    first_public = api_server.create_key(first, "public")
    with api_server.client(first_secret) as client:
        assert client.get(f"/api/assistants/{first}/widget").status_code == 200
        assert_problem(client.get(f"/api/assistants/{second}"), 403, "permission_denied")
        assert_problem(client.get(f"/api/assistants/{second}/widget"), 403, "permission_denied")
    with api_server.client(first_public, Origin=SHOP) as client:
        assert_problem(client.get(f"/api/assistants/{second}/widget"), 403, "permission_denied")


def test_a_revoked_key_is_refused_from_the_next_request(api_server: ApiServer) -> None:
    name = api_server.create_assistant()
    with api_server.admin() as admin:
        created = admin.post(f"/api/assistants/{name}/keys", json={"kind": "secret"}).json()
    with api_server.client(created["key"]) as client:
        assert client.get(f"/api/assistants/{name}").status_code == 200
        with api_server.admin() as admin:
            assert admin.delete(f"/api/assistants/{name}/keys/{created['id']}").status_code == 204
        assert_problem(client.get(f"/api/assistants/{name}"), 401, "authentication_failed")


def test_server_side_keys_are_refused_from_web_pages(api_server: ApiServer) -> None:
    name = api_server.create_assistant(allowed_origins=[SHOP])
    secret = api_server.create_key(name, "secret")
    for key in (secret, api_server.admin_key):
        with api_server.client(key, Origin=SHOP) as client:
            response = client.get(f"/api/assistants/{name}/widget")
        assert_problem(response, 403, "permission_denied")
        assert "access-control-allow-origin" in response.headers  # readable by the page
        assert "public key" in response.json()["detail"]


def test_public_keys_chat_only_from_allowed_origins_with_cors(api_server: ApiServer) -> None:
    name = api_server.create_assistant(
        allowed_origins=[SHOP + "/"], brand={"greeting": "Ahoy!", "display_name": "Shop Help"}
    )
    public = api_server.create_key(name, "public")
    with api_server.client(public, Origin=SHOP) as client:
        response = client.get(f"/api/assistants/{name}/widget")
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == SHOP
        assert "Origin" in response.headers["vary"]
        assert "access-control-allow-credentials" not in response.headers
        assert response.json()["greeting"] == "Ahoy!"
        # A public key only chats: managing needs a secret key, even from an allowed origin.
        assert_problem(client.get(f"/api/assistants/{name}"), 403, "permission_denied")
    with api_server.client(public, Origin="https://evil.example") as client:
        response = client.get(f"/api/assistants/{name}/widget")
    assert_problem(response, 403, "permission_denied")
    assert "access-control-allow-origin" not in response.headers
    with api_server.client(public) as client:
        assert_problem(client.get(f"/api/assistants/{name}/widget"), 403, "permission_denied")


def test_a_page_of_this_server_reads_with_a_public_key_of_its_own_origin(
    api_server: ApiServer,
) -> None:
    """The assistant's full page asks for its config with a same-origin GET: the browser sends
    no Origin, only Sec-Fetch-Site. It counts as the server's own origin, and only that."""
    own = api_server.url
    listed = api_server.create_assistant(allowed_origins=[own])
    elsewhere = api_server.create_assistant(allowed_origins=[SHOP])
    same_origin = {"Sec-Fetch-Site": "same-origin"}
    with api_server.client(api_server.create_key(listed, "public"), **same_origin) as client:
        assert client.get(f"/api/assistants/{listed}/widget").status_code == 200
    with api_server.client(api_server.create_key(elsewhere, "public"), **same_origin) as client:
        assert_problem(client.get(f"/api/assistants/{elsewhere}/widget"), 403, "permission_denied")
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    with api_server.client(api_server.create_key(listed, "public"), **cross_site) as client:
        assert_problem(client.get(f"/api/assistants/{listed}/widget"), 403, "permission_denied")


def test_preflights_are_answered_for_allowed_origins_only(api_server: ApiServer) -> None:
    name = api_server.create_assistant(allowed_origins=[SHOP])
    request_headers = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with api_server.client() as client:
        allowed = client.options(
            f"/api/assistants/{name}/chat", headers={"Origin": SHOP, **request_headers}
        )
        refused = client.options(
            f"/api/assistants/{name}/chat",
            headers={"Origin": "https://evil.example", **request_headers},
        )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "Authorization" in allowed.headers["access-control-allow-headers"]
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


def test_without_an_admin_key_only_this_machine_is_admin(
    make_api_server: Callable[..., ApiServer],
) -> None:
    server = make_api_server(admin_key=None)
    with server.client() as client:
        assert client.get("/api/assistants").status_code == 200
        local_page = client.get("/api/assistants", headers={"Origin": "http://localhost:5173"})
        assert local_page.status_code == 200
        other_site = client.get("/api/assistants", headers={"Origin": "https://evil.example"})
        assert_problem(other_site, 401, "authentication_failed")
    name = server.create_assistant()
    secret = server.create_key(name, "secret")
    with server.client(secret) as client:
        # A key is still checked for what it is, not taken for the admin.
        assert_problem(client.get("/api/assistants"), 403, "permission_denied")
    with server.client("sk_revoked_or_unknown") as client:
        assert_problem(client.get("/api/assistants"), 401, "authentication_failed")
