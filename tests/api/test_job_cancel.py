"""``DELETE …/jobs/{id}`` over HTTP and through the clients: a running crawl stops early and
keeps its pages, a finished job answers ``409 conflict``, another assistant's job ``404``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assistant.client import ApiConflictError, ApiNotFoundError, AsyncClient, Client
from tests.api.conftest import ApiServer
from tests.api.test_sources import assert_problem, sources_of, wait_for_job
from tests.jobs.test_queue import SlowSite, write_pages


def _wait_for_progress(admin: httpx.Client, name: str, job_id: str, done: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        job = admin.get(f"/api/assistants/{name}/jobs/{job_id}").json()
        if job["progress_done"] >= done:
            return
        assert time.monotonic() < deadline, f"the job made no progress: {job}"
        time.sleep(0.1)


def test_a_running_job_is_cancelled_over_http_and_keeps_its_pages(
    make_api_server: Callable[..., ApiServer], tmp_path: Path
) -> None:
    server = make_api_server(fetch_allow_hosts=("127.0.0.1",))
    name = server.create_assistant()
    other = server.create_assistant()
    names = write_pages(tmp_path / "site", 12)
    links = "".join(f'<li><a href="{n}">{n}</a></li>' for n in names)
    (tmp_path / "site" / "index.html").write_text(
        f"<html><body><main><h1>Index</h1><ul>{links}</ul></main></body></html>", "utf-8"
    )
    with SlowSite(tmp_path / "site", delay=0.4) as site, server.admin() as admin:
        created = admin.post(
            f"/api/assistants/{name}/sources/upload",
            files=[("files", ("a.md", b"# A\n\nAlpha page about refunds.\n", "text/markdown"))],
        )
        assert created.status_code == 202, created.text
        assert wait_for_job(admin, name, created.json()["id"])["status"] == "succeeded"
        finished = created.json()["id"]
        crawl = admin.post(
            f"/api/assistants/{name}/sources",
            json={"kind": "crawl", "url": site.url("index.html")},
        )
        assert crawl.status_code == 202, crawl.text
        job_id = crawl.json()["id"]
        _wait_for_progress(admin, name, job_id, 1)
        path = f"/api/assistants/{name}/jobs/{job_id}"
        assert_problem(admin.delete(f"/api/assistants/{other}/jobs/{job_id}"), 404, "not_found")
        cancelled = admin.delete(path)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["finished_at"] is not None
        ended = wait_for_job(admin, name, job_id)
        assert_problem(admin.delete(path), 409, "conflict")
        assert_problem(admin.delete(f"/api/assistants/{name}/jobs/{finished}"), 409, "conflict")
        assert_problem(admin.delete(f"/api/assistants/{name}/jobs/nope"), 404, "not_found")
        kept = sources_of(admin, name)
    assert ended["status"] == "cancelled"
    assert ended["progress_done"] < len(names)
    # Cancelling removes nothing ingested before; the crawl stopped short of its pages (those
    # it had fetched but not yet stored are dropped, as after any interruption).
    assert kept["upload://a.md"]["chunks"] > 0
    crawled = kept.get(site.url("index.html"), {"documents": 0})
    assert crawled["documents"] < len(names) + 1


async def test_the_clients_cancel_a_queued_job(
    make_api_server: Callable[..., ApiServer], tmp_path: Path
) -> None:
    server = make_api_server(fetch_allow_hosts=("127.0.0.1",))
    name = server.create_assistant()
    names = write_pages(tmp_path / "site", 8)
    with (
        SlowSite(tmp_path / "site", delay=0.3) as site,
        Client(server.url, server.admin_key) as bot,
    ):
        first = bot.ingest([site.url(n) for n in names], kb=name, wait=False).pending
        second = bot.ingest([site.url(names[0])], kb=name, wait=False).pending
        job = bot.cancel_job(first[-1].id, kb=name)
        assert job.status == "cancelled" and job.finished
        async with AsyncClient(server.url, server.admin_key) as remote:
            queued = await remote.cancel_job(second[0].id, kb=name)
            assert queued.status == "cancelled"
            with pytest.raises(ApiConflictError):
                await remote.cancel_job(second[0].id, kb=name)
        with pytest.raises(ApiNotFoundError):
            bot.cancel_job("nope", kb=name)
