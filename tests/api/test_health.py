"""Liveness, readiness (with a database that is gone, and Redis), metrics, request body limits
and the answer to an unexpected error, against real servers."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import Request

from assistant.api.prometheus import ApiMetrics
from assistant.chat.events import DoneEvent, ErrorEvent, Usage
from tests.api.conftest import ApiServer, unique_name
from tests.api.test_auth import assert_problem
from tests.support.servers import free_loopback_port


def test_healthz_and_readyz_answer(api_client: httpx.Client) -> None:
    assert api_client.get("/healthz").json() == {"status": "ok"}
    ready = api_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "chroma": "ok"}


def test_readyz_says_which_dependency_is_gone(
    make_api_server: Callable[..., ApiServer],
) -> None:
    closed = free_loopback_port()
    server = make_api_server(
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{closed}/assistant"
    )
    with server.admin() as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "unavailable", "chroma": "ok"}
        assert_problem(client.get("/api/assistants"), 503, "database_unavailable")


@pytest.mark.integration
def test_readyz_checks_redis_when_configured(
    make_api_server: Callable[..., ApiServer], redis_url: str
) -> None:
    with make_api_server(redis_url=redis_url).client() as client:
        assert client.get("/readyz").json()["redis"] == "ok"
    missing = f"redis://127.0.0.1:{free_loopback_port()}/0"
    with make_api_server(redis_url=missing).client() as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "database": "ok",
        "chroma": "ok",
        "redis": "unavailable",
    }


def test_metrics_need_the_admin_key_and_time_requests_per_route(
    api_server: ApiServer, api_client: httpx.Client, admin_client: httpx.Client
) -> None:
    name = api_server.create_assistant()
    assert admin_client.get(f"/api/assistants/{name}").status_code == 200
    assert api_client.get("/healthz").status_code == 200
    assert_problem(api_client.get("/metrics"), 401, "authentication_failed")
    scraped = admin_client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    bucket = (
        'assistant_http_request_duration_seconds_bucket{le="0.5",method="GET",'
        'route="/api/assistants/{name}",status="200"}'
    )
    assert bucket in text
    assert 'assistant_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/metrics",status="401"' in text
    assert name not in text  # paths are recorded by their template only
    assert "assistant_token_cache_hit_ratio" in text


def test_turn_metrics_count_tokens_cost_and_errors() -> None:
    metrics = ApiMetrics()
    done = DoneEvent(
        usage=Usage(input_tokens=120, output_tokens=30),
        provider="openai",
        model="gpt-4o-mini",
        cost_usd=0.002,
        outcome="answered",
    )
    metrics.observe_turn("shop", done)
    metrics.observe_turn("shop", done)
    metrics.observe_stream_error("shop", ErrorEvent("ProviderUnavailableError", "down"))
    text = metrics.render().decode()
    labels = 'assistant="shop",direction="input",provider="openai"'
    assert f"assistant_provider_tokens_total{{{labels}}} 240.0" in text
    assert (
        'assistant_chat_turns_total{assistant="shop",outcome="answered",provider="openai"} 2.0'
        in text
    )
    assert 'assistant_chat_cost_usd_total{assistant="shop",provider="openai"} 0.004' in text
    assert (
        'assistant_provider_errors_total{assistant="shop",code="ProviderUnavailableError"} 1.0'
        in text
    )
    # Registries are per application: another one starts from zero.
    assert "assistant_provider_tokens_total{" not in ApiMetrics().render().decode()


def _chunks(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"name": "x", "pad": "'
    for _ in range(size // chunk):
        yield b"a" * chunk
    yield b'"}'


def test_bodies_over_the_limit_are_refused_unless_the_route_allows_more(
    make_api_server: Callable[..., ApiServer],
) -> None:
    server = make_api_server()

    @server.app.post("/test-upload", max_body_size=4 * 1024 * 1024)
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    big = b"a" * (2 * 1024 * 1024)
    with server.admin() as client:
        declared = client.post(
            "/api/assistants", content=big, headers={"Content-Type": "application/json"}
        )
        assert_problem(declared, 413, "payload_too_large")
        streamed = client.post(
            "/api/assistants",
            content=_chunks(2 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )
        assert_problem(streamed, 413, "payload_too_large")
        assert client.post("/test-upload", content=big).json() == {"size": len(big)}
        assert_problem(client.post("/test-upload", content=big * 3), 413, "payload_too_large")
        small = client.post("/api/assistants", json={"name": unique_name()})
        assert small.status_code == 201


def test_unexpected_errors_are_a_500_without_details(
    make_api_server: Callable[..., ApiServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_api_server()

    @server.app.get("/test-broken")
    async def broken() -> None:
        raise RuntimeError("connection string postgres://user:hunter2@db/x")

    with caplog.at_level(logging.ERROR, logger="assistant.api.problems"), server.admin() as client:
        response = client.get("/test-broken?token=abc")
    assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    records = [r for r in caplog.records if r.name == "assistant.api.problems"]
    assert len(records) == 1 and records[0].exc_info is not None
    logged = caplog.text
    assert "GET /test-broken" in logged
    assert server.admin_key is not None and server.admin_key not in logged
    assert "token=abc" not in logged


@pytest.mark.integration
@pytest.mark.slow
def test_the_serve_command_serves_loopback_and_refuses_other_hosts_without_admin_key(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(tmp_path / "data"), "ASSISTANT_ADMIN_KEY": ""}
    command = [sys.executable, "-m", "assistant", "serve"]
    refused = subprocess.run(
        [*command, "--host", "0.0.0.0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert "ASSISTANT_ADMIN_KEY" in refused.stderr and "Traceback" not in refused.stderr

    port = free_loopback_port()
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        # No admin key: this machine is the admin.
        assert httpx.get(f"http://127.0.0.1:{port}/api/assistants").json() == {"assistants": []}
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}" in errors
