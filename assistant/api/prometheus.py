"""Prometheus metrics of the API, in a registry per application (so tests can build several).

- ``assistant_http_requests_total`` and ``assistant_http_request_duration_seconds``: per method,
  route template (``/api/assistants/{name}/chat``, never the filled-in path) and status; a
  streamed answer is timed to its last byte.
- ``assistant_chat_turns_total``, ``assistant_provider_tokens_total``,
  ``assistant_chat_cost_usd_total``, ``assistant_provider_errors_total``: fed by the chat routes
  through ``observed``, which wraps each answer's event stream.
- ``assistant_chat_stage_duration_seconds``: time per stage of a chat turn (encode, recall,
  cache, maxsim, first_token, …), from each turn's ``done`` event.
- ``assistant_rate_limited_requests_total``: requests refused by a rate limit, per scope.
- ``assistant_token_cache_hit_ratio`` (and hits, misses): read from the core's token cache when
  scraped.

>>> events = observed(request, "help-centre", core.stream(message, kb="help-centre"))  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

from fastapi import Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.chat.events import DoneEvent, ErrorEvent, StreamEvent

if TYPE_CHECKING:
    from assistant.core import Assistant

__all__ = [
    "METRICS_CONTENT_TYPE",
    "ApiMetrics",
    "MetricsMiddleware",
    "metrics_of",
    "observed",
]

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Prometheus text exposition format's media type."""

# Up to two minutes: a streamed answer from a slow model is one request.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _TokenCacheCollector(Collector):
    """Reads the token cache's hit and miss counts at scrape time."""

    def __init__(self, core: Callable[[], Assistant | None]) -> None:
        self._core = core

    def collect(self) -> Iterator[Metric]:
        core = self._core()
        if core is None:
            return
        try:
            stats = core.token_cache.stats()
        except Exception:  # a scrape never fails because the cache cannot be opened
            return
        lookups = stats.hits + stats.misses
        ratio = GaugeMetricFamily(
            "assistant_token_cache_hit_ratio",
            "Share of token-embedding lookups answered by the cache since start.",
        )
        ratio.add_metric([], stats.hits / lookups if lookups else 0.0)
        yield ratio
        hits = CounterMetricFamily(
            "assistant_token_cache_hits", "Token-embedding lookups answered by the cache."
        )
        hits.add_metric([], stats.hits)
        yield hits
        misses = CounterMetricFamily(
            "assistant_token_cache_misses", "Token-embedding lookups computed afresh."
        )
        misses.add_metric([], stats.misses)
        yield misses


class ApiMetrics:
    """The API's metrics in their own ``CollectorRegistry``.

    ``core`` returns the application's ``Assistant`` once it exists (for the token cache).
    """

    def __init__(self, core: Callable[[], Assistant | None] | None = None) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "assistant_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.request_duration = Histogram(
            "assistant_http_request_duration_seconds",
            "Time from request to the last byte of the response, by route template.",
            ("method", "route", "status"),
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.turns = Counter(
            "assistant_chat_turns",
            "Chat turns finished, by assistant, provider and outcome.",
            ("assistant", "provider", "outcome"),
            registry=registry,
        )
        self.tokens = Counter(
            "assistant_provider_tokens",
            "Tokens spent by answer providers, by direction (input or output).",
            ("assistant", "provider", "direction"),
            registry=registry,
        )
        self.cost = Counter(
            "assistant_chat_cost_usd",
            "Estimated cost of answers in US dollars (known prices only).",
            ("assistant", "provider"),
            registry=registry,
        )
        self.stage_duration = Histogram(
            "assistant_chat_stage_duration_seconds",
            "Time spent per stage of a chat turn (history, condense, encode, recall, cache, "
            "maxsim, fuse, context, first_token, answer, store, total).",
            ("stage",),
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.provider_errors = Counter(
            "assistant_provider_errors",
            "Answers that failed after streaming started, by error code.",
            ("assistant", "code"),
            registry=registry,
        )
        self.rate_limited = Counter(
            "assistant_rate_limited_requests",
            "Requests refused by a rate limit, by scope (key or visitor).",
            ("scope",),
            registry=registry,
        )
        if core is not None:
            registry.register(_TokenCacheCollector(core))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.request_duration.labels(*labels).observe(seconds)

    def observe_turn(self, assistant: str, done: DoneEvent) -> None:
        """Count a finished chat turn: its outcome, tokens and estimated cost."""
        self.turns.labels(assistant, done.provider, done.outcome).inc()
        self.tokens.labels(assistant, done.provider, "input").inc(done.usage.input_tokens)
        self.tokens.labels(assistant, done.provider, "output").inc(done.usage.output_tokens)
        if done.cost_usd:
            self.cost.labels(assistant, done.provider).inc(done.cost_usd)
        for stage, milliseconds in done.timings_ms.items():
            self.stage_duration.labels(stage).observe(milliseconds / 1000.0)

    def observe_stream_error(self, assistant: str, error: ErrorEvent) -> None:
        """Count an answer that failed after it started streaming."""
        self.provider_errors.labels(assistant, error.code).inc()

    def observe_rate_limited(self, scope: str) -> None:
        """Count a request refused by a rate limit."""
        self.rate_limited.labels(scope).inc()

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)


def metrics_of(request: Request) -> ApiMetrics:
    """The metrics of the application serving ``request``."""
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


async def observed(
    request: Request, assistant: str, events: AsyncIterator[StreamEvent]
) -> AsyncGenerator[StreamEvent, None]:
    """``events`` unchanged, counting each finished or failed turn on the way; closing this
    stream closes ``events`` (a client that went away stops the provider)."""
    metrics = metrics_of(request)
    try:
        async for event in events:
            if isinstance(event, DoneEvent):
                metrics.observe_turn(assistant, event)
            elif isinstance(event, ErrorEvent):
                metrics.observe_stream_error(assistant, event)
            yield event
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


class MetricsMiddleware:
    """Times every HTTP request and labels it with its route template, once it is answered."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application and record the request's status and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route = scope.get("route")
            # The template, not the path: one series per route however many assistants exist.
            template = (
                getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"
            )
            self.metrics.observe_request(
                scope.get("method", ""), template, status, time.perf_counter() - started
            )
