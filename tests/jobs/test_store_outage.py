"""A vector store outage stops a job without failing it: the job goes back to the queue and
runs again (a Chroma restart mid-ingest), and fails for good only after its runs are spent."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.jobs.runner import retry_delay, run_job
from assistant.jobs.store import JobSpec, JobStore
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings
from tests.support.servers import StaticSite, free_loopback_port, start_chroma, stop


def test_the_retry_delay_grows_with_the_runs() -> None:
    assert retry_delay(0) == retry_delay(1) < retry_delay(2) < retry_delay(3)


@pytest.mark.integration
def test_a_job_stopped_by_a_chroma_outage_runs_again_and_fails_only_after_its_runs(
    tmp_path: Path, encoder: TransformerEncoder
) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "refunds.html").write_text(
        "<html><head><title>Refunds</title></head><body><main><h1>Refunds</h1>"
        "<p>Ask for a refund within thirty days of the purchase, from the billing page.</p>"
        "</main></body></html>",
        encoding="utf-8",
    )
    port = free_loopback_port()
    core = Assistant(
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path / "data",
            chroma_url=f"http://127.0.0.1:{port}",
            fetch_allow_hosts=("127.0.0.1",),
            job_max_attempts=2,
        ),
        encoder=encoder,
    )
    store = JobStore(core.database)
    try:
        with StaticSite(tmp_path / "site") as site:
            spec = JobSpec(sources=(f"{site.url}refunds.html",))
            given_up, resumed = store.create("docs", "url", spec), store.create("docs", "url", spec)
            # Chroma is down: each job stops and waits on the queue with the reason.
            for job in (given_up, resumed):
                stopped = run_job(core, job.id)
                assert stopped is not None and stopped.status == "queued", stopped
                assert stopped.attempts == 1 and stopped.error and "vector store" in stopped.error
            failed = run_job(core, given_up.id)
            assert failed is not None and failed.status == "failed", failed
            assert failed.error and "after 2 runs" in failed.error
            chroma = start_chroma(port, tmp_path / "chroma", tmp_path / "chroma.log")
            try:
                finished = run_job(core, resumed.id)
                assert finished is not None and finished.status == "succeeded", finished
                assert finished.attempts == 2 and finished.error is None
                assert sum(source.chunks for source in core.sources(kb="docs")) > 0
            finally:
                stop(chroma)
    finally:
        core.close()
