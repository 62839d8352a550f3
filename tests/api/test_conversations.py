"""Conversations over HTTP against a real server: list, read, export, delete, and no way for
one assistant's key to reach another assistant's conversations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Keys:
    """A secret key each for ``harbor`` (the help centre) and ``other`` (a refunds note)."""

    keys: dict[str, str]

    def auth(self, name: str) -> dict[str, str]:
        """The ``Authorization`` header with ``name``'s key."""
        return {"Authorization": f"Bearer {self.keys[name]}"}


@pytest.fixture(scope="module")
def keys(api_server: ApiServer, harbor: str, tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """``harbor`` and ``other`` (a refunds note), with a secret key each."""
    notes = tmp_path_factory.mktemp("notes") / "refunds.md"
    notes.write_text(
        "# Refunds\n\nAnnual plans are refunded in full within 14 days of payment.\n",
        encoding="utf-8",
    )
    api_server.create_assistant("other")
    api_server.core.ingest([str(notes)], kb="other")
    return Keys({name: api_server.create_key(name) for name in (harbor, "other")})


@pytest.fixture
def client(api_server: ApiServer) -> Iterator[httpx.Client]:
    """A client of the module's server; each request names its key."""
    with api_server.client() as http:
        yield http


def _chat(
    client: httpx.Client,
    keys: Keys,
    name: str,
    message: str,
    conversation_id: str | None = None,
) -> dict[str, Any]:
    reply = client.post(
        f"/api/assistants/{name}/chat",
        json={"message": message, "conversation_id": conversation_id, "stream": False},
        headers=keys.auth(name),
    )
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def test_a_conversation_is_listed_read_and_exported_with_its_turns(
    keys: Keys, client: httpx.Client
) -> None:
    headers = keys.auth("harbor")
    first = _chat(client, keys, "harbor", "How do I change my email address?")
    conversation_id = first["conversation_id"]
    second = _chat(client, keys, "harbor", "how long is the link valid?", conversation_id)

    listed = client.get("/api/assistants/harbor/conversations", headers=headers)
    assert listed.status_code == 200
    summary = next(c for c in listed.json()["conversations"] if c["id"] == conversation_id)
    assert summary["turns"] == 2 and summary["title"] == "How do I change my email address?"

    read = client.get(f"/api/assistants/harbor/conversations/{conversation_id}", headers=headers)
    assert read.status_code == 200
    conversation = read.json()
    assert conversation["assistant"] == "harbor"
    assert [turn["id"] for turn in conversation["turns"]] == [first["turn_id"], second["turn_id"]]
    assert [turn["answer"] for turn in conversation["turns"]] == [first["answer"], second["answer"]]
    assert conversation["turns"][1]["standalone_question"] == second["standalone_question"]
    assert conversation["turns"][0]["citations"] == first["citations"]
    assert "trace" not in conversation["turns"][0]

    export = client.get(
        f"/api/assistants/harbor/conversations/{conversation_id}/export", headers=headers
    )
    assert export.status_code == 200
    assert export.headers["content-disposition"] == (
        f'attachment; filename="conversation-{conversation_id}.json"'
    )
    document = json.loads(export.content)
    assert document["id"] == conversation_id and document["exported_at"]
    assert [turn["question"] for turn in document["turns"]] == [
        "How do I change my email address?",
        "how long is the link valid?",
    ]
    assert document["turns"][0]["trace"]["candidates"], "each turn keeps its retrieval trace"


def test_listing_pages_through_conversations_newest_first(keys: Keys, client: httpx.Client) -> None:
    ids = [
        _chat(client, keys, "harbor", question)["conversation_id"]
        for question in ("What is HBR-1001?", "What is HBR-1204?", "What is HBR-2417?")
    ]
    headers = keys.auth("harbor")
    page = client.get(
        "/api/assistants/harbor/conversations", params={"limit": 2}, headers=headers
    ).json()["conversations"]
    assert [c["id"] for c in page] == ids[::-1][:2]
    rest = client.get(
        "/api/assistants/harbor/conversations", params={"limit": 2, "offset": 2}, headers=headers
    ).json()["conversations"]
    assert rest[0]["id"] == ids[0]
    too_many = client.get(
        "/api/assistants/harbor/conversations", params={"limit": 5000}, headers=headers
    )
    assert too_many.status_code == 422


def test_a_deleted_conversation_is_gone(keys: Keys, client: httpx.Client) -> None:
    headers = keys.auth("harbor")
    conversation_id = _chat(client, keys, "harbor", "How do refunds work?")["conversation_id"]
    path = f"/api/assistants/harbor/conversations/{conversation_id}"
    deleted = client.delete(path, headers=headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(path, headers=headers).json()["code"] == "not_found"
    assert client.delete(path, headers=headers).status_code == 404
    listed = client.get("/api/assistants/harbor/conversations", headers=headers).json()
    assert conversation_id not in {c["id"] for c in listed["conversations"]}
    # A deleted conversation cannot be continued either.
    reply = client.post(
        "/api/assistants/harbor/chat",
        json={"message": "and then?", "conversation_id": conversation_id},
        headers=headers,
    )
    assert reply.status_code == 404


@pytest.mark.parametrize("suffix", ["", "/export"])
def test_one_assistants_key_cannot_reach_another_assistants_conversation(
    keys: Keys, client: httpx.Client, suffix: str
) -> None:
    theirs = _chat(client, keys, "other", "Are refunds possible?")["conversation_id"]
    mine = keys.auth("harbor")
    # Asking for it by the other assistant's path: the key is refused.
    their_path = f"/api/assistants/other/conversations/{theirs}{suffix}"
    assert client.get(their_path, headers=mine).status_code == 403
    # Asking for it through one's own assistant: it does not exist there.
    my_path = f"/api/assistants/harbor/conversations/{theirs}{suffix}"
    refused = client.get(my_path, headers=mine)
    assert refused.status_code == 404 and refused.json()["code"] == "not_found"
    deleted = client.delete(f"/api/assistants/harbor/conversations/{theirs}", headers=mine)
    assert deleted.status_code == 404
    listed = client.get("/api/assistants/harbor/conversations", headers=mine).json()
    assert theirs not in {c["id"] for c in listed["conversations"]}
    # Nor can it be continued through another assistant.
    continued = client.post(
        "/api/assistants/harbor/chat",
        json={"message": "and?", "conversation_id": theirs},
        headers=mine,
    )
    assert continued.status_code == 404
    # Its own key still reads it, untouched.
    own = client.get(their_path, headers=keys.auth("other"))
    assert own.status_code == 200 and own.json()["id"] == theirs


def test_reading_conversations_needs_a_key(
    harbor: str, client: httpx.Client, admin_client: httpx.Client
) -> None:
    reply = client.get(f"/api/assistants/{harbor}/conversations")
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"
    assert admin_client.get(f"/api/assistants/{harbor}/conversations").status_code == 200
