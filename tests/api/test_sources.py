"""Sources and ingestion jobs through the HTTP API, on a real uvicorn server with the
in-process job queue: pages, crawls, resync, uploads (and what is refused before any job is
queued), deletion, scoping by assistant, and jobs that survive a restart."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from pydantic import SecretStr

from assistant.api import create_app
from assistant.api.routes.sources import safe_file_name
from assistant.core import Assistant
from assistant.database.engine import Database, database_url
from assistant.jobs.queue import QUEUE_NAME
from assistant.jobs.store import JobSpec, JobStore
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings
from tests.api.conftest import ApiServer, serving
from tests.jobs.test_queue import Workers
from tests.support.servers import StaticSite

MAX_FILE_BYTES = 4096
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _page(title: str, text: str, links: tuple[str, ...] = ()) -> str:
    anchors = "".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    return (
        f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1>"
        f"<p>{text}</p><ul>{anchors}</ul></main></body></html>"
    )


def _start_server(
    stack: ExitStack,
    data_dir: Path,
    encoder: TransformerEncoder,
    key: str,
    redis_url: str | None = None,
) -> ApiServer:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        admin_key=SecretStr(key),
        fetch_allow_hosts=("127.0.0.1",),
        max_file_bytes=MAX_FILE_BYTES,
        redis_url=SecretStr(redis_url) if redis_url else None,
    )
    core = Assistant(settings, encoder=encoder)
    stack.callback(core.close)
    app = create_app(settings, core=core)
    opened = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The job queue is closed on the server's event loop (a Redis pool belongs to it),
        # and before the assistant its jobs use goes away.
        async with opened(app):
            try:
                yield
            finally:
                queue = getattr(app.state, "job_queue", None)
                if queue is not None:
                    await queue.close()

    app.router.lifespan_context = lifespan
    url = stack.enter_context(serving(app))
    return ApiServer(url, app, core, key)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, encoder: TransformerEncoder, admin_key: str
) -> Iterator[ApiServer]:
    """A server that may fetch from loopback sites and takes files up to 4 KiB."""
    with ExitStack() as stack:
        yield _start_server(stack, tmp_path_factory.mktemp("sources") / "data", encoder, admin_key)


@pytest.fixture
def admin(server: ApiServer) -> Iterator[httpx.Client]:
    with server.admin() as client:
        yield client


def wait_for_job(client: httpx.Client, name: str, job_id: str, timeout: float = 60) -> Any:
    """Poll the job until it has finished; its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/assistants/{name}/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"the job did not finish: {job}"
        time.sleep(0.2)


def sources_of(client: httpx.Client, name: str) -> dict[str, Any]:
    response = client.get(f"/api/assistants/{name}/sources")
    assert response.status_code == 200, response.text
    return {source["source"]: source for source in response.json()["sources"]}


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


# --- web sources -------------------------------------------------------------------------------


