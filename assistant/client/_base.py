"""What both clients share: their settings, the request of every method, and the surface rules.

``SHARED_METHODS`` names the methods that ``Assistant``, ``Client`` and ``AsyncClient`` all have,
with the same parameters (names, kinds, defaults, annotations) and return types, so that an
application switches between in-process and remote by changing one line. The two mappings
below it are the only exceptions the parity test accepts.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import httpx

from assistant.client._ingest import LocalFile
from assistant.client._retry import RetryPolicy
from assistant.client._wire import Call, assistant_path, encode_changes

__all__ = [
    "IN_PROCESS_ONLY_METHODS",
    "LOCAL_ONLY_PARAMETERS",
    "REMOTE_ONLY_PARAMETERS",
    "SHARED_METHODS",
    "ClientSettings",
    "add_source_call",
    "cancel_job_call",
    "chat_call",
    "config_call",
    "configure_call",
    "conversations_call",
    "delete_conversation_call",
    "export_call",
    "feedback_call",
    "forget_call",
    "gaps_call",
    "job_call",
    "leads_csv_call",
    "models_call",
    "report_call",
    "search_call",
    "sources_call",
    "upload_call",
]

SHARED_METHODS: tuple[str, ...] = (
    "search",
    "stream",
    "chat",
    "ask",
    "ingest",
    "sources",
    "forget",
    "conversations",
    "conversation",
    "delete_conversation",
    "feedback",
    "content_gaps",
    "config",
    "configure",
    "knowledge_bases",
    "report",
    "leads_csv",
)
"""Methods of ``Assistant`` that both clients have, with the same signature and return type.

