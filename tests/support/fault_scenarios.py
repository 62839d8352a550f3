"""The faults injected into a running topology, and one run of each under load.

:func:`run_fault` starts an ingest (for the faults that concern one), drives concurrent
streamed chats, injects the fault once the ingest is under way (or after a short warm-up),
keeps chatting a little after the faulty part is back, then judges: every chat's outcome, the
ingest's chunks against the clean run, and the turns stored in PostgreSQL. The benchmark
(``bench/faults.py``) prints these; the fault tests assert on them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.chat.fake_openai import Drop, Fail, FakeOpenAIServer, Stall, Stream
from tests.support.fault_load import (
    LLM_KB,
    SITE_KB,
    ChatResult,
    LoadRun,
    Setup,
    add_assistants,
    chat_load,
    chunk_difference,
    chunks_of,
    start_ingest,
    turn_problems,
    wait_for_job,
)
from tests.support.topology import Topology

__all__ = ["FAULTS", "Fault", "FaultContext", "FaultOutcome", "provider_answers", "run_fault"]

PROVIDER_ANSWER = Stream(("The answer is ", "in the guide [1]."), prompt_tokens=50)
"""What the fake provider streams when it is healthy."""


def provider_answers(provider: FakeOpenAIServer) -> None:
    """Have the fake provider answer every request normally."""
    provider.script(PROVIDER_ANSWER)


@dataclass
class FaultContext:
    """What an injection may need: the ingest's job (if any) and the fake provider."""

    kb: str | None = None
    job_id: str | None = None
    provider: FakeOpenAIServer | None = None
    notes: list[str] = field(default_factory=list)


Inject = Callable[[Topology, FaultContext], None]


def _kill_and_restart(name: str, down_seconds: float, *, kill: bool = True) -> Inject:
    def inject(topology: Topology, context: FaultContext) -> None:
        if kill:
            topology.kill(name)
        else:
            topology.stop(name)
        time.sleep(down_seconds)
        started = time.monotonic()
        topology.start(name)
        context.notes.append(f"{name} back after {time.monotonic() - started:.1f} s")

    return inject


def _kill_the_ingesting_worker(topology: Topology, context: FaultContext) -> None:
    """SIGKILL the worker that runs the job (its log names the job), then start it again."""
    assert context.job_id is not None
    running = [
        name
        for name in topology.worker_names
        if context.job_id in topology.log(name, lines=400) and topology.services[name].running
    ]
    victim = running[-1] if running else topology.worker_names[0]
    topology.kill(victim)
    context.notes.append(f"killed {victim}")
    topology.start(victim)


def _provider_trouble(topology: Topology, context: FaultContext) -> None:
    """429s, then 500s, then answers that stall and connections cut mid-stream, then health."""
    del topology
    provider = context.provider
    assert provider is not None
    phases: list[tuple[Any, float]] = [
        (Fail(429, "Rate limit reached", "rate_limit_exceeded", (("retry-after", "0"),)), 3.0),
        (Fail(500), 3.0),
        (Stall(3.0), 4.0),
        (Drop(("The answer ",)), 3.0),
    ]
    for behaviour, seconds in phases:
        provider.script(behaviour)
        time.sleep(seconds)
    provider_answers(provider)


@dataclass(frozen=True)
class Fault:
    """One fault: what it does and what a pass means."""

    name: str
    description: str
    inject: Inject
    ingest: bool = False
    kb: str = SITE_KB
    failures_allowed: bool = True
    """False where every chat must succeed (Redis is a cache: losing it fails nothing)."""


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "redis",
            "Redis SIGKILLed mid-chat, back 2 s later",
            _kill_and_restart("redis", 2.0),
            failures_allowed=False,
        ),
        Fault(
            "worker",
            "the worker running an ingest SIGKILLed",
            _kill_the_ingesting_worker,
            ingest=True,
            failures_allowed=False,
        ),
        Fault("api", "API replica api-0 SIGKILLed mid-stream", _kill_and_restart("api-0", 1.0)),
        Fault(
            "chroma",
            "Chroma server SIGKILLed mid-chat and mid-ingest, back 1 s later",
            _kill_and_restart("chroma", 1.0),
            ingest=True,
        ),
        Fault(
            "postgres",
            "PostgreSQL restarted (fast shutdown) mid-chat and mid-ingest",
            _kill_and_restart("postgres", 1.0, kill=False),
            ingest=True,
        ),
        Fault(
            "provider",
            "provider answers 429, 500, stalls and cut streams for 13 s",
            _provider_trouble,
            kb=LLM_KB,
        ),
    )
}