def test_a_page_is_ingested_in_the_background_and_reported(
    server: ApiServer, admin: httpx.Client, tmp_path: Path
) -> None:
    name = server.create_assistant()
    (tmp_path / "refunds.html").write_text(
        _page("Refunds", "Refunds are paid within 14 days to the original card."), "utf-8"
    )
    with StaticSite(tmp_path) as site:
        response = admin.post(
            f"/api/assistants/{name}/sources",
            json={"kind": "url", "url": site.url + "refunds.html"},
        )
        assert response.status_code == 202, response.text
        queued = response.json()
        assert queued["kind"] == "url" and queued["status"] in ("queued", "running", "succeeded")
        assert queued["sources"] == [site.url + "refunds.html"]
        job = wait_for_job(admin, name, queued["id"])
    assert job["status"] == "succeeded", job
    assert (job["progress_done"], job["progress_total"], job["attempts"]) == (1, 1, 1)
    assert job["started_at"] and job["finished_at"] and job["error"] is None
    [outcome] = job["report"]["outcomes"]
    assert (outcome["url"], outcome["status"]) == (site.url + "refunds.html", "added")
    assert job["report"]["counts"]["added"] == 1
    assert sources_of(admin, name)[site.url + "refunds.html"]["chunks"] == outcome["chunks"] > 0
    listed = admin.get(f"/api/assistants/{name}/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [queued["id"]]


def test_a_crawl_then_a_resync_skips_unchanged_pages_and_follows_changes(
    server: ApiServer, admin: httpx.Client, tmp_path: Path
) -> None:
    name = server.create_assistant()
    pages = ("plans.html", "billing.html", "security.html")
    (tmp_path / "index.html").write_text(_page("Help", "Start here.", pages), "utf-8")
    for page in pages:
        text = f"All about {page[:-5]}: " + " ".join(f"{page[:-5]} detail {n}." for n in range(30))
        (tmp_path / page).write_text(_page(page[:-5].title(), text), "utf-8")
    with StaticSite(tmp_path) as site:
        response = admin.post(
            f"/api/assistants/{name}/sources",
            json={"kind": "crawl", "url": site.url, "max_pages": 20, "max_depth": 2},
        )
        assert response.status_code == 202, response.text
        crawl = wait_for_job(admin, name, response.json()["id"])
        assert crawl["status"] == "succeeded", crawl
        assert crawl["report"]["counts"]["added"] == 4
        # One page changes and a new one appears, linked from the index.
        (tmp_path / "billing.html").write_text(
            _page("Billing", "Invoices are now sent on the first working day."), "utf-8"
        )
        (tmp_path / "status.html").write_text(_page("Status", "All systems normal."), "utf-8")
        (tmp_path / "index.html").write_text(
            _page("Help", "Start here.", (*pages, "status.html")), "utf-8"
        )
        # Last-Modified has a one-second resolution: date the edits visibly later, as a site
        # edited after its last crawl would be.
        later = time.time() + 10
        for edited in ("billing.html", "index.html"):
            os.utime(tmp_path / edited, (later, later))
        response = admin.post(f"/api/assistants/{name}/sources/resync")
        assert response.status_code == 202, response.text
        assert response.json()["kind"] == "resync"
        resync = wait_for_job(admin, name, response.json()["id"])
    assert resync["status"] == "succeeded", resync
    statuses = {o["url"].rsplit("/", 1)[-1]: o["status"] for o in resync["report"]["outcomes"]}
    assert statuses == {
        "": "updated",
        "plans.html": "unchanged",
        "billing.html": "updated",
        "security.html": "unchanged",
        "status.html": "added",
    }
    [source] = sources_of(admin, name).values()
    assert (source["source"], source["documents"]) == (site.url, 5)


def test_a_source_is_deleted_with_its_chunks(
    server: ApiServer, admin: httpx.Client, tmp_path: Path
) -> None:
    name = server.create_assistant()
    (tmp_path / "a.html").write_text(_page("A", "Alpha text about exports."), "utf-8")
    with StaticSite(tmp_path) as site:
        url = site.url + "a.html"
        response = admin.post(f"/api/assistants/{name}/sources", json={"kind": "url", "url": url})
        assert wait_for_job(admin, name, response.json()["id"])["status"] == "succeeded"
    chunks = sources_of(admin, name)[url]["chunks"]
    response = admin.delete(f"/api/assistants/{name}/sources", params={"source": url})
    assert response.status_code == 200, response.text
    assert response.json() == {"removed_chunks": chunks}
    assert sources_of(admin, name) == {}
    assert_problem(
        admin.delete(f"/api/assistants/{name}/sources", params={"source": url}), 404, "not_found"
    )


def test_urls_that_cannot_be_ingested_are_refused_before_a_job_is_queued(
    server: ApiServer, admin: httpx.Client
) -> None:
    name = server.create_assistant()
    path = f"/api/assistants/{name}/sources"
    # A private address (the guard's refusal), a sitemap without a sitemap's name, a bad kind.
    assert_problem(
        admin.post(path, json={"kind": "url", "url": "http://10.1.2.3/"}), 400, "invalid_input"
    )
    assert_problem(
        admin.post(path, json={"kind": "sitemap", "url": "https://example.com/pages.xml"}),
        400,
        "invalid_input",
    )
    assert_problem(
        admin.post(path, json={"kind": "ftp", "url": "ftp://example.com/"}), 422, "invalid_input"
    )
    assert admin.get(f"/api/assistants/{name}/jobs").json() == {"jobs": []}


# --- uploads -----------------------------------------------------------------------------------


def test_markdown_and_html_files_are_uploaded_and_ingested(
    server: ApiServer, admin: httpx.Client
) -> None:
    name = server.create_assistant()
    files: list[Any] = [
        ("files", ("../../notes/faq.md", b"# FAQ\n\nPasswords reset from the sign-in page.\n")),
        (
            "files",
            ("guide.html", _page("Guide", "Exports run nightly at two.").encode(), "text/html"),
        ),
    ]
    response = admin.post(f"/api/assistants/{name}/sources/upload", files=files)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["kind"], queued["files"]) == ("upload", ["faq.md", "guide.html"])
    job = wait_for_job(admin, name, queued["id"])
    assert job["status"] == "succeeded", job
    assert job["report"]["counts"]["added"] == 2
    assert set(sources_of(admin, name)) == {"upload://faq.md", "upload://guide.html"}
    # The files were kept only until the job finished.
    assert not (server.core.settings.data_dir / "uploads" / queued["id"]).exists()


