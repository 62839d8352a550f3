"""The demo chat page: served with a strict content security policy, script valid and safe."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ApiServer

STATIC = Path(__file__).resolve().parents[2] / "assistant" / "api" / "static"


def test_the_demo_page_and_its_assets_are_served_under_a_strict_policy(
    api_server: ApiServer,
) -> None:
    page = httpx.get(f"{api_server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert '<script src="/demo.js" defer></script>' in page.text
    # No inline script at all: the policy would refuse it anyway.
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)
    for asset, kind in (("demo.js", "text/javascript"), ("demo.css", "text/css")):
        response = httpx.get(f"{api_server.url}/{asset}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
    # The page is not an API operation.
    assert "/" not in httpx.get(f"{api_server.url}/openapi.json").json()["paths"]


def test_the_demo_script_inserts_server_text_as_text_only() -> None:
    script = (STATIC / "demo.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "document.write" not in script and "eval(" not in script


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_demo_script_parses() -> None:
    node = shutil.which("node")
    assert node is not None
    checked = subprocess.run([node, "--check", str(STATIC / "demo.js")], capture_output=True)
    assert checked.returncode == 0, checked.stderr
