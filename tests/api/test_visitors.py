"""Widget visitors at the HTTP level: server-signed tokens bind conversations, turns and the
per-visitor rate limit, whatever the client claims (``X-Visitor-Id``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest

from assistant.api.brand import AA_CONTRAST, contrast, readable_colours
from tests.api.conftest import ApiServer
from tests.api.test_auth import assert_problem

SHOP = "https://shop.example.com"


@pytest.fixture(scope="module")
def shop(api_server: ApiServer, harbor: str) -> str:
    """The help centre's public key, usable from ``SHOP``."""
    api_server.core.registry.update(harbor, {"allowed_origins": [SHOP]})
    return api_server.create_key(harbor, "public")


@pytest.fixture
def page(api_server: ApiServer, shop: str) -> Iterator[httpx.Client]:
    """A web page on ``SHOP`` using the public key, with no visitor token yet."""
    with api_server.client(shop, Origin=SHOP) as client:
        yield client


def visitor(client: httpx.Client) -> dict[str, str]:
    """A new visitor: the token the server issues on a first configuration request."""
    response = client.get("/api/widget/config")
    assert response.status_code == 200, response.text
    return {"X-Visitor-Token": response.headers["x-visitor-token"]}


def ask(client: httpx.Client, token: dict[str, str], **body: object) -> dict[str, object]:
    """One streamed turn; its ``sources`` and ``done`` events merged."""
    response = client.post(
        "/api/assistants/harbor/chat",
        json={"message": "How do I reset my password?", **body},
        headers=token,
    )
    assert response.status_code == 200, response.text
    events: dict[str, object] = {}
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if lines.get("event") in ("sources", "done"):
            events.update(json.loads(lines["data"]))
    return events


def test_the_config_issues_a_token_once_and_only_for_its_assistant(
    page: httpx.Client, api_server: ApiServer
) -> None:
    first = page.get("/api/widget/config")
    assert first.status_code == 200 and first.json()["name"] == "harbor"
    token = first.headers["x-visitor-token"]
    assert first.headers["access-control-allow-origin"] == "*"
    assert "X-Visitor-Token" in first.headers["access-control-expose-headers"]
    again = page.get("/api/widget/config", headers={"X-Visitor-Token": token})
    assert again.status_code == 200 and "x-visitor-token" not in again.headers
    # A token of another assistant, or a forged one, is replaced by a new one.
    for wrong in (api_server.visitor_token("other"), token[:-2] + "xx"):
        reissued = page.get("/api/widget/config", headers={"X-Visitor-Token": wrong})
        assert reissued.headers["x-visitor-token"] not in (wrong, token)


def test_a_page_on_another_origin_is_told_why(api_server: ApiServer, shop: str) -> None:
    with api_server.client(shop, Origin="https://evil.example") as client:
        refused = client.get("/api/widget/config")
    assert_problem(refused, 403, "permission_denied")
    # Readable by the page, so the widget can explain instead of failing silently.
    assert refused.headers["access-control-allow-origin"] == "*"
    assert "x-visitor-token" not in refused.headers


@pytest.mark.slow
def test_a_stolen_conversation_id_is_not_found(page: httpx.Client) -> None:
    anna, ben = visitor(page), visitor(page)
    answer = ask(page, anna)
    conversation = answer["conversation_id"]
    path = f"/api/assistants/harbor/widget/conversations/{conversation}"
    mine = page.get(path, headers=anna)
    assert mine.status_code == 200 and len(mine.json()["turns"]) == 1
    assert mine.json()["turns"][0]["citations"]
    # Ben learned the id: he can neither read nor continue Anna's conversation.
    assert_problem(page.get(path, headers=ben), 404, "not_found")
    continued = page.post(
        "/api/assistants/harbor/chat",
        json={"message": "And then?", "conversation_id": conversation},
        headers=ben,
    )
    assert_problem(continued, 404, "not_found")
    # Neither can a page without a token, nor one naming itself Anna.
    assert_problem(page.get(path), 404, "not_found")
    assert_problem(page.get(path, headers={"X-Visitor-Id": "anna"}), 404, "not_found")
    # Anna continues hers.
    assert ask(page, anna, conversation_id=conversation)["conversation_id"] == conversation


@pytest.mark.slow
def test_turns_are_rated_by_unguessable_references_only(page: httpx.Client) -> None:
    anna, ben = visitor(page), visitor(page)
    done = ask(page, anna)
    assert done["turn_id"] is None, "a public key never sees sequential turn ids"
    ref = str(done["turn_ref"])
    turn_id = int(ref.split(".")[0])
    # The id route refuses public keys, and made-up or borrowed references are unknown.
    for guess in (turn_id, turn_id - 1, turn_id + 1):
        rated = page.post(f"/api/assistants/harbor/turns/{guess}/feedback", json={"rating": -1})
        assert_problem(rated, 404, "not_found")
    feedback = "/api/assistants/harbor/widget/feedback"
    for made_up in (str(turn_id), f"{turn_id}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        rated = page.post(feedback, json={"turn": made_up, "rating": -1}, headers=anna)
        assert_problem(rated, 404, "not_found")
    assert_problem(
        page.post(feedback, json={"turn": ref, "rating": 1}, headers=ben), 404, "not_found"
    )
    assert page.post(feedback, json={"turn": ref, "rating": 1}, headers=anna).status_code == 204


def test_rotating_the_visitor_id_does_not_dodge_the_visitor_limit(api_server: ApiServer) -> None:
    name = api_server.create_assistant(
        allowed_origins=[SHOP], limits={"visitor_requests_per_minute": 2}
    )
    public = api_server.create_key(name, "public")
    path = f"/api/assistants/{name}/widget"
    with api_server.client(public, Origin=SHOP) as client:
        token = {"X-Visitor-Token": api_server.visitor_token(name)}
        for n in range(2):
            assert client.get(path, headers={**token, "X-Visitor-Id": f"v{n}"}).status_code == 200
        refused = client.get(path, headers={**token, "X-Visitor-Id": "fresh"})
        assert_problem(refused, 429, "rate_limited")
        # Without a token every request shares the address's budget, whatever id it claims.
        for n in range(2):
            assert client.get(path, headers={"X-Visitor-Id": f"w{n}"}).status_code == 200
        assert_problem(client.get(path, headers={"X-Visitor-Id": "w9"}), 429, "rate_limited")


def test_the_widget_files_are_public_and_cached_by_their_hash(api_server: ApiServer) -> None:
    loader = httpx.get(f"{api_server.url}/widget.js")
    assert loader.status_code == 200 and loader.headers["access-control-allow-origin"] == "*"
    assert loader.headers["cache-control"] == "public, max-age=300"
    match = re.search(r"/widget/(panel-[0-9a-f]{12}\.js)", loader.text)
    assert match is not None, "the loader names its panel chunk"
    chunk = match.group(1)
    hashed = httpx.get(f"{api_server.url}/widget/{chunk}")
    assert hashed.status_code == 200
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{api_server.url}/widget/../setup.py").status_code == 404
    assert httpx.get(f"{api_server.url}/widget/panel-000000000000.js").status_code == 404


@pytest.mark.parametrize("colour", ["#ffeb3b", "#93c5fd", "#777777", "#2563eb", "#fff", "#000000"])
def test_brand_colours_are_made_readable(colour: str) -> None:
    background, text = readable_colours(colour)
    assert contrast(background, text) >= AA_CONTRAST
    assert len(background) == 7


def test_a_readable_colour_is_kept() -> None:
    assert readable_colours("#112233") == ("#112233", "#ffffff")
