"""The SDK is light: importing the client, the package or a value type loads no model,
vector-store, database or cache library, and the in-process modules hand out the same types.

Imports are checked in a fresh interpreter each, since this test process has long since
loaded everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HEAVY = (
    "torch",
    "transformers",
    "chromadb",
    "sqlalchemy",
    "redis",
    # The document parsers: the client sniffs files before uploading, it does not parse them.
    "pypdf",
    "docx",
    "trafilatura",
    "lxml",
)

LIGHT_MODULES = (
    "assistant.analytics",
    "assistant.analytics.types",
    "assistant.chat.events",
    "assistant.chat.records",
    "assistant.config",
    "assistant.jobs",
    "assistant.jobs.records",
    "assistant.knowledge.reports",
    "assistant.knowledge.results",
    "connectors.sniff",
    "connectors.sources",
)


def _heavy_modules_after(code: str) -> list[str]:
    """The ``HEAVY`` libraries in ``sys.modules`` after running ``code`` in a new process."""
    probe = (
        f"{code}\nimport json, sys\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_the_probe_sees_a_heavy_import() -> None:
    # Guards the tests below against a probe that can never find anything.
    assert _heavy_modules_after("import sqlalchemy") == ["sqlalchemy"]


def test_importing_the_client_loads_no_heavy_library() -> None:
    assert _heavy_modules_after("import assistant.client") == []


def test_importing_the_package_and_its_value_types_loads_no_heavy_library() -> None:
    code = "import assistant\nfrom assistant import Answer, Citation, IngestReport, SearchHit"
    assert _heavy_modules_after(code) == []


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_each_value_type_module_is_light(module: str) -> None:
    assert _heavy_modules_after(f"import {module}") == []


def test_the_old_import_paths_give_the_same_types() -> None:
    from assistant import core
    from assistant.assistants import AssistantConfig as RegistryConfig
    from assistant.chat import conversations, records
    from assistant.client import IngestJob
    from assistant.config import AssistantConfig
    from assistant.jobs import records as job_records
    from assistant.jobs import store
    from assistant.knowledge import ingest, reports, results, retriever

    assert RegistryConfig is AssistantConfig is core.AssistantConfig
    for name in ("SearchHit", "SearchResult", "SearchTrace"):
        assert getattr(retriever, name) is getattr(results, name)
    for name in ("DocumentOutcome", "IngestReport", "ProgressEvent", "ProgressCallback"):
        assert getattr(ingest, name) is getattr(reports, name)
    assert core.SourceSummary is reports.SourceSummary
    for name in ("Conversation", "ConversationSummary", "TurnRecord", "Outcome"):
        assert getattr(conversations, name) is getattr(records, name)
    for name in ("JobKind", "JobRecord", "JobSpec", "JobStatus"):
        assert getattr(store, name) is getattr(job_records, name)
    assert IngestJob is store.JobRecord
    from assistant import analytics
    from assistant.analytics import quality, records, report, topics, types, usage, volume

    for name in ("AnalyticsReport", "ContentGap", "LeadSummary", "NearestPage"):
        assert getattr(report, name) is getattr(types, name) is getattr(analytics, name)
    assert records.Page is types.Page and quality.ConversationQuality is types.ConversationQuality
    assert topics.QuestionCluster is types.QuestionCluster and usage.SourceUse is types.SourceUse
    for name in ("ModelUsage", "StageLatency", "Volume"):
        assert getattr(volume, name) is getattr(types, name)


def test_the_package_names_resolve_to_the_core_types() -> None:
    import assistant
    from assistant import core

    for name in ("Answer", "Assistant", "Citation", "IngestReport", "SearchHit", "SearchResult"):
        assert getattr(assistant, name) is getattr(core, name)


def test_the_jobs_package_resolves_its_lazy_names() -> None:
    import assistant.jobs
    from assistant.jobs import queue, runner, store

    assert assistant.jobs.JobStore is store.JobStore
    assert assistant.jobs.open_job_queue is queue.open_job_queue
    assert assistant.jobs.run_job is runner.run_job
    assert set(assistant.jobs.__all__) <= set(dir(assistant.jobs)) | set(assistant.jobs._LAZY)
    with pytest.raises(AttributeError):
        assistant.jobs.DoesNotExist  # noqa: B018


def _stored_job(spec_crawl: bool) -> object:
    from assistant.jobs.records import JobRecord, JobSpec
    from assistant.knowledge.reports import DocumentOutcome, IngestReport

    created = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return JobRecord(
        id="job-1",
        assistant="docs",
        kind="crawl" if spec_crawl else "url",
        spec=JobSpec(sources=("https://example.com/",), crawl=spec_crawl),
        status="succeeded",
        progress_done=2,
        progress_total=2,
        report=IngestReport(
            outcomes=[
                DocumentOutcome("https://example.com/", "added", chunks=3),
                DocumentOutcome("https://example.com/x", "failed", reason="404", error_type="E"),
            ],
            chunks_embedded=3,
            seconds=1.5,
        ),
        error=None,
        attempts=1,
        created_at=created,
        started_at=created,
        finished_at=created,
    )


@pytest.mark.parametrize("crawl", [False, True])
def test_a_job_read_over_http_is_the_stored_job(crawl: bool) -> None:
    from assistant.api.sources_schemas import JobPublic
    from assistant.client._ingest import decode_job
    from assistant.jobs.records import JobRecord

    stored = _stored_job(crawl)
    assert isinstance(stored, JobRecord)
    sent = JobPublic.of(stored).model_dump(mode="json")
    read = decode_job(sent, "docs")
    assert read == stored
    assert read.sources == ("https://example.com/",) and read.files == ()
    assert read.finished and read.report is not None and len(read.report.failures) == 1


def test_wire_docstring_examples_hold() -> None:
    import doctest

    from assistant.client import _wire

    assert doctest.testmod(_wire).failed == 0
