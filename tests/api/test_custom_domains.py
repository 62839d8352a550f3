"""Custom domains: the Host header picks the assistant whose full page ``/`` serves; hosts
nobody claims are refused once the server knows its own names."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.api.conftest import ApiServer
from tests.api.test_auth import assert_problem

HELP = "help.example.com"


def test_a_custom_domain_serves_its_assistant_and_unknown_hosts_are_refused(
    make_api_server: Callable[..., ApiServer],
) -> None:
    api = make_api_server(server_hosts="api.example.com")
    name = api.create_assistant(custom_domains=[HELP.upper()])
    other = api.create_assistant()
    with httpx.Client(base_url=api.url, timeout=30) as client:
        page = client.get("/", headers={"Host": HELP}, params={"key": "pk_test"})
        assert page.status_code == 200
        assert f'data-name="{name}"' in page.text and 'data-assistant="pk_test"' in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        # The same page as /a/{name}, and the widget's files on the same host.
        same = client.get(f"/a/{name}", params={"key": "pk_test"})
        assert same.text == page.text
        assert client.get("/page.css", headers={"Host": HELP}).status_code == 200
        # Another assistant is not reachable through this domain.
        assert_problem(client.get(f"/a/{other}", headers={"Host": HELP}), 404, "not_found")
        # The server's own names and addresses serve as before.
        own = client.get("/", headers={"Host": "api.example.com:8443"})
        assert own.status_code == 200 and 'data-name="default"' in own.text
        assert 'data-name="default"' in client.get("/").text
        # Anything else: misdirected.
        for host in ("evil.example.net", "help.example.com.evil.net"):
            refused = client.get("/", headers={"Host": host})
            assert_problem(refused, 421, "misdirected_request")
            assert_problem(
                client.get("/healthz", headers={"Host": host}), 421, "misdirected_request"
            )


def test_the_custom_domains_page_may_use_the_public_key(
    make_api_server: Callable[..., ApiServer],
) -> None:
    api = make_api_server()
    name = api.create_assistant(custom_domains=[HELP])
    key = api.create_key(name, "public")
    with api.client(key, Origin=f"https://{HELP}") as page:
        assert page.get("/api/widget/config", headers={"Host": HELP}).status_code == 200
    for origin in (f"http://{HELP}", "https://other.example.com", f"https://{HELP}:8443"):
        with api.client(key, Origin=origin) as page:
            assert_problem(page.get("/api/widget/config"), 403, "permission_denied")


def test_custom_domains_must_be_host_names(make_api_server: Callable[..., ApiServer]) -> None:
    api = make_api_server()
    with api.admin() as admin:
        for bad in ("https://help.example.com", "help", "help.example.com/path", "*.example.com"):
            response = admin.post(
                "/api/assistants", json={"name": "d1", "config": {"custom_domains": [bad]}}
            )
            assert response.status_code == 422, bad
