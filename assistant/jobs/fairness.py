"""Fair turns for ingestion jobs: one assistant's jobs never starve another's.

A ``FairScheduler`` hands out *turns* to jobs:

- at most ``slots`` jobs run at once (``ASSISTANT_JOB_CONCURRENCY``);
- at most ``per_assistant`` jobs of one assistant have started (running or paused;
  ``ASSISTANT_JOB_CONCURRENCY_PER_ASSISTANT``, default 1), the rest wait in order;
- when a slot frees, the waiting job whose assistant was served least recently gets it
  (round robin between assistants; first come, first served within one);
- a running job calls ``Turn.between_documents()`` after each document. When a job of another
  assistant is waiting and no slot is free, the running job gives its slot up there and waits
  for its next turn. It keeps its place in its sources (the connector's generator, the pending
  chunks) in memory, so it resumes with the next document, nothing fetched twice.

So a crawl of a thousand pages delays another assistant's one-page ingest by at most one
document's time, and two big crawls of two assistants advance in alternation.

A job waits for its first turn without a thread: ``submit`` records it and the scheduler
starts its work through ``launch`` (an executor's ``submit``) once the turn comes. Started jobs
(running or paused) hold a thread each, so ``max_started`` bounds them; past it, new jobs wait
until a started one ends.

::

    executor = ThreadPoolExecutor(max_workers=8)
    scheduler = FairScheduler(slots=1, launch=executor.submit, max_started=8)
    done = scheduler.submit("docs", lambda turn: run_job(core, job_id, turn=turn))
    done.result()
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["FairScheduler", "Turn"]

T = TypeVar("T")

Launcher = Callable[..., Any]
"""Runs ``function(*args)`` on a thread of its own (``ThreadPoolExecutor.submit``)."""

_POLL_SECONDS = 0.2  # how often a waiting job looks at its stop event


@dataclass(eq=False)
class _Ticket(Generic[T]):
    assistant: str
    work: Callable[[Turn], T]
    stop: threading.Event | None
    order: int
    future: Future[T] = field(default_factory=Future)
    started: bool = False
    holds_slot: bool = False


class Turn:
    """A started job's hold on its scheduler, handed to the job's work."""

    def __init__(self, scheduler: FairScheduler, ticket: _Ticket[Any]) -> None:
        self._scheduler = scheduler
        self._ticket = ticket
        self.paused_seconds = 0.0
        """Time this job spent waiting for its turn again, after it had started."""

    def between_documents(self) -> bool:
        """Give the slot up if another assistant's job waits for one; return once this job
        holds a slot again (``True``) or its stop event is set while it waits (``False``)."""
        return self._scheduler._between_documents(self)

    @property
    def assistant(self) -> str:
        """The assistant whose job holds this turn."""
        return self._ticket.assistant


class FairScheduler:
    """Turns for jobs of many assistants: bounded, round robin, handed over between documents.

    ``preempt=False`` keeps a started job on its slot to its end (first come, first served
    between assistants): the behaviour without fairness, kept to measure the difference.
    """

    def __init__(
        self,
        *,
        slots: int,
        launch: Launcher,
        per_assistant: int = 1,
        max_started: int | None = None,
        preempt: bool = True,
    ) -> None:
        if slots < 1 or per_assistant < 1:
            raise ValueError("slots and per_assistant must be at least 1")
        self.slots = slots
        self.per_assistant = per_assistant
        self.max_started = max(max_started or 8 * slots, slots)
        self._launch = launch
        self._preempt = preempt
        self._condition = threading.Condition()
        self._waiting: list[_Ticket[Any]] = []
        self._running = 0
        self._started: dict[str, int] = {}
        self._last_served: dict[str, int] = {}
        self._order = itertools.count()
        self._closed = False

    def submit(
        self, assistant: str, work: Callable[[Turn], T], *, stop: threading.Event | None = None
    ) -> Future[T]:
        """Run ``work(turn)`` for ``assistant`` when its turn comes; the future holds its
        result (or exception). A job submitted after ``close`` is cancelled at once."""
        ticket: _Ticket[T] = _Ticket(assistant, work, stop, next(self._order))
        with self._condition:
            if self._closed:
                ticket.future.cancel()
                return ticket.future
            self._waiting.append(ticket)
            self._dispatch()
        return ticket.future

    def withdraw(self, future: Future[Any]) -> bool:
        """Take a job that has not started yet out of the line; ``False`` once it started."""
        with self._condition:
            for ticket in self._waiting:
                if ticket.future is future and not ticket.started:
                    self._waiting.remove(ticket)
                    ticket.future.cancel()
                    return True
            return False

    def close(self) -> None:
        """Cancel every job that has not started; started ones end through their stop event."""
        with self._condition:
            self._closed = True
            for ticket in [t for t in self._waiting if not t.started]:
                self._waiting.remove(ticket)
                ticket.future.cancel()
            self._condition.notify_all()

    def waiting(self) -> int:
        """How many jobs wait for a turn (new or paused)."""
        with self._condition:
            return len(self._waiting)

    # Everything below runs with ``self._condition`` held unless it says otherwise.

    def _eligible(self, ticket: _Ticket[Any]) -> bool:
        if ticket.started:
            return True
        if self._started.get(ticket.assistant, 0) >= self.per_assistant:
            return False
        return sum(self._started.values()) < self.max_started

    def _next(self) -> _Ticket[Any] | None:
        candidates = [t for t in self._waiting if self._eligible(t)]
        if not candidates:
            return None
        return min(candidates, key=lambda t: (self._last_served.get(t.assistant, -1), t.order))

    def _dispatch(self) -> None:
        while self._running < self.slots:
            ticket = self._next()
            if ticket is None:
                return
            self._waiting.remove(ticket)
            self._running += 1
            ticket.holds_slot = True
            self._last_served[ticket.assistant] = next(self._order)
            if ticket.started:
                self._condition.notify_all()  # a paused job: its thread waits for this
            else:
                ticket.started = True
                self._started[ticket.assistant] = self._started.get(ticket.assistant, 0) + 1
                self._launch(self._run, ticket)

    def _run(self, ticket: _Ticket[Any]) -> None:
        """Runs on the launched thread, without the lock: the job's work, then its release."""
        try:
            if ticket.future.set_running_or_notify_cancel():
                try:
                    result = ticket.work(Turn(self, ticket))
                except BaseException as exc:
                    ticket.future.set_exception(exc)
                else:
                    ticket.future.set_result(result)
        finally:
            with self._condition:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                if ticket.holds_slot:
                    ticket.holds_slot = False
                    self._running -= 1
                remaining = self._started.get(ticket.assistant, 1) - 1
                if remaining:
                    self._started[ticket.assistant] = remaining
                else:
                    self._started.pop(ticket.assistant, None)
                self._dispatch()

    def _someone_else_waits(self, ticket: _Ticket[Any]) -> bool:
        return any(t.assistant != ticket.assistant and self._eligible(t) for t in self._waiting)

    def _between_documents(self, turn: Turn) -> bool:
        ticket = turn._ticket
        with self._condition:
            if not ticket.holds_slot:
                return False
            if not self._preempt or self._running < self.slots:
                return True
            if not self._someone_else_waits(ticket):
                return True
            ticket.holds_slot = False
            self._running -= 1
            self._waiting.append(ticket)
            self._dispatch()
            paused_at = time.monotonic()
            while not ticket.holds_slot:
                if ticket.stop is not None and ticket.stop.is_set():
                    self._waiting.remove(ticket)
                    break
                self._condition.wait(_POLL_SECONDS)
            turn.paused_seconds += time.monotonic() - paused_at
            return ticket.holds_slot
