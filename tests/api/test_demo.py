"""The full-page assistant at ``/`` and ``/a/{name}``: served under a strict content security
policy, loading the built widget from this origin, with no inline script."""

from __future__ import annotations

import re

import httpx

from tests.api.conftest import ApiServer


def test_the_full_page_and_its_assets_are_served_under_a_strict_policy(
    api_server: ApiServer,
) -> None:
    for path in ("/", "/a/harbor", "/a/harbor?key=pk_test"):
        page = httpx.get(f"{api_server.url}{path}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert re.search(r'<script src="/widget.js" [^>]*data-target="#assistant"', page.text)
        # No inline script at all: the policy would refuse it anyway.
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    assert 'data-assistant="pk_test"' in httpx.get(f"{api_server.url}/a/x?key=pk_test").text
    # A name no assistant can have, and markup in the key, never reach the page as markup.
    assert httpx.get(f"{api_server.url}/a/%3Cscript%3E").status_code == 404
    escaped = httpx.get(f"{api_server.url}/a/x", params={"key": '"><script>x</script>'}).text
    assert "<script>x" not in escaped
    for asset, kind in (("widget.js", "text/javascript"), ("page.css", "text/css")):
        response = httpx.get(f"{api_server.url}/{asset}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    # The page is not an API operation.
    assert "/" not in httpx.get(f"{api_server.url}/openapi.json").json()["paths"]