@pytest.mark.parametrize(
    ("files", "status", "code"),
    [
        # A PNG is not a document, whatever its name says.
        ([("files", ("logo.md", PNG))], 415, "unsupported_media_type"),
        # One acceptable file does not carry an unacceptable one.
        (
            [("files", ("ok.md", b"# Fine\n\nText.\n")), ("files", ("big.txt", b"x" * 5000))],
            413,
            "payload_too_large",
        ),
        ([("files", ("empty.md", b"  \n"))], 400, "invalid_input"),
        ([("note", (None, b"just a form field"))], 400, "invalid_input"),
    ],
    ids=["unsupported", "too-large", "empty", "no-files"],
)
def test_refused_uploads_queue_nothing_and_leave_no_file(
    server: ApiServer, admin: httpx.Client, files: list[Any], status: int, code: str
) -> None:
    name = server.create_assistant()
    response = admin.post(f"/api/assistants/{name}/sources/upload", files=files)
    assert_problem(response, status, code)
    assert admin.get(f"/api/assistants/{name}/jobs").json() == {"jobs": []}
    uploads = server.core.settings.data_dir / "uploads"
    assert not uploads.exists() or not any(folder.iterdir() for folder in uploads.iterdir())


def test_an_upload_must_be_a_whole_multipart_body(server: ApiServer, admin: httpx.Client) -> None:
    name = server.create_assistant()
    path = f"/api/assistants/{name}/sources/upload"
    assert_problem(admin.post(path, json={"files": ["faq.md"]}), 415, "unsupported_media_type")
    truncated = b'--cut\r\nContent-Disposition: form-data; name="files"; filename="a.md"\r\n\r\n# A'
    response = admin.post(
        path, content=truncated, headers={"Content-Type": "multipart/form-data; boundary=cut"}
    )
    assert_problem(response, 400, "invalid_input")
    assert admin.get(f"/api/assistants/{name}/jobs").json() == {"jobs": []}


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Price list (2024).md", "Price list _2024_.md"),
        (".env", "env"),
        ("..", "upload"),
        ("a" * 300 + ".md", "a" * 117 + ".md"),
        ("résumé.pdf", "résumé.pdf"),
    ],
)
def test_uploaded_file_names_are_made_safe(sent: str, stored: str) -> None:
    assert safe_file_name(sent) == stored