@dataclass
class FaultOutcome:
    """A fault's run, judged."""

    fault: str
    description: str
    chats: list[ChatResult]
    job: dict[str, Any] | None = None
    lost_chunks: int = 0
    extra_chunks: int = 0
    turn_problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    recovered_at: float = float("inf")
    """When the faulty part was back (``time.monotonic()``)."""

    @property
    def after_recovery(self) -> list[ChatResult]:
        """The chats sent once the faulty part was back."""
        return [chat for chat in self.chats if chat.started >= self.recovered_at]

    def count(self, *outcomes: str) -> int:
        """How many chats ended in one of ``outcomes``."""
        return sum(1 for chat in self.chats if chat.outcome in outcomes)

    @property
    def lost_or_corrupt(self) -> int:
        """Lost or extra chunks, corrupt streams and bad turns, together."""
        return (
            self.lost_chunks
            + self.extra_chunks
            + self.count("corrupt")
            + len(self.turn_problems)
            + (1 if self.job is not None and self.job["status"] != "succeeded" else 0)
        )

    def problems(self) -> list[str]:
        """Where the run misses the goal (empty: it meets it): no chat succeeded, a chat hung,
        data was lost or corrupt, or a chat failed where none may."""
        failed = self.count("clean_error", "connection_error")
        found = []
        if self.count("ok") == 0:
            found.append("no chat succeeded")
        if self.count("hung"):
            found.append(f"{self.count('hung')} chat(s) hung")
        if self.lost_or_corrupt:
            found.append(f"{self.lost_or_corrupt} lost or corrupt")
        if failed and not FAULTS[self.fault].failures_allowed:
            found.append(f"{failed} chat(s) failed where none may")
        after = self.after_recovery
        if not any(chat.outcome == "ok" for chat in after):
            found.append("no chat succeeded once the faulty part was back")
        elif any(chat.outcome != "ok" for chat in after):
            failed_after = sum(chat.outcome != "ok" for chat in after)
            found.append(f"{failed_after} chat(s) failed once the faulty part was back")
        return found

    def summary(self) -> dict[str, Any]:
        """The outcome as JSON-ready numbers."""
        return {
            "fault": self.fault,
            "description": self.description,
            "chats": len(self.chats),
            "ok": self.count("ok"),
            "failed_clean": self.count("clean_error", "connection_error"),
            "hung": self.count("hung"),
            "corrupt_streams": self.count("corrupt"),
            "retried_on_other_replica": sum(chat.retried for chat in self.chats),
            "after_recovery": len(self.after_recovery),
            "ok_after_recovery": sum(chat.outcome == "ok" for chat in self.after_recovery),
            "failure_kinds": dict(
                Counter(f"{c.outcome}: {_kind(c.detail)}" for c in self.chats if c.outcome != "ok")
            ),
            "providers": dict(Counter(c.detail for c in self.chats if c.outcome == "ok")),
            "job": {key: self.job.get(key) for key in ("status", "attempts", "error")}
            if self.job
            else None,
            "lost_chunks": self.lost_chunks,
            "extra_chunks": self.extra_chunks,
            "turn_problems": self.turn_problems,
            "lost_or_corrupt": self.lost_or_corrupt,
            "notes": self.notes,
            "problems": self.problems(),
            "seconds": round(self.seconds, 1),
        }


