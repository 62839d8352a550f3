"""``Client``: the assistant's HTTP API with the methods and return types of ``Assistant``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from assistant.analytics.types import AnalyticsReport
from assistant.chat.events import Answer, ErrorEvent, StreamEvent
from assistant.chat.records import Conversation, ConversationSummary, TurnRecord
from assistant.client import _base as calls
from assistant.client._errors import (
    ApiConnectionError,
    ApiInvalidInputError,
    ApiNotFoundError,
    error_from_response,
)
from assistant.client._ingest import (
    decode_job,
    plan_ingest,
    progress_events,
    refused_source,
    report_of,
)
from assistant.client._report import decode_report
from assistant.client._retry import RETRY_STATUSES, RetryableResponse
from assistant.client._wire import (
    Call,
    SSEDecoder,
    decode_answer,
    decode_config,
    decode_conversation,
    decode_conversations,
    decode_gap_turns,
    decode_models,
    decode_search,
    decode_sources,
)
from assistant.config import AssistantConfig
from assistant.errors import ConfigError
from assistant.jobs.records import JobRecord
from assistant.knowledge.reports import IngestReport, ProgressCallback, SourceSummary
from assistant.knowledge.results import SearchResult

__all__ = ["Client", "connection_lost", "poll_intervals"]

logger = logging.getLogger("assistant.client")


def connection_lost(reason: str) -> ErrorEvent:
    """The event that ends a stream whose connection broke after the answer had started."""
    return ErrorEvent("ApiConnectionError", f"the connection to the server was lost: {reason}")


def poll_intervals() -> Iterator[float]:
    """Seconds between polls of a running job: quick at first, then every two seconds."""
    interval = 0.2
    while True:
        yield interval
        interval = min(2.0, interval * 1.5)


class Client:
    """The assistant's HTTP API, with the methods and return types of ``Assistant``.

    Swap ``Assistant.from_settings()`` for ``Client(url, key)`` and the code that calls
    ``search``, ``chat``, ``stream``, ``ingest``… stays the same (see ``SHARED_METHODS``).
    Failures raise ``ClientError`` subclasses; safe requests are retried (see ``RetryPolicy``).

    >>> with Client("https://assistant.example.com", "sk_...") as bot:  # doctest: +SKIP
    ...     answer = bot.chat("How do I reset my password?", kb="help-centre")
    ...     print(answer.answer, [citation.url for citation in answer.citations])

    ``transport`` replaces the network (an ``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float | httpx.Timeout = 30.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = calls.ClientSettings(
            base_url, api_key, timeout=timeout, max_retries=max_retries, backoff=backoff
        )
        self._http = httpx.Client(
            base_url=self._settings.base_url,
            headers=self._settings.headers,
            timeout=self._settings.timeout,
            transport=transport,
        )

    # Sending ----------------------------------------------------------------------------------

    def _send(self, call: Call, *, stream: bool = False) -> httpx.Response:
        """Send ``call`` under the retry policy; a failure status raises its ``ClientError``."""
        try:
            for attempt in self._settings.policy.retrying(idempotent=call.idempotent):
                with attempt:
                    response = self._http.send(
                        self._settings.request(self._http, call), stream=stream
                    )
                    if response.status_code in RETRY_STATUSES:
                        response.read()
                        response.close()
                        raise RetryableResponse(response)
        except RetryableResponse as exhausted:
            response = exhausted.response
        except httpx.TransportError as exc:
            raise ApiConnectionError(f"{call.method} {call.path} failed: {exc!r}") from exc
        if response.is_error:
            response.read()
            response.close()
            raise error_from_response(response.status_code, response.headers, response.content)
        return response

    def _json(self, call: Call) -> Any:
        response = self._send(call)
        return response.json() if response.content else None

    # The shared surface ----------------------------------------------------------------------

    def search(self, query: str, *, kb: str = "default", k: int = 10) -> SearchResult:
        """The ``k`` best passages for ``query``, ranked by the late-interaction stage."""
        return decode_search(self._json(calls.search_call(query, kb, k)))

    def stream(
        self,
        message: str,
        *,
        kb: str = "default",
        conversation_id: str | None = None,
        visitor: str | None = None,
    ) -> Iterator[StreamEvent]:
        """Stream a cited answer as the next turn of a conversation (Server-Sent Events).

        Events as ``Assistant.stream``: ``sources`` (with the conversation id), text deltas,
        ``citations``, then ``done`` or ``error``. A connection lost after the first event ends
        the stream with an ``error`` event (``code`` ``ApiConnectionError``), like any failure
        after an answer has started; failures before it raise.

        >>> for event in bot.stream("Can I pay yearly?", kb="help-centre"):  # doctest: +SKIP
        ...     if event.type == "text":
        ...         print(event.text, end="", flush=True)
        """
        call = calls.chat_call(message, kb, conversation_id, visitor, stream=True)
        response = self._send(call, stream=True)
        finished = False
        try:
            decoder = SSEDecoder()
            for line in response.iter_lines():
                event = decoder.feed(line)
                if event is not None:
                    finished = event.type in ("done", "error")
                    yield event
        except httpx.TransportError as exc:
            yield connection_lost(repr(exc))
            return
        finally:
            response.close()
        if not finished:
            yield connection_lost("the stream ended before the answer was complete")

    def chat(
        self,
        message: str,
        *,
        kb: str = "default",
        conversation_id: str | None = None,
        visitor: str | None = None,
    ) -> Answer:
        """Answer ``message`` as the next turn of a conversation (``None``: a new one)."""
        call = calls.chat_call(message, kb, conversation_id, visitor, stream=False)
        return decode_answer(self._json(call))

    def ask(self, question: str, *, kb: str = "default") -> Answer:
        """Answer one question with citations, without earlier turns; nothing is stored.

        ``retrieval`` is ``None`` (the API does not send the search).
        """
        return decode_answer(
            self._json(calls.chat_call(question, kb, None, None, stream=False, remember=False))
        )

    def ingest(
        self,
        sources: Sequence[str],
        *,
        kb: str = "default",
        crawl: bool = False,
        max_pages: int | None = None,
        max_depth: int = 3,
        progress: ProgressCallback | None = None,
        wait: bool = True,
    ) -> IngestReport:
        """Ingest files, folders, page URLs, sitemaps or (with ``crawl``) whole sites.

        URLs become server jobs that fetch them; files and folders are read here and uploaded.
        With ``wait`` (default) the jobs are followed to their end and the report is complete
        (``progress`` hears of documents loaded, chunks embedded and failures as they are
        polled); without, it returns at once. Either way the report is an ``IngestResult``
        whose ``jobs`` are the server's jobs.

        Raises:
            ConfigError: no source was given.
        """
        if not sources:
            raise ConfigError("give at least one file, folder or URL to ingest")
        started = time.monotonic()
        plan = plan_ingest(sources, crawl=crawl, max_pages=max_pages, max_depth=max_depth)
        jobs: list[JobRecord] = []
        for body in plan.web_sources:
            try:
                jobs.append(decode_job(self._json(calls.add_source_call(kb, body)), kb))
            except ApiInvalidInputError as refusal:
                # Refused URLs (blocked address, malformed) fail alone, as in-process.
                plan.unreadable.append(refused_source(body, refusal))
        for batch in plan.uploads:
            jobs.append(decode_job(self._json(calls.upload_call(kb, batch)), kb))
        if wait:
            jobs = [self._follow(job, kb, progress) for job in jobs]
        return report_of(jobs, plan.unreadable, time.monotonic() - started)

    def _follow(self, job: JobRecord, kb: str, progress: ProgressCallback | None) -> JobRecord:
        seen: JobRecord | None = None
        intervals = poll_intervals()
        while True:
            if progress is not None:
                for event in progress_events(seen, job):
                    progress(event)
            if job.finished:
                return job
            seen = job
            time.sleep(next(intervals))
            job = self.job(job.id, kb=kb)

    def sources(self, *, kb: str = "default") -> list[SourceSummary]:
        """What has been ingested into ``kb``, grouped by the source it was ingested from."""
        return decode_sources(self._json(calls.sources_call(kb)))

    def forget(self, source: str, *, kb: str = "default") -> int:
        """Remove a source (or a single document by its URL); returns chunks removed."""
        return int(self._json(calls.forget_call(source, kb))["removed_chunks"])

    def conversations(
        self, *, kb: str = "default", limit: int = 50, offset: int = 0
    ) -> list[ConversationSummary]:
        """Conversations with ``kb``'s assistant, most recently active first."""
        return decode_conversations(self._json(calls.conversations_call(kb, limit, offset)), kb)

    def conversation(self, conversation_id: str, *, kb: str = "default") -> Conversation:
        """One conversation with every turn (question, answer, citations, trace, usage)."""
        return decode_conversation(self._json(calls.export_call(conversation_id, kb)))

    def delete_conversation(self, conversation_id: str, *, kb: str = "default") -> None:
        """Delete a conversation, its turns and their feedback."""
        self._send(calls.delete_conversation_call(conversation_id, kb))

    def feedback(
        self, turn_id: int, rating: int, comment: str = "", *, kb: str = "default"
    ) -> None:
        """Record thumbs up (``1``) or down (``-1``) on a turn, with an optional comment."""
        self._send(calls.feedback_call(turn_id, rating, comment, kb))

    def content_gaps(self, *, kb: str = "default", limit: int = 100) -> list[TurnRecord]:
        """Questions the assistant could not answer from ``kb``, newest first.

        The gaps route names the turns; their conversations are read for the whole records.
        """
        gaps = self._json(calls.gaps_call(kb, limit))
        conversations: dict[str, Conversation] = {}
        for gap in gaps["gaps"]:
            conversation_id = gap["conversation_id"]
            if conversation_id not in conversations:
                try:
                    conversations[conversation_id] = self.conversation(conversation_id, kb=kb)
                except ApiNotFoundError:
                    logger.info("conversation %s went away while reading gaps", conversation_id)
        return decode_gap_turns(gaps, conversations)

    def config(self, kb: str = "default") -> AssistantConfig:
        """``kb``'s assistant settings (brand, answering, retrieval, access, limits)."""
        return decode_config(self._json(calls.config_call(kb)))

    def configure(self, kb: str = "default", **changes: object) -> AssistantConfig:
        """Change ``kb``'s assistant settings by section and store them (admin key).

        >>> bot.configure("docs", brand={"tone": "Warm, brief."})  # doctest: +SKIP
        """
        return decode_config(self._json(calls.configure_call(kb, changes)))

    def knowledge_bases(self) -> list[str]:
        """Names of the knowledge bases this key may use (all of them for the admin key)."""
        return decode_models(self._json(calls.models_call()))

    def report(
        self, kb: str = "default", *, since: str = "30d", mask: bool = True
    ) -> AnalyticsReport:
        """``kb``'s analytics since ``since`` (``30d``, ``12h``, an ISO date), with trends.

        The report of ``Assistant.report``, read from the analytics route (admin key or one of
        ``kb``'s secret keys); the clusters' drill-down ``turn_ids`` stay on the server.
        """
        return decode_report(self._json(calls.report_call(kb, since, mask)))

    def leads_csv(self, kb: str = "default", *, since: str = "30d") -> str:
        """``kb``'s leads since ``since`` as CSV, best score first: score, questions asked,
        pricing intent, topics, then the form's fields (admin key or one of ``kb``'s secret
        keys)."""
        response = self._send(calls.leads_csv_call(kb, since))
        return response.text

    # Beyond the shared surface ---------------------------------------------------------------

    def job(self, job_id: str, *, kb: str = "default") -> JobRecord:
        """An ingestion job as it is now (``IngestResult.jobs`` names them)."""
        return decode_job(self._json(calls.job_call(job_id, kb)), kb)

    def cancel_job(self, job_id: str, *, kb: str = "default") -> JobRecord:
        """Cancel a queued or running job and return it, now ``cancelled``; what it ingested
        so far stays.

        Raises:
            ApiConflictError: the job has finished already.
            ApiNotFoundError: no such job in ``kb``.
        """
        return decode_job(self._json(calls.cancel_job_call(job_id, kb)), kb)

    def close(self) -> None:
        """Close the connections; the client cannot be used after."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
