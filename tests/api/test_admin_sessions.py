"""The admin console's sign-in over a real server: which keys may sign in, the cookie's flags,
what the cookie may read (and not), and signing out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from assistant.api.sessions import COOKIE_NAME, Session, decode, encode
from tests.api.conftest import ApiServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair(api_server: ApiServer) -> dict[str, str]:
    """Assistants ``alpha`` and ``beta``, with alpha's secret and public keys."""
    alpha = api_server.create_assistant()
    beta = api_server.create_assistant()
    return {
        "alpha": alpha,
        "beta": beta,
        "secret": api_server.create_key(alpha, "secret"),
        "public": api_server.create_key(alpha, "public"),
    }


@contextmanager
def sign_in(api_server: ApiServer, key: str) -> Iterator[tuple[httpx.Client, httpx.Response]]:
    """A cookie-keeping client (no Authorization header) that posted ``key`` to sign in."""
    with api_server.client() as client:
        response = client.post(
            "/admin/session", data={"key": key}, headers={"Origin": api_server.url}
        )
        yield client, response


def test_the_login_form_is_served_under_a_strict_policy(api_server: ApiServer) -> None:
    with api_server.client() as client:
        response = client.get("/admin")
    assert response.status_code == 200
    assert 'action="/admin/session"' in response.text and 'type="password"' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "<script" not in response.text


def test_a_wrong_key_is_refused(api_server: ApiServer) -> None:
    with sign_in(api_server, "sk_not-a-real-key") as (client, response):
        assert response.status_code == 401
        assert COOKIE_NAME not in client.cookies
        assert "sk_not-a-real-key" not in response.text


def test_a_public_key_cannot_sign_in(api_server: ApiServer, pair: dict[str, str]) -> None:
    with sign_in(api_server, pair["public"]) as (client, response):
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
        assert client.get("/admin/session").status_code == 401


def test_the_admin_key_gets_a_strict_http_only_cookie_without_the_key(
    api_server: ApiServer, pair: dict[str, str]
) -> None:
    assert api_server.admin_key is not None
    with sign_in(api_server, api_server.admin_key) as (client, response):
        assert response.status_code == 303 and response.headers["location"] == "/admin"
        cookie = response.headers["set-cookie"]
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
        # Plain http here: Secure would stop the browser from sending it at all.
        assert "secure" not in flags
        assert api_server.admin_key not in cookie
        page = client.get("/admin")
        assert page.status_code == 200 and 'id="dashboard"' in page.text
        assert "/widget/dashboard-" in page.text
        listed = client.get("/api/assistants")
        assert listed.status_code == 200
        assert {pair["alpha"], pair["beta"]} <= {a["name"] for a in listed.json()["assistants"]}
        assert client.get(f"/api/assistants/{pair['beta']}/analytics").status_code == 200
        assert client.get("/admin/session").json() == {"kind": "admin", "assistant": None}


def test_the_cookie_is_accepted_on_read_routes_only(
    api_server: ApiServer, pair: dict[str, str]
) -> None:
    assert api_server.admin_key is not None
    with sign_in(api_server, api_server.admin_key) as (client, _):
        # Management routes still need the key itself.
        assert client.get(f"/api/assistants/{pair['alpha']}/keys").status_code == 401
        created = client.post(f"/api/assistants/{pair['alpha']}/keys", json={"kind": "secret"})
        assert created.status_code == 401
        # A page of another site cannot use it, even where a browser would send it.
        foreign = client.get("/api/assistants", headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403


def test_a_secret_keys_session_reads_its_own_assistant_only(
    api_server: ApiServer, pair: dict[str, str]
) -> None:
    with sign_in(api_server, pair["secret"]) as (client, response):
        assert response.status_code == 303
        assert pair["secret"] not in response.headers["set-cookie"]
        own = client.get(f"/api/assistants/{pair['alpha']}/analytics", params={"since": "7d"})
        assert own.status_code == 200, own.text
        csv = client.get(f"/api/assistants/{pair['alpha']}/analytics/gaps.csv")
        assert csv.status_code == 200
        assert client.get(f"/api/assistants/{pair['beta']}/analytics").status_code == 403
        assert client.get(f"/api/assistants/{pair['beta']}/analytics/gaps.csv").status_code == 403
        assert client.get("/api/assistants").status_code == 403
        who = client.get("/admin/session").json()
        assert who == {"kind": "secret", "assistant": pair["alpha"]}


def test_revoking_the_key_ends_its_sessions(api_server: ApiServer, pair: dict[str, str]) -> None:
    key = api_server.create_key(pair["alpha"], "secret")
    with sign_in(api_server, key) as (client, _), api_server.admin() as admin:
        assert client.get(f"/api/assistants/{pair['alpha']}/analytics").status_code == 200
        keys = admin.get(f"/api/assistants/{pair['alpha']}/keys").json()["keys"]
        key_id = next(k["id"] for k in keys if key.startswith(k["prefix"]))
        assert admin.delete(f"/api/assistants/{pair['alpha']}/keys/{key_id}").status_code in (
            200,
            204,
        )
        assert client.get(f"/api/assistants/{pair['alpha']}/analytics").status_code == 401


def test_signing_out_clears_the_cookie(api_server: ApiServer, pair: dict[str, str]) -> None:
    assert api_server.admin_key is not None
    with sign_in(api_server, api_server.admin_key) as (client, _):
        assert client.get("/api/assistants").status_code == 200
        response = client.post("/admin/logout", headers={"Origin": api_server.url})
        assert response.status_code == 303
        assert COOKIE_NAME not in client.cookies
        assert 'action="/admin/session"' in client.get("/admin").text
        assert client.get("/api/assistants").status_code == 401


def test_forged_and_expired_cookies_are_refused(api_server: ApiServer) -> None:
    secret = b"s" * 32
    session = Session("admin", None, None, int(time.time()) + 60)
    value = encode(secret, session)
    assert decode(secret, value) == session
    assert decode(b"t" * 32, value) is None
    assert decode(secret, value[:-2] + "AA") is None
    assert decode(secret, encode(secret, Session("admin", None, None, 5))) is None
    with api_server.client() as client:
        client.cookies.set(COOKIE_NAME, value)
        assert client.get("/api/assistants").status_code == 401
