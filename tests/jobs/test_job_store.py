"""JobStore on SQLite and PostgreSQL: scoping by assistant, claiming, progress, the end of a
job, and jobs interrupted by a dying process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from assistant.database.engine import Database
from assistant.errors import NotFoundError
from assistant.jobs.store import JobSpec, JobStore
from assistant.knowledge.ingest import DocumentOutcome, IngestReport

CRAWL = JobSpec(sources=("https://example.com/help/",), crawl=True, max_pages=50, max_depth=2)


@pytest.fixture
def store(database_url: str) -> Iterator[JobStore]:
    database = Database.open(database_url)
    yield JobStore(database)
    database.close()


def test_a_job_is_created_queued_and_read_back_with_its_spec(store: JobStore) -> None:
    created = store.create("docs", "crawl", CRAWL)
    assert created.status == "queued" and created.attempts == 0 and created.report is None
    loaded = store.get("docs", created.id)
    assert loaded.spec == CRAWL
    assert (loaded.kind, loaded.progress_done, loaded.progress_total) == ("crawl", 0, None)
    assert loaded.started_at is None and loaded.finished_at is None and not loaded.finished


def test_jobs_are_scoped_by_assistant(store: JobStore) -> None:
    mine = store.create("docs", "url", JobSpec(sources=("https://example.com/a",)))
    store.create("shop", "url", JobSpec(sources=("https://example.com/b",)))
    with pytest.raises(NotFoundError):
        store.get("shop", mine.id)
    with pytest.raises(NotFoundError):
        store.get("docs", "0" * 32)
    assert [job.id for job in store.list_jobs("docs")] == [mine.id]
    found = store.find(mine.id)
    assert found is not None and found.assistant == "docs"


def test_jobs_are_listed_newest_first_with_paging(store: JobStore) -> None:
    ids = [store.create("docs", "resync", JobSpec()).id for _ in range(3)]
    assert [job.id for job in store.list_jobs("docs")] == ids[::-1]
    assert [job.id for job in store.list_jobs("docs", limit=1, offset=1)] == [ids[1]]


def test_a_caller_chosen_id_is_kept(store: JobStore) -> None:
    job = store.create("docs", "upload", JobSpec(files=("faq.md",)), job_id="a" * 32)
    assert store.get("docs", "a" * 32).spec.files == ("faq.md",) == job.spec.files


def test_a_claimed_job_runs_reports_progress_and_finishes_with_its_report(
    store: JobStore,
) -> None:
    job = store.create("docs", "crawl", CRAWL)
    claimed = store.mark_running(job.id, max_attempts=3)
    assert claimed is not None
    assert claimed.status == "running" and claimed.attempts == 1
    assert claimed.started_at is not None
    store.progress(job.id, 7, 20)
    running = store.get("docs", job.id)
    assert (running.progress_done, running.progress_total) == (7, 20)
    report = IngestReport(
        outcomes=[
            DocumentOutcome("https://example.com/help/", "added", 3),
            DocumentOutcome("https://example.com/help/old", "removed", 2),
            DocumentOutcome(
                "https://example.com/help/x.pdf",
                "failed",
                reason="corrupt PDF",
                error_type="ParseError",
            ),
        ],
        chunks_embedded=3,
        seconds=1.5,
        incomplete_sources=["https://example.com/help/"],
    )
    store.finish(job.id, report)
    done = store.get("docs", job.id)
    assert done.status == "succeeded" and done.finished and done.finished_at is not None
    assert done.report == report
    assert done.report is not None and done.report.failures[0].reason == "corrupt PDF"
    # Progress after the end changes nothing, and a finished job is never claimed again.
    store.progress(job.id, 1, 1)
    assert store.get("docs", job.id).progress_done == 7
    assert store.mark_running(job.id, max_attempts=3) is None


def test_a_failed_job_keeps_its_error_and_partial_report(store: JobStore) -> None:
    job = store.create("docs", "url", JobSpec(sources=("https://example.com/a",)))
    store.mark_running(job.id, max_attempts=3)
    partial = IngestReport(
        outcomes=[DocumentOutcome("https://example.com/a", "failed", reason="404")]
    )
    store.fail(job.id, "nothing could be ingested", partial)
    failed = store.get("docs", job.id)
    assert (failed.status, failed.error, failed.report) == (
        "failed",
        "nothing could be ingested",
        partial,
    )


def test_a_job_left_running_by_dead_processes_gives_up_after_max_attempts(
    store: JobStore,
) -> None:
    job = store.create("docs", "crawl", CRAWL)
    # Each claim without an end is a process that died mid-job.
    first = store.mark_running(job.id, max_attempts=2)
    second = store.mark_running(job.id, max_attempts=2)
    assert first is not None and second is not None and second.attempts == 2
    assert store.mark_running(job.id, max_attempts=2) is None
    given_up = store.get("docs", job.id)
    assert given_up.status == "failed" and given_up.attempts == 2
    assert given_up.error is not None and "interrupted 2 times" in given_up.error


def test_a_requeued_job_is_unfinished_and_its_attempt_does_not_count(store: JobStore) -> None:
    job = store.create("docs", "crawl", CRAWL)
    store.mark_running(job.id, max_attempts=1)
    store.requeue(job.id)
    requeued = store.get("docs", job.id)
    assert (requeued.status, requeued.attempts) == ("queued", 0)
    again = store.mark_running(job.id, max_attempts=1)
    assert again is not None and again.attempts == 1


def test_unfinished_lists_queued_and_running_jobs_of_every_assistant_oldest_first(
    store: JobStore,
) -> None:
    queued = store.create("docs", "resync", JobSpec())
    running = store.create("shop", "resync", JobSpec())
    finished = store.create("docs", "resync", JobSpec())
    store.mark_running(running.id, max_attempts=3)
    store.mark_running(finished.id, max_attempts=3)
    store.finish(finished.id, IngestReport())
    assert [job.id for job in store.unfinished()] == [queued.id, running.id]


def test_deleting_an_assistants_jobs_leaves_the_others(store: JobStore) -> None:
    store.create("docs", "resync", JobSpec())
    store.create("docs", "resync", JobSpec())
    other = store.create("shop", "resync", JobSpec())
    assert store.delete_assistant_jobs("docs") == 2
    assert store.list_jobs("docs") == []
    assert store.get("shop", other.id).id == other.id


def test_times_are_read_back_with_their_zone(store: JobStore) -> None:
    job = store.create("docs", "resync", JobSpec())
    claimed = store.mark_running(job.id, max_attempts=3)
    assert claimed is not None and claimed.started_at is not None
    for moment in (store.get("docs", job.id).created_at, claimed.started_at):
        assert moment.tzinfo is not None
        assert abs(moment - datetime.now(UTC)) < timedelta(minutes=5)
