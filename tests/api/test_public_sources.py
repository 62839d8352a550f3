"""Visitors never see the server's file paths: a widget's public key and the ``/v1`` answers
show a source's title and public URL; secret-key callers still see where a passage came from."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from assistant.api.public_sources import visible_url
from tests.api.conftest import HARBOR_SITE, ApiServer

pytestmark = pytest.mark.integration

SHOP = "https://shop.example.com"
QUESTION = "Which plans include the Slack integration?"


@pytest.fixture(scope="module")
def notes(api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An assistant answering from a Markdown file on disk, with no public base URL."""
    folder = tmp_path_factory.mktemp("private-notes")
    (folder / "refunds.md").write_text(
        "# Refunds\n\nAnnual plans are refunded in full within 14 days of payment.\n",
        encoding="utf-8",
    )
    name = api_server.create_assistant()
    api_server.core.ingest([str(folder / "refunds.md")], kb=name)
    api_server.core.registry.update(name, {"allowed_origins": [SHOP]})
    return name


def _events(response: httpx.Response) -> dict[str, dict[str, object]]:
    assert response.status_code == 200, response.text
    events: dict[str, dict[str, object]] = {}
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events[lines["event"]] = json.loads(lines["data"])
    return events


def _no_paths(items: list[dict[str, object]], root: str) -> None:
    assert items
    for item in items:
        assert root not in json.dumps(item) and not str(item["url"]).startswith("/")


def _addresses(items: object) -> list[dict[str, object]]:
    assert isinstance(items, list)
    return items


def test_a_public_key_sees_titles_and_no_paths(api_server: ApiServer, notes: str) -> None:
    key = api_server.create_key(notes, "public")
    with api_server.client(key, Origin=SHOP) as page:
        token = page.get("/api/widget/config").headers["x-visitor-token"]
        headers = {"X-Visitor-Token": token}
        path = f"/api/assistants/{notes}/chat"
        streamed = _events(page.post(path, json={"message": "refund annual"}, headers=headers))
        whole = page.post(path, json={"message": "refund annual", "stream": False}).json()
        conversation = streamed["sources"]["conversation_id"]
        stored = page.get(
            f"/api/assistants/{notes}/widget/conversations/{conversation}", headers=headers
        ).json()
    for items in (
        _addresses(streamed["sources"]["sources"]),
        _addresses(streamed["citations"]["citations"]),
        whole["sources"],
        whole["citations"],
        stored["turns"][0]["citations"],
    ):
        _no_paths(items, "private-notes")
        assert {(item["title"], item["url"]) for item in items} == {("Refunds", "")}


def test_a_secret_key_still_sees_the_path(api_server: ApiServer, notes: str) -> None:
    with api_server.client(api_server.create_key(notes)) as client:
        whole = client.post(
            f"/api/assistants/{notes}/chat", json={"message": "refund annual", "stream": False}
        ).json()
    assert Path(whole["citations"][0]["url"]).name == "refunds.md"
    assert "private-notes" in whole["citations"][0]["url"]


def test_v1_sources_carry_no_paths(api_server: ApiServer, notes: str, harbor: str) -> None:
    for name, question in ((notes, "refund annual"), (harbor, QUESTION)):
        client = openai.OpenAI(
            base_url=f"{api_server.url}/v1",
            api_key=api_server.create_key(name),
            max_retries=0,
            timeout=30,
        )
        with client:
            whole = client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": question}]
            )
            chunks = list(
                client.chat.completions.create(
                    model=name, messages=[{"role": "user", "content": question}], stream=True
                )
            )
        for sources in (
            (whole.model_extra or {})["assistant_sources"],
            (chunks[-1].model_extra or {})["assistant_sources"],
        ):
            _no_paths(sources, "help-centre")
            _no_paths(sources, "private-notes")
            if name == harbor:
                # The help centre's pages link under the brand's public base URL.
                assert all(s["url"].startswith(HARBOR_SITE) for s in sources)
            else:
                assert {s["url"] for s in sources} == {""}


@pytest.mark.parametrize(
    ("url", "base", "shown"),
    [
        ("https://help.example/a?b=1#c", None, "https://help.example/a?b=1#c"),
        ("http://user:pw@help.example/a", None, "http://help.example/a"),
        ("/srv/docs/guide.md", None, ""),
        ("/srv/docs/guide.md", "https://help.example/docs/", "https://help.example/docs/guide.md"),
        ("file:///srv/docs/guide.md", None, ""),
        ("C:\\Users\\owner\\guide.md", "https://h.example", "https://h.example/guide.md"),
        ("javascript:alert(1)", "https://h.example", ""),
        ("data:text/html,hi", None, ""),
    ],
)
def test_visible_url(url: str, base: str | None, shown: str) -> None:
    assert visible_url(url, base) == shown
