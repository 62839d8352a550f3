"""Faults on the production topology (``docker/compose.yaml``) run as real processes: PostgreSQL,
Redis, a Chroma server, two API replicas and two workers (``tests.support.topology``).

The smoke test runs in the default suite: one chat through each replica (a widget with the
public key, a server with the secret key), and an ingest whose worker is SIGKILLed mid-job and
finished by the other worker with the clean run's chunks. The ``fault`` tests (``pytest -m
fault``) inject each fault of ``tests.support.fault_scenarios`` under concurrent streamed chats
and judge it: no chat hung, no chunk lost or duplicated, no half-written turn, and no failed
chat where none may fail. ``bench/faults.py`` prints the same runs as a table.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.chat.fake_openai import FakeOpenAIServer
from tests.support.fault_load import (
    SITE_KB,
    Setup,
    Visitor,
    chunk_difference,
    chunks_of,
    prepare,
    serve_site,
    start_ingest,
    stream_chat,
    wait_for_job,
)
from tests.support.fault_scenarios import FAULTS, provider_answers, run_fault
from tests.support.topology import Topology, running_topology

PAGES = 6


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOpenAIServer]:
    """The fake OpenAI-compatible provider the ``llm`` assistant answers with."""
    with FakeOpenAIServer() as server:
        provider_answers(server)
        yield server


@pytest.fixture(scope="module")
def topology(provider: FakeOpenAIServer) -> Iterator[Topology]:
    """The whole topology, once per module (every test leaves it whole for the next)."""
    environment = {"OPENAI_BASE_URL": provider.url, "OPENAI_API_KEY": "sk-faults"}
    with running_topology(environment=environment) as running:
        yield running


@pytest.fixture(scope="module")
def setup(topology: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The help site served, the assistants made and the clean ingest done."""
    with serve_site(tmp_path_factory.mktemp("site"), PAGES) as site:
        # The provider fault adds the ``llm`` assistant when it runs.
        yield prepare(topology, site, PAGES, assistants=[SITE_KB])


@pytest.fixture
def whole(topology: Topology, setup: Setup, provider: FakeOpenAIServer) -> Topology:
    """The topology with every process running (a failed test may have left one down)."""
    del setup
    provider_answers(provider)
    for name, service in topology.services.items():
        if not service.running:
            topology.start(name)
    return topology


def _ingesting_worker(topology: Topology, job_id: str) -> str:
    running = [name for name in topology.worker_names if job_id in topology.log(name, 400)]
    assert running, "no worker log names the job"
    return running[-1]


@pytest.mark.integration
@pytest.mark.slow
async def test_smoke_chats_through_each_replica_and_a_killed_workers_job_finishes(
    whole: Topology, setup: Setup
) -> None:
    topology = whole
    keys = setup.keys[SITE_KB]
    async with httpx.AsyncClient(timeout=60) as client:
        for api, public in zip(topology.api_names, (True, False), strict=False):
            visitor = Visitor(key=keys.public if public else keys.secret, public=public)
            result = await stream_chat(
                client, topology.api_url(api), SITE_KB, visitor, "How do I reset my password?"
            )
            assert result.outcome == "ok", (api, result, topology.log(api))
            assert "password" in result.text.lower()
    with topology.admin_client() as admin:
        admin.post("/api/assistants", json={"name": "smoke"}).raise_for_status()
    setup.site.delay = 0.5
    try:
        job_id = start_ingest(topology, "smoke", setup.site, setup.pages)
        await asyncio.to_thread(wait_for_job, topology, "smoke", job_id, 120.0, 1)
        victim = _ingesting_worker(topology, job_id)
        topology.kill(victim)
    finally:
        setup.site.delay = 0.0
    job = await asyncio.to_thread(wait_for_job, topology, "smoke", job_id, 120.0)
    survivor = next(name for name in topology.worker_names if name != victim)
    assert job["status"] == "succeeded", (job, topology.log(survivor))
    assert job["attempts"] == 2, job
    assert job_id in topology.log(survivor, 400)
    lost, extra = chunk_difference(setup.baseline, chunks_of(topology, "smoke"))
    assert (lost, extra) == (0, 0)


@pytest.mark.fault
@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAULTS))
async def test_a_fault_under_load_hangs_nothing_and_loses_or_corrupts_nothing(
    whole: Topology, setup: Setup, provider: FakeOpenAIServer, name: str
) -> None:
    if name == "postgres" and "postgres" not in whole.services:
        pytest.skip(
            "PostgreSQL is the shared ASSISTANT_TEST_POSTGRES_URL server: not ours to restart"
        )
    outcome = await run_fault(whole, setup, FAULTS[name], clients=4, provider=provider)
    if outcome.problems():
        pytest.fail(json.dumps(outcome.summary(), indent=1))
    if name == "provider":
        # Answered by the provider when it was healthy, by the extractive fallback meanwhile.
        providers = outcome.summary()["providers"]
        assert providers.get("extractive") and len(providers) == 2, providers