``AsyncClient``'s are coroutines returning the same type, except ``stream``, which is an async
iterator on all three (``Client.stream`` is a plain iterator). ``Assistant`` methods the HTTP
API cannot provide (``tune``, ``documents``, ``ingest_connectors``) are not on the clients.
"""

IN_PROCESS_ONLY_METHODS: frozenset[str] = frozenset(
    {"tune", "documents", "ingest_connectors", "from_settings", "close", "aclose"}
)
"""Public methods of ``Assistant`` that the clients do not mirror: training a head, reading raw
document states and custom connectors need the process that holds the data; building and
closing differ by nature (the clients have ``close`` / ``aclose`` of their own)."""

LOCAL_ONLY_PARAMETERS: Mapping[str, frozenset[str]] = {
    "stream": frozenset({"remember", "history"}),
    "report": frozenset({"drill_down"}),
}
"""Parameters of shared ``Assistant`` methods that the HTTP API has no field for: the chat
route always stores the turn in the server's conversation and reads history from there; the
analytics route never sends drill-down turn ids."""

REMOTE_ONLY_PARAMETERS: Mapping[str, frozenset[str]] = {
    "ingest": frozenset({"wait"}),
}
"""Keyword-only parameters, with defaults, that only the clients' methods have: ingestion runs
as server jobs, which ``wait`` follows to their end (or not)."""


@functools.cache
def user_agent() -> str:
    """``assistant-rag-python/<version>``, sent with every request.

    Read on first use: looking the version up scans the installed packages, which would
    otherwise be a good part of importing the client.
    """
    import importlib.metadata

    try:
        version = importlib.metadata.version("assistant-rag")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        version = "0"
    return f"assistant-rag-python/{version}"


class ClientSettings:
    """How a client reaches the API: address, key, time limits and retry policy.

    Raises:
        ValueError: ``base_url`` is not an http(s) address, or a number is out of range.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float | httpx.Timeout,
        max_retries: int,
        backoff: float,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url must be an http:// or https:// address, got {base_url!r}")
        if max_retries < 0 or backoff < 0:
            raise ValueError("max_retries and backoff must not be negative")
        self.base_url = url
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.policy = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self.headers = {"User-Agent": user_agent(), "Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def request(self, http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        """The ``httpx.Request`` for ``call`` (built anew for every try)."""
        headers = {"Accept": "text/event-stream"} if _is_stream(call) else None
        return http.build_request(
            call.method,
            call.path,
            json=call.json if call.files is None else None,
            params=dict(call.params) if call.params else None,
            files=call.files,
            headers=headers,
        )


def _is_stream(call: Call) -> bool:
    return isinstance(call.json, dict) and call.json.get("stream") is True


def search_call(query: str, kb: str, k: int) -> Call:
    """``POST …/search``; safe to repeat."""
    return Call("POST", assistant_path(kb, "search"), {"query": query, "k": k}, idempotent=True)


def chat_call(
    message: str,
    kb: str,
    conversation_id: str | None,
    visitor: str | None,
    *,
    stream: bool,
    remember: bool = True,
) -> Call:
    """``POST …/chat``; repeated only before any of the answer was read."""
    body: dict[str, object] = {"message": message, "stream": stream}
    if not remember:
        body["remember"] = False
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    if visitor is not None:
        body["visitor"] = visitor
    return Call("POST", assistant_path(kb, "chat"), body, idempotent=True)


def sources_call(kb: str) -> Call:
    """``GET …/sources``."""
    return Call("GET", assistant_path(kb, "sources"), idempotent=True)


def forget_call(source: str, kb: str) -> Call:
    """``DELETE …/sources?source=…``."""
    return Call("DELETE", assistant_path(kb, "sources"), params={"source": source})


def add_source_call(kb: str, body: Mapping[str, object]) -> Call:
    """``POST …/sources``: a web source as a job."""
    return Call("POST", assistant_path(kb, "sources"), dict(body))


def upload_call(kb: str, files: Sequence[LocalFile]) -> Call:
    """``POST …/sources/upload``: files as one multipart job."""
    parts = [("files", (local.name, local.data, "application/octet-stream")) for local in files]
    return Call("POST", assistant_path(kb, "sources", "upload"), files=parts)


def job_call(job_id: str, kb: str) -> Call:
    """``GET …/jobs/{job_id}``."""
    return Call("GET", assistant_path(kb, "jobs", job_id), idempotent=True)


def cancel_job_call(job_id: str, kb: str) -> Call:
    """``DELETE …/jobs/{job_id}``: cancel a queued or running job."""
    return Call("DELETE", assistant_path(kb, "jobs", job_id))


def conversations_call(kb: str, limit: int, offset: int) -> Call:
    """``GET …/conversations``."""
    params = {"limit": limit, "offset": offset}
    return Call("GET", assistant_path(kb, "conversations"), params=params, idempotent=True)


def export_call(conversation_id: str, kb: str) -> Call:
    """``GET …/conversations/{id}/export``: every turn with its retrieval trace."""
    path = assistant_path(kb, "conversations", conversation_id, "export")
    return Call("GET", path, idempotent=True)


def delete_conversation_call(conversation_id: str, kb: str) -> Call:
    """``DELETE …/conversations/{id}``."""
    return Call("DELETE", assistant_path(kb, "conversations", conversation_id))


def feedback_call(turn_id: int, rating: int, comment: str, kb: str) -> Call:
    """``POST …/turns/{turn_id}/feedback``."""
    body = {"rating": rating, "comment": comment}
    return Call("POST", assistant_path(kb, "turns", str(turn_id), "feedback"), body)


def gaps_call(kb: str, limit: int) -> Call:
    """``GET …/gaps``."""
    return Call("GET", assistant_path(kb, "gaps"), params={"limit": limit}, idempotent=True)


def config_call(kb: str) -> Call:
    """``GET /api/assistants/{kb}``."""
    return Call("GET", assistant_path(kb), idempotent=True)


def configure_call(kb: str, changes: Mapping[str, object]) -> Call:
    """``PATCH /api/assistants/{kb}`` with the changed sections (admin key)."""
    return Call("PATCH", assistant_path(kb), encode_changes(changes))


def models_call() -> Call:
    """``GET /v1/models``: the assistants this key may use."""
    return Call("GET", "/v1/models", idempotent=True)


def leads_csv_call(kb: str, since: str) -> Call:
    """``GET …/analytics/leads.csv``: the period's scored leads as CSV."""
    return Call(
        "GET", assistant_path(kb, "analytics/leads.csv"), params={"since": since}, idempotent=True
    )


def report_call(kb: str, since: str, mask: bool) -> Call:
    """``GET …/analytics``: the analytics report since ``since``."""
    params = {"since": since, "mask": "true" if mask else "false"}
    return Call("GET", assistant_path(kb, "analytics"), params=params, idempotent=True)