# --- access and restarts -----------------------------------------------------------------------


def test_jobs_and_sources_belong_to_their_assistant(server: ApiServer, admin: httpx.Client) -> None:
    mine = server.create_assistant()
    other = server.create_assistant()
    job = JobStore(server.core.database).create(mine, "resync", JobSpec())
    assert admin.get(f"/api/assistants/{mine}/jobs/{job.id}").status_code == 200
    assert_problem(admin.get(f"/api/assistants/{other}/jobs/{job.id}"), 404, "not_found")
    other_key = server.create_key(other)
    with server.client(other_key) as client:
        assert_problem(
            client.get(f"/api/assistants/{mine}/jobs/{job.id}"), 403, "permission_denied"
        )
        assert client.get(f"/api/assistants/{other}/jobs").json() == {"jobs": []}
    with server.client() as anonymous:
        assert_problem(anonymous.get(f"/api/assistants/{mine}/jobs"), 401, "authentication_failed")
        response = anonymous.post(
            f"/api/assistants/{mine}/sources/upload", files=[("files", ("a.md", b"# A\n"))]
        )
        assert_problem(response, 401, "authentication_failed")


def test_jobs_left_unfinished_by_a_stopped_server_run_after_a_restart(
    tmp_path: Path, encoder: TransformerEncoder, admin_key: str
) -> None:
    data_dir = tmp_path / "data"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.html").write_text(_page("A", "Alpha: exports are nightly."), "utf-8")
    (tmp_path / "site" / "b.html").write_text(_page("B", "Beta: backups are hourly."), "utf-8")
    with StaticSite(tmp_path / "site") as site, ExitStack() as stack:
        # What the previous process left: a job it never started and one it died running.
        database = Database.open(database_url(None, data_dir))
        store = JobStore(database)
        queued = store.create("docs", "url", JobSpec(sources=(site.url + "a.html",)))
        running = store.create("docs", "url", JobSpec(sources=(site.url + "b.html",)))
        store.mark_running(running.id, max_attempts=3)
        database.close()
        server = _start_server(stack, data_dir, encoder, admin_key)
        with server.admin() as admin:
            first = wait_for_job(admin, "docs", queued.id)
            second = wait_for_job(admin, "docs", running.id)
            assert set(sources_of(admin, "docs")) == {site.url + "a.html", site.url + "b.html"}
    assert (first["status"], first["attempts"]) == ("succeeded", 1)
    assert (second["status"], second["attempts"]) == ("succeeded", 2)


@pytest.mark.integration
@pytest.mark.slow
def test_with_redis_the_api_queues_jobs_for_a_worker_process(
    tmp_path: Path, encoder: TransformerEncoder, admin_key: str, private_redis_url: str
) -> None:
    url = private_redis_url
    redis_client = redis.Redis.from_url(url)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.html").write_text(_page("A", "Alpha: exports are nightly."), "utf-8")
    workers = Workers(tmp_path / "data", url, tmp_path)
    try:
        with StaticSite(tmp_path / "site") as site, ExitStack() as stack:
            server = _start_server(stack, tmp_path / "data", encoder, admin_key, redis_url=url)
            with server.admin() as admin:
                response = admin.post(
                    "/api/assistants/docs/sources", json={"kind": "url", "url": site.url + "a.html"}
                )
                assert response.status_code == 202, response.text
                job_id = response.json()["id"]
                # Nothing in this process runs it: it waits in Redis for a worker.
                time.sleep(1)
                assert admin.get(f"/api/assistants/docs/jobs/{job_id}").json()["status"] == "queued"
                assert redis_client.zcard(QUEUE_NAME) == 1
                workers.start()
                job = wait_for_job(admin, "docs", job_id)
        assert job["status"] == "succeeded", workers.log(0)
        assert job["report"]["counts"]["added"] == 1
    finally:
        workers.stop_all()
        redis_client.close()