def _kind(detail: str) -> str:
    return re.sub(r"\d{4,}", "N", detail)


async def run_fault(
    topology: Topology,
    setup: Setup,
    fault: Fault,
    *,
    clients: int = 4,
    provider: FakeOpenAIServer | None = None,
    warmup_seconds: float = 2.0,
    after_seconds: float = 3.0,
    page_delay: float = 0.4,
) -> FaultOutcome:
    """Run ``fault`` once under load (see the module) and judge it."""
    started = time.monotonic()
    context = FaultContext(provider=provider)
    log_offsets = _log_sizes(topology)
    if fault.kb not in setup.keys:
        await asyncio.to_thread(add_assistants, topology, setup, [fault.kb])
    if fault.ingest:
        # Slow pages: the ingest is still under way when the fault hits.
        setup.site.delay = page_delay
        context.kb = f"{fault.name}-{int(time.time() * 1000) % 100_000}"
        await asyncio.to_thread(_create_like_site, topology, context.kb)
        context.job_id = await asyncio.to_thread(
            start_ingest, topology, context.kb, setup.site, setup.pages
        )
    run = LoadRun()
    recovered_at = float("inf")
    load = asyncio.create_task(chat_load(topology, setup.keys[fault.kb], fault.kb, clients, run))
    try:
        if context.job_id is not None and context.kb is not None:
            await asyncio.to_thread(wait_for_job, topology, context.kb, context.job_id, 120.0, 2)
        else:
            await asyncio.sleep(warmup_seconds)
        await asyncio.to_thread(fault.inject, topology, context)
        recovered_at = time.monotonic()
        setup.site.delay = 0.0
        await asyncio.sleep(after_seconds)
        # A replica that was just started loads its models on its first turns: wait until
        # every client has had a turn sent after the recovery, or a minute.
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and (
            sum(chat.started >= recovered_at for chat in run.results) < clients
        ):
            await asyncio.sleep(0.2)
    finally:
        run.stop.set()
        setup.site.delay = 0.0
        await load
    outcome = FaultOutcome(
        fault.name, fault.description, run.results, notes=context.notes, recovered_at=recovered_at
    )
    if context.job_id is not None and context.kb is not None:
        outcome.job = await asyncio.to_thread(wait_for_job, topology, context.kb, context.job_id)
        stored = await asyncio.to_thread(chunks_of, topology, context.kb)
        outcome.lost_chunks, outcome.extra_chunks = chunk_difference(setup.baseline, stored)
    outcome.turn_problems = await asyncio.to_thread(turn_problems, topology, run.results)
    outcome.notes += _logged_errors(topology, log_offsets)
    outcome.seconds = time.monotonic() - started
    return outcome


def _create_like_site(topology: Topology, kb: str) -> None:
    """A fresh extractive assistant to ingest into (the fault's ingest is compared with the
    clean one, so it must start empty)."""
    with topology.admin_client() as admin:
        admin.post("/api/assistants", json={"name": kb}).raise_for_status()


def _log_sizes(topology: Topology) -> dict[str, int]:
    return {
        name: service.log_path.stat().st_size if service.log_path.exists() else 0
        for name, service in topology.services.items()
    }


def _logged_errors(topology: Topology, offsets: dict[str, int], limit: int = 3) -> list[str]:
    """The first distinct error lines each app logged since ``offsets`` (what a failed chat
    or job was about, from the server's side)."""
    found: list[str] = []
    for name in [*topology.api_names, *topology.worker_names]:
        with topology.services[name].log_path.open("rb") as log:
            log.seek(offsets.get(name, 0))
            lines = log.read().decode("utf-8", errors="replace").splitlines()
        errors = [
            line.strip()
            for line in lines
            if re.match(r"^(ERROR|WARNING|\w+(\.\w+)*(Error|Exception):)", line.strip())
        ]
        found += [f"{name}: {line[:200]}" for line in list(dict.fromkeys(errors))[:limit]]
    return found
