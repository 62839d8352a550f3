"""Signed webhooks: an assistant's own endpoint is told about new handoffs and leads.

Each assistant may configure one endpoint (``webhook.url``) and a shared secret
(``webhook.secret``). An event is a JSON object ``{"id", "event", "assistant", "created_at",
"data"}`` sent as ``POST`` with these headers:

- ``X-Assistant-Event``: the event name (``handoff.created``, ``lead.created``);
- ``X-Assistant-Delivery``: the delivery id (the same on every retry of one event, so the
  receiver can drop duplicates);
- ``X-Assistant-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Assistant-Signature``: ``sha256=`` and the hex HMAC-SHA256, under the secret, of
  ``"<timestamp>.<raw body>"``.

A receiver recomputes the signature over the raw body it got, compares in constant time, and
refuses timestamps more than a few minutes old (``verify_signature`` does all three).

Delivery is retried with exponential backoff (tenacity) on connection errors, timeouts, 408,
429 (honouring ``Retry-After``) and 5xx; any other 4xx ends it. Every delivery is a row of
``webhook_deliveries`` with its status, attempts and last error, readable through the API.
The endpoint goes through the same private-address guard as the web connectors, so a
webhook cannot make the server call its own network (``ASSISTANT_FETCH_ALLOW_HOSTS``
exempts hosts).

>>> headers = signature_headers("s3cret", b'{"a":1}', timestamp=1700000000)
>>> headers["X-Assistant-Signature"][:7]
'sha256='
>>> verify_signature("s3cret", b'{"a":1}', headers, now=1700000010)
True
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from assistant.database.engine import Database
from assistant.database.models import WebhookDeliveryRow, new_id, utcnow
from assistant.engagement_config import WebhookConfig
from assistant.errors import BlockedURLError, FetchError
from connectors.base import FetchPolicy
from connectors.netguard import guarded_client

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookConfig",
    "WebhookDelivery",
    "WebhookSender",
    "signature_headers",
    "verify_signature",
]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Assistant-Signature"
"""``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""

TIMESTAMP_HEADER = "X-Assistant-Timestamp"
"""Unix seconds when the attempt was signed."""

_TOLERANCE_SECONDS = 300
_RETRY_STATUSES = {408, 429}


def _sign(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The timestamp and signature headers of ``body`` signed now (or at ``timestamp``)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: _sign(secret, stamp, body)}


def verify_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance_seconds: int = _TOLERANCE_SECONDS,
) -> bool:
    """Whether ``headers`` sign ``body`` under ``secret`` within ``tolerance_seconds`` of now."""
    lowered = {name.lower(): value for name, value in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    signature = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit() or not signature:
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature.encode(), _sign(secret, int(stamp), body).encode())


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event's delivery: ``pending``, ``delivered`` or ``failed``, and how it went."""

    id: str
    assistant: str
    event: str
    subject: str
    url: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def _delivery(row: WebhookDeliveryRow) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        assistant=row.assistant,
        event=row.event,
        subject=row.subject,
        url=row.url,
        status=row.status,
        attempts=row.attempts,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


class _Retryable(Exception):
    """An attempt that may succeed later; ``retry_after`` is the server's hint in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Final(Exception):
    """An attempt whose outcome another attempt would not change (4xx, refused address)."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class WebhookSender:
    """Records and sends an assistant's webhook events, retrying with backoff.

    ``record`` stores a pending delivery and returns it with the body to send; ``send``
    (blocking: call it from a worker thread or a background task) makes the attempts and
    records each one. Handoffs made in Slack use the same two calls.

    >>> sender = WebhookSender(database, FetchPolicy())  # doctest: +SKIP
    >>> delivery, body = sender.record("docs", config, "lead.created", lead.id, data)  # doctest: +SKIP
    >>> sender.send(delivery.id, config, body)  # doctest: +SKIP
    """

    def __init__(
        self,
        database: Database,
        policy: FetchPolicy,
        *,
        attempts: int = 5,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self._database = database
        self._policy = policy
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay

    def record(
        self,
        assistant: str,
        config: WebhookConfig,
        event: str,
        subject: str,
        data: Mapping[str, Any],
    ) -> tuple[WebhookDelivery, bytes] | None:
        """Store a pending delivery of ``event`` about ``subject``; ``None`` without a URL."""
        if config.url is None:
            return None
        delivery_id = new_id()
        created = utcnow()
        body = json.dumps(
            {
                "id": delivery_id,
                "event": event,
                "assistant": assistant,
                "created_at": created.isoformat(),
                "data": data,
            },
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        ).encode("utf-8")
        row = WebhookDeliveryRow(
            id=delivery_id,
            assistant=assistant,
            event=event,
            subject=subject,
            url=str(config.url),
            status="pending",
            attempts=0,
            created_at=created,
        )
        with self._database.session() as session:
            session.add(row)
        return _delivery(row), body

    def send(self, delivery_id: str, config: WebhookConfig, body: bytes) -> WebhookDelivery:
        """Make the attempts of a recorded delivery until one succeeds or the policy gives up."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
        )
        status, error = "delivered", None
        with guarded_client(self._policy) as client:
            try:
                for attempt in retrying:
                    with attempt:
                        self._attempt(client, delivery_id, config, body)
            except (_Retryable, _Final) as exc:
                status, error = "failed", str(exc)
        with self._database.session() as session:
            row = session.get(WebhookDeliveryRow, delivery_id)
            assert row is not None, "a delivery is recorded before it is sent"
            row.status = status
            row.finished_at = utcnow()
            if error is not None:
                row.last_error = error
                logger.warning("webhook delivery %s failed: %s", delivery_id, error)
            return _delivery(row)

    def _wait(self, state: RetryCallState) -> float:
        backoff = min(self.first_delay * 2.0 ** (state.attempt_number - 1), self.max_delay)
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(max(exc.retry_after, backoff), self.max_delay)
        return backoff

    def _attempt(
        self, client: httpx.Client, delivery_id: str, config: WebhookConfig, body: bytes
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Assistant-Delivery": delivery_id,
            "X-Assistant-Event": json.loads(body)["event"],
            **signature_headers(config.secret, body),
        }
        status: int | None = None
        try:
            response = client.post(str(config.url), content=body, headers=headers)
            status = response.status_code
        except BlockedURLError as exc:
            self._note(delivery_id, None, exc.reason)
            raise _Final(f"refused: {exc.reason}") from exc
        except (httpx.HTTPError, FetchError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._note(delivery_id, None, reason)
            raise _Retryable(reason) from exc
        if 200 <= status < 300:
            self._note(delivery_id, status, None)
            return
        reason = f"the endpoint answered HTTP {status}"
        self._note(delivery_id, status, reason)
        if status in _RETRY_STATUSES or status >= 500:
            raise _Retryable(reason, _retry_after(response))
        raise _Final(reason)

    def _note(self, delivery_id: str, status: int | None, error: str | None) -> None:
        with self._database.session() as session:
            row = session.get(WebhookDeliveryRow, delivery_id)
            if row is None:
                return
            row.attempts += 1
            row.last_status = status
            row.last_error = error

    def deliveries(
        self, assistant: str, *, subject: str | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        """``assistant``'s deliveries (of ``subject`` only, when given), newest first."""
        query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.assistant == assistant)
        if subject is not None:
            query = query.where(WebhookDeliveryRow.subject == subject)
        query = query.order_by(WebhookDeliveryRow.created_at.desc()).limit(limit)
        with self._database.session() as session:
            return [_delivery(row) for row in session.scalars(query)]
