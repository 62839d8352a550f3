"""The OpenAI-compatible routes, driven by the official ``openai`` package against a real
server: models, completions whole and streamed, history from the message list, and errors in
the shape OpenAI's clients parse."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from pydantic import SecretStr

from tests.api.conftest import ApiServer
from tests.chat.fake_openai import Drop, FakeOpenAIServer

pytestmark = pytest.mark.integration

SLACK_QUESTION = "Which plans include the Slack integration?"


@pytest.fixture(scope="module")
def keys(
    api_server: ApiServer, harbor: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A secret key each for ``harbor`` (the help centre) and ``other`` (a refunds note)."""
    notes = tmp_path_factory.mktemp("notes") / "refunds.md"
    notes.write_text(
        "# Refunds\n\nAnnual plans are refunded in full within 14 days of payment.\n",
        encoding="utf-8",
    )
    api_server.create_assistant("other")
    api_server.core.ingest([str(notes)], kb="other")
    return {name: api_server.create_key(name) for name in (harbor, "other")}


def _client(api_server: ApiServer, key: str | None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{api_server.url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture
def harbor_client(api_server: ApiServer, keys: dict[str, str]) -> Iterator[openai.OpenAI]:
    """The ``openai`` package's client with ``harbor``'s secret key."""
    with _client(api_server, keys["harbor"]) as client:
        yield client


def test_models_are_the_assistants_the_key_may_use(
    api_server: ApiServer, keys: dict[str, str]
) -> None:
    with _client(api_server, api_server.admin_key) as admin:
        assert {model.id for model in admin.models.list()} == {"harbor", "other"}
    with _client(api_server, keys["other"]) as other:
        models = list(other.models.list())
    assert [(model.id, model.object, model.owned_by) for model in models] == [
        ("other", "model", "assistant-rag")
    ]


def test_a_completion_answers_with_usage_and_sources(
    api_server: ApiServer, harbor_client: openai.OpenAI
) -> None:
    before = len(api_server.core.conversations(kb="harbor"))
    completion = harbor_client.chat.completions.create(
        model="harbor",
        messages=[
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": SLACK_QUESTION},
        ],
    )
    assert completion.object == "chat.completion" and completion.model == "harbor"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and "Slack" in choice.message.content
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    sources = (completion.model_extra or {})["assistant_sources"]
    assert sources and set(sources[0]) == {"n", "title", "url", "quote", "cited"}
    cited = [source for source in sources if source["cited"]]
    assert cited and all(f"[{source['n']}]" in choice.message.content for source in cited)
    assert any(source["url"].endswith("integrations.html") for source in cited)
    # Without a conversation_id nothing is stored.
    assert len(api_server.core.conversations(kb="harbor")) == before


def test_a_streamed_completion_sends_openais_chunks(harbor_client: openai.OpenAI) -> None:
    chunks = list(
        harbor_client.chat.completions.create(
            model="harbor",
            messages=[{"role": "user", "content": SLACK_QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({chunk.id for chunk in chunks}) == 1
    finish, usage = chunks[-2], chunks[-1]
    assert finish.choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in chunks[:-2]] == [None] * (len(chunks) - 2)
    assert (finish.model_extra or {})["assistant_sources"]
    assert usage.choices == [] and usage.usage is not None
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = harbor_client.chat.completions.create(
        model="harbor", messages=[{"role": "user", "content": SLACK_QUESTION}]
    )
    assert text.strip() == whole.choices[0].message.content


def test_without_include_usage_no_usage_chunk_is_sent(harbor_client: openai.OpenAI) -> None:
    chunks = list(
        harbor_client.chat.completions.create(
            model="harbor", messages=[{"role": "user", "content": "What is HBR-1204?"}], stream=True
        )
    )
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)


def test_earlier_messages_are_the_conversation_and_a_conversation_id_stores_the_turn(
    api_server: ApiServer, harbor_client: openai.OpenAI
) -> None:
    conversation_id = api_server.core.conversation_store.start("harbor")
    completion = harbor_client.chat.completions.create(
        model="harbor",
        messages=[
            {"role": "user", "content": SLACK_QUESTION},
            {"role": "assistant", "content": "Team, Business and Enterprise [1]."},
            {"role": "user", "content": [{"type": "text", "text": "and how much does it cost?"}]},
        ],
        extra_body={"conversation_id": conversation_id},
    )
    assert (completion.model_extra or {})["conversation_id"] == conversation_id
    (turn,) = api_server.core.conversation(conversation_id, kb="harbor").turns
    assert turn.question == "and how much does it cost?"
    assert turn.standalone_question != turn.question and "slack" in turn.standalone_question.lower()
    assert turn.answer == completion.choices[0].message.content
    # Continued with the new message alone, the stored turns are the history.
    harbor_client.chat.completions.create(
        model="harbor",
        messages=[{"role": "user", "content": "and is it included in the free plan?"}],
        extra_body={"conversation_id": conversation_id},
    )
    last = api_server.core.conversation(conversation_id, kb="harbor").turns[-1]
    assert "slack" in last.standalone_question.lower()


def test_a_provider_failing_mid_stream_raises_in_the_client(
    api_server: ApiServer, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAIServer() as fake:
        # The server's settings were read at start-up, so the key goes into them.
        core = api_server.core
        core.settings = core.settings.model_copy(
            update={"openai_api_key": SecretStr("sk-test"), "openai_base_url": fake.url}
        )
        api_server.core.configure("other", answering={"provider": "openai", "model": "gpt-drop"})
        fake.script(Drop(("Refunds are ",)))
        try:
            with _client(api_server, keys["other"]) as other:
                stream = other.chat.completions.create(
                    model="other", messages=[{"role": "user", "content": "refunds?"}], stream=True
                )
                received = []
                with pytest.raises(openai.APIError) as caught:
                    for chunk in stream:
                        received.append(chunk)
        finally:
            api_server.core.configure("other", answering={"provider": None, "model": None})
    assert "".join(c.choices[0].delta.content or "" for c in received) == "Refunds are "
    assert caught.value.code == "ProviderUnavailableError"


@pytest.mark.parametrize(
    ("key", "model", "error", "status", "code"),
    [
        ("sk_not-a-key", "harbor", openai.AuthenticationError, 401, "invalid_api_key"),
        ("harbor", "nowhere", openai.NotFoundError, 404, "model_not_found"),
        ("admin", "nowhere", openai.NotFoundError, 404, "model_not_found"),
        ("harbor", "Not A Name!", openai.NotFoundError, 404, "model_not_found"),
        ("harbor", "other", openai.PermissionDeniedError, 403, "permission_denied"),
    ],
)
def test_errors_come_in_openais_shape(
    api_server: ApiServer,
    keys: dict[str, str],
    key: str,
    model: str,
    error: type[openai.APIStatusError],
    status: int,
    code: str,
) -> None:
    sent = api_server.admin_key if key == "admin" else keys.get(key, key)
    with _client(api_server, sent) as client, pytest.raises(error) as caught:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert isinstance(caught.value.body, dict) and caught.value.body["message"]


def test_error_bodies_are_exactly_openais_envelope(
    api_server: ApiServer, keys: dict[str, str]
) -> None:
    harbor_auth = {"Authorization": f"Bearer {keys['harbor']}"}
    with httpx.Client(base_url=api_server.url, timeout=30) as http:
        unknown = http.get("/v1/models", headers={"Authorization": "Bearer sk_nope"})
        invalid = http.post(
            "/v1/chat/completions",
            json={"model": "harbor", "messages": [{"role": "assistant", "content": "Hello!"}]},
            headers=harbor_auth,
        )
        malformed = http.post(
            "/v1/chat/completions",
            json={"model": "harbor"},
            headers=harbor_auth,
        )
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    assert set(unknown.json()) == {"error"}
    assert set(unknown.json()["error"]) == {"message", "type", "param", "code"}
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    assert invalid.status_code == 400
    assert invalid.json()["error"]["message"].startswith("the last message must be the user's")
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_input"


def test_public_keys_and_web_pages_are_refused(api_server: ApiServer, harbor: str) -> None:
    public = api_server.create_key(harbor, "public")
    secret = api_server.create_key(harbor)
    with httpx.Client(base_url=api_server.url, timeout=30) as http:
        widget = http.get("/v1/models", headers={"Authorization": f"Bearer {public}"})
        page = http.post(
            "/v1/chat/completions",
            json={"model": harbor, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {secret}", "Origin": "https://shop.example"},
        )
    for refused in (widget, page):
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "permission_denied"


def test_image_parts_are_refused(harbor_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="only text content"):
        harbor_client.chat.completions.create(
            model="harbor",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}},
                    ],
                }
            ],
        )
