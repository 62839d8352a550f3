"""The ``assistant`` command on the bundled sample knowledge base, through the real entry point.

Checks the JSON contract that outside scripts rely on, batch mode from standard input, and that
expected failures end in one clear line (exit 1) with no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.database.engine import Database, database_url
from assistant.jobs.store import JobSpec, JobStore

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "help-centre"


def _cli(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=data_dir.parent,
        timeout=300,
    )


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the sample help centre, ingested once through the CLI."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    pages = sorted(str(p) for p in (SAMPLE / "site").glob("*.html"))
    result = _cli("ingest", *pages, str(SAMPLE / "docs"), "--kb", "help", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "11 added" in result.stdout and "0 failed" in result.stdout
    return data_dir


@pytest.mark.slow
def test_search_json_follows_the_contract(sample_kb: Path) -> None:
    result = _cli(
        "search",
        "single sign-on identity providers",
        "--kb",
        "help",
        "-k",
        "3",
        "--json",
        data_dir=sample_kb,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["query"] == "single sign-on identity providers"
    assert len(payload["results"]) == 3
    for key in ("chunk_id", "url", "title", "text", "dense_rank", "dense_score", "rank", "score"):
        assert key in payload["results"][0]
    assert [r["rank"] for r in payload["results"]] == [1, 2, 3]
    assert payload["results"][0]["url"].endswith("security.html")


@pytest.mark.slow
def test_ask_json_and_batch_mode(sample_kb: Path) -> None:
    questions = "Can I get my money back if I cancel an annual plan?\n\nWhich languages is the Harbor app available in?\n"
    result = _cli("ask", "-", "--kb", "help", "--json", data_dir=sample_kb, stdin=questions)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == [
        "Can I get my money back if I cancel an annual plan?",
        "Which languages is the Harbor app available in?",
    ]
    refund = lines[0]
    assert set(refund) >= {"question", "answer", "citations", "trace"}
    assert "14 days" in refund["answer"]
    citation = refund["citations"][0]
    assert set(citation) >= {"n", "title", "url", "quote"}
    assert citation["url"].endswith("billing.html") and f"[{citation['n']}]" in refund["answer"]
    assert lines[1]["citations"][0]["url"].endswith("faq.md")
    trace = refund["trace"]
    candidates = {c["chunk_id"]: c for c in trace["candidates"]}
    assert len(candidates) == trace["pool_size"] >= len(trace["context"])
    assert set(trace["context"]) <= set(candidates) and trace["cache_misses"] == 0
    first = candidates[trace["context"][0]]
    assert first["rank"] == 1 and {"dense_rank", "late_interaction_score"} <= set(first)
    assert set(trace["timings_ms"]) >= {"encode", "recall", "maxsim", "answer"}


@pytest.mark.slow
def test_ask_prints_answer_and_numbered_citations(sample_kb: Path) -> None:
    result = _cli(
        "ask",
        "Which Harbor version dropped support for macOS 11?",
        "--kb",
        "help",
        data_dir=sample_kb,
    )
    assert result.returncode == 0, result.stderr
    assert "[1]" in result.stdout and "release-notes.md" in result.stdout


@pytest.mark.slow
def test_sources_and_forget(sample_kb: Path) -> None:
    listed = _cli("sources", "--kb", "help", "--json", data_dir=sample_kb)
    sources = {s["source"]: s for s in json.loads(listed.stdout)["sources"]}
    docs = str(SAMPLE / "docs")
    assert sources[docs]["documents"] == 4 and sources[docs]["chunks"] > 4
    forgotten = _cli("forget", docs, "--kb", "help", data_dir=sample_kb)
    assert (
        forgotten.returncode == 0
        and f"removed {sources[docs]['chunks']} chunks" in forgotten.stdout
    )
    listed = _cli("sources", "--kb", "help", "--json", data_dir=sample_kb)
    assert docs not in {s["source"] for s in json.loads(listed.stdout)["sources"]}
    again = _cli("ingest", docs, "--kb", "help", data_dir=sample_kb)
    assert again.returncode == 0 and "4 added" in again.stdout


def test_expected_failures_print_one_line_and_exit_1(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    missing = _cli("search", "anything", "--kb", "nope", data_dir=data_dir)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    bad_name = _cli("search", "anything", "--kb", "Bad Name!", data_dir=data_dir)
    assert bad_name.returncode == 1 and "invalid knowledge base name" in bad_name.stderr
    refused = _cli("ingest", "http://127.0.0.1:9/", data_dir=data_dir)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr + refused.stdout
    assert "failed" in refused.stdout


def test_partial_failures_exit_1_and_name_each_failure(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThis page is fine.\n", encoding="utf-8")
    (folder / "empty.txt").write_text("", encoding="utf-8")
    result = _cli("ingest", str(folder), "--json", data_dir=tmp_path / "data")
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert payload["added"] == 1 and payload["failed"] == 1
    failure = next(d for d in payload["documents"] if d["status"] == "failed")
    assert failure["url"].endswith("empty.txt") and failure["reason"]


@pytest.mark.slow
def test_chat_streams_keeps_context_and_answers_commands(sample_kb: Path) -> None:
    session = (
        "Which plans include the Slack integration?\n"
        "/sources\n"
        "and how much does it cost?\n"
        "/reset\n"
        "What is the capital of Mongolia?\n"
        "/exit\n"
    )
    result = _cli("chat", "--kb", "help", data_dir=sample_kb, stdin=session)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Team, Business and Enterprise" in out
    assert "[1]" in out and "integrations.html" in out
    assert "(new conversation)" in out
    # Both turns of the first conversation were stored in one conversation.
    listed = _cli("gaps", "--kb", "help", "--json", data_dir=sample_kb)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["kb"] == "help"


def test_configure_shows_and_changes_settings_and_rejects_typos(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    changed = _cli(
        "configure",
        "brand.company=Harbor",
        'brand.suggested_questions=["How do refunds work?"]',
        "answering.temperature=0.3",
        "--kb",
        "help",
        data_dir=data_dir,
    )
    assert changed.returncode == 0, changed.stderr
    config = json.loads(changed.stdout)
    assert config["brand"]["company"] == "Harbor"
    assert config["brand"]["suggested_questions"] == ["How do refunds work?"]
    assert config["answering"]["temperature"] == 0.3
    shown = json.loads(_cli("configure", "--kb", "help", data_dir=data_dir).stdout)
    assert shown["brand"]["company"] == "Harbor"
    typo = _cli("configure", "brand.colour=#fff", "--kb", "help", data_dir=data_dir)
    assert typo.returncode == 1 and "colour" in typo.stderr and "Traceback" not in typo.stderr


def test_jobs_are_listed_and_cancelled_from_the_command_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = Database.open(database_url(None, data_dir))
    try:
        store = JobStore(database)
        queued = store.create("help", "url", JobSpec(sources=("https://help.example.com/",)))
        store.create("other", "url", JobSpec(sources=("https://other.example.com/",)))
    finally:
        database.close()

    listed = _cli("jobs", "--kb", "help", "--json", data_dir=data_dir)
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)["jobs"]
    assert [(job["id"], job["status"]) for job in jobs] == [(queued.id, "queued")]

    cancelled = _cli("cancel", queued.id, "--kb", "help", "--json", data_dir=data_dir)
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["job"]["status"] == "cancelled"
    table = _cli("jobs", "--kb", "help", data_dir=data_dir)
    assert queued.id in table.stdout and "cancelled" in table.stdout

    again = _cli("cancel", queued.id, "--kb", "help", data_dir=data_dir)
    assert again.returncode == 1 and "cancelled already" in again.stderr
    elsewhere = _cli("cancel", queued.id, "--kb", "other", data_dir=data_dir)
    assert elsewhere.returncode == 1 and "has no job" in elsewhere.stderr
    assert "Traceback" not in again.stderr + elsewhere.stderr
