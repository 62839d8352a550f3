"""``assistant serve --workers N``: several API processes on one port, over shared Redis and a
Chroma server, answering from one knowledge base and counting rate limits once."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import child_pids, chroma_server, free_loopback_port, stop

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "examples" / "help-centre" / "site" / "integrations.html"


def _environment(data_dir: Path, **values: str) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ASSISTANT_", "OPENAI_", "ANTHROPIC_"))
    }
    return environment | {"ASSISTANT_DATA_DIR": str(data_dir), "COLUMNS": "200"} | values


def test_several_workers_need_redis_and_a_chroma_server(tmp_path: Path) -> None:
    port = str(free_loopback_port())
    finished = subprocess.run(
        [sys.executable, "-m", "assistant", "serve", "--workers", "2", "--port", port],
        capture_output=True,
        text=True,
        env=_environment(tmp_path / "data"),
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 1
    message = " ".join(finished.stderr.split())
    assert "ASSISTANT_REDIS_URL" in message and "ASSISTANT_CHROMA_URL" in message
    assert "Traceback" not in finished.stderr


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    with chroma_server(tmp_path / "chroma", tmp_path / "chroma.log") as url:
        yield url


@pytest.mark.slow
def test_two_processes_answer_with_sources_and_count_limits_once(
    tmp_path: Path, redis_url: str, chroma_url: str
) -> None:
    admin_key = "test-admin-" + secrets.token_urlsafe(16)
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    environment = _environment(
        tmp_path / "data",
        ASSISTANT_REDIS_URL=redis_url,
        ASSISTANT_CHROMA_URL=chroma_url,
        ASSISTANT_ADMIN_KEY=admin_key,
    )
    command = [sys.executable, "-m", "assistant", "serve", str(PAGE), "--kb", "help"]
    command += ["--workers", "2", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, env=environment, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert len(child_pids(server.pid)) >= 2  # uvicorn's workers under its supervisor
        admin = {"Authorization": f"Bearer {admin_key}"}
        limits = {"limits": {"requests_per_minute": 4}}
        httpx.patch(f"{url}/api/assistants/help", json=limits, headers=admin, timeout=60)
        created = httpx.post(
            f"{url}/api/assistants/help/keys", json={"kind": "secret"}, headers=admin, timeout=60
        )
        created.raise_for_status()
        key = {"Authorization": f"Bearer {created.json()['key']}"}
        statuses = []
        for _ in range(6):
            # A new connection each time, so the kernel hands them to either process.
            response = httpx.post(
                f"{url}/api/assistants/help/chat",
                json={"message": "Which plans include the Slack integration?", "stream": False},
                headers=key,
                timeout=120,
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                answer = response.json()
                assert answer["citations"], answer
                assert any("integrations" in c["url"] for c in answer["citations"])
        assert statuses == [200, 200, 200, 200, 429, 429], log.read_text()[-3000:]
    finally:
        stop(server)
    assert "Traceback" not in log.read_text()
