"""The analytics routes over a real server: who may read them, the JSON shape, the CSV."""

from __future__ import annotations

import csv
import io

import pytest

from assistant.client import Client
from assistant.leads import LeadStore
from tests.analytics.conftest import REFUNDS, record_turn, trace_for
from tests.api.conftest import ApiServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def owned(api_server: ApiServer) -> tuple[str, dict[str, str]]:
    """Assistant ``shop`` with a refunds page, three turns (one declined) and keys."""
    name = api_server.create_assistant("shop")
    api_server.create_assistant("rival")
    notes = api_server.core.settings.data_dir / "refunds.md"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text("# Refunds\n\n" + REFUNDS.text + "\n", encoding="utf-8")
    api_server.core.ingest([str(notes)], kb=name)
    store = api_server.core.conversation_store
    for question in (
        "How do I get a refund? mail me at ann@example.org",
        "Refund for annual plan?",
    ):
        record_turn(
            store, name, store.start(name), question, answer=REFUNDS.text, sources=[REFUNDS]
        )
    record_turn(
        store,
        name,
        store.start(name),
        "Is there a Berlin office?",
        outcome="no_answer",
        top_score=0.2,
        trace=trace_for((REFUNDS.url, 0.2)),
    )
    keys = {
        "secret": api_server.create_key(name, "secret"),
        "public": api_server.create_key(name, "public"),
        "rival": api_server.create_key("rival", "secret"),
    }
    return name, keys


def test_the_owner_reads_the_report(
    api_server: ApiServer, owned: tuple[str, dict[str, str]]
) -> None:
    name, keys = owned
    with api_server.client(keys["secret"]) as client:
        response = client.get(f"/api/assistants/{name}/analytics", params={"since": "7d"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        "top_questions",
        "content_gaps",
        "source_usage",
        "conversation_quality",
        "leads",
        "volume",
    } <= set(body)
    assert sum(cluster["count"] for cluster in body["top_questions"]) == 3
    assert {"label", "count", "questions"} <= set(body["top_questions"][0])
    gap = body["content_gaps"][0]
    assert gap["questions"] == ["Is there a Berlin office?"]
    assert gap["nearest_sources"][0]["url"] == REFUNDS.url
    assert {"url", "title", "cited", "in_context"} <= set(body["source_usage"][0])
    quality = body["conversation_quality"]
    assert quality["answer_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert {"resolution_rate", "csat", "groundedness"} <= set(quality)
    assert body["leads"]["count"] == 0
    assert body["volume"]["turns"] == 3
    text = response.text
    assert "ann@example.org" not in text and "[email]" in text


def test_the_admin_may_turn_masking_off(
    api_server: ApiServer, owned: tuple[str, dict[str, str]]
) -> None:
    name, _keys = owned
    with api_server.admin() as client:
        response = client.get(f"/api/assistants/{name}/analytics", params={"mask": "false"})
    assert response.status_code == 200
    assert "ann@example.org" in response.text


@pytest.mark.parametrize("key", ["public", "rival", None])
def test_public_keys_and_other_assistants_keys_are_refused(
    api_server: ApiServer,
    owned: tuple[str, dict[str, str]],
    key: str | None,
) -> None:
    name, keys = owned
    with api_server.client(keys[key] if key else None) as client:
        report = client.get(f"/api/assistants/{name}/analytics")
        export = client.get(f"/api/assistants/{name}/analytics/gaps.csv")
    assert report.status_code in (401, 403)
    assert export.status_code == report.status_code


def test_gaps_export_as_csv(api_server: ApiServer, owned: tuple[str, dict[str, str]]) -> None:
    name, keys = owned
    with api_server.client(keys["secret"]) as client:
        response = client.get(f"/api/assistants/{name}/analytics/gaps.csv")
        invalid = client.get(f"/api/assistants/{name}/analytics", params={"since": "soon"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    assert rows[0]["example_questions"] == "Is there a Berlin office?"
    assert rows[0]["suggestion"]
    assert invalid.status_code == 400


def test_leads_are_scored_in_the_report_the_csv_and_the_client(
    api_server: ApiServer, owned: tuple[str, dict[str, str]]
) -> None:
    name, keys = owned
    core = api_server.core
    core.configure(name, lead_form={"enabled": True})
    store = core.conversation_store
    priced = store.start(name, visitor="buyer")
    for question in ("What does the team plan cost?", "Can I get a demo?", "Refund terms?"):
        record_turn(store, name, priced, question, answer=REFUNDS.text, sources=[REFUNDS])
    leads = LeadStore(core.database)
    leads.add(name, {"name": "Ada", "email": "ada@harbor.io"}, conversation_id=priced)
    leads.add(name, {"name": "Bo", "email": "bo@gmail.com"}, conversation_id=None)

    with api_server.client(keys["secret"]) as client:
        report = client.get(f"/api/assistants/{name}/analytics").json()["leads"]
        export = client.get(f"/api/assistants/{name}/analytics/leads.csv")
    # Base 20, work email 10, three questions 15, pricing intent 25; the other: base only.
    assert [item["score"] for item in report["items"]] == [70, 20]
    assert report["items"][0]["pricing_intent"] and report["items"][0]["questions"] == 3
    assert report["count"] == 2 and report["average_score"] == 45
    assert 0 < report["conversion_rate"] < 1  # one of the period's conversations left one
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(row["email"], row["score"]) for row in rows] == [
        ("ada@harbor.io", "70"),
        ("bo@gmail.com", "20"),
    ]
    with Client(api_server.url, keys["secret"]) as sdk:
        assert sdk.report(name).leads.items[0].score == 70
        assert sdk.leads_csv(name) == export.text
