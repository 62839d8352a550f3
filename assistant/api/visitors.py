"""Widget visitors: signed visitor tokens, and what binds conversations and turns to them.

A page using a public key gets a visitor token from the server on its first configuration or
chat request (the ``X-Visitor-Token`` response header) and sends it back on every later one.
The token is ``<visitor id>.<HMAC-SHA256 of assistant and visitor id>`` under the server's
secret key (``ASSISTANT_SECRET_KEY``, or a random key generated once and kept in the database
so every replica agrees), so a visitor cannot make up another one's token.

What the token binds:

- the conversations a public key starts belong to the visitor (``visitor = "w:<id>"``); any
  other caller of the public key reading or continuing one gets 404, as if it did not exist;
- the per-visitor rate limit counts the token's visitor at the client's address; a request
  without a valid token counts against the address alone, so dropping or forging tokens
  does not buy a fresh budget;
- turns are rated by a public reference (``<turn id>.<HMAC over assistant, visitor and turn
  id>``), so sequential turn ids cannot be rated by anyone who did not receive the turn.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from fastapi import Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.caller import Caller
from assistant.api.sse import close_stream
from assistant.chat.events import DoneEvent, StreamEvent, Usage
from assistant.core import Assistant
from assistant.database.engine import Database, is_duplicate_key
from assistant.database.models import ConversationRow, ServerSecretRow
from assistant.errors import DatabaseError, NotFoundError
from assistant.settings import Settings

__all__ = [
    "TOKEN_HEADER",
    "VISITOR_PREFIX",
    "VisitorTokenMiddleware",
    "VisitorTokens",
    "WidgetDoneEvent",
    "check_conversation",
    "load_secret",
    "public_events",
    "resolve_visitor",
    "tokens_of",
    "without_turn_ids",
]

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Visitor-Token"
"""Request and response header carrying a widget visitor's signed token."""

VISITOR_PREFIX = "w:"
"""Prefix of the ``visitor`` stored with conversations a public key started."""

_SECRET_NAME = "visitor-token-key"
_STATE_KEY = "issued_visitor_token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class VisitorTokens:
    """Issues and checks visitor tokens and public turn references under one secret.

    >>> tokens = VisitorTokens(b"k" * 32)
    >>> visitor, token = tokens.issue("docs")
    >>> tokens.verify("docs", token) == visitor, tokens.verify("shop", token)
    (True, None)
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode("utf-8")
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest()[:24])

    def issue(self, assistant: str) -> tuple[str, str]:
        """A new visitor of ``assistant``: ``(visitor id, token)``."""
        visitor = _b64(secrets.token_bytes(16))
        return visitor, f"{visitor}.{self._sign('visitor', assistant, visitor)}"

    def verify(self, assistant: str, token: str | None) -> str | None:
        """The visitor id of a valid ``token`` of ``assistant``, else ``None``."""
        if not token or len(token) > 128:
            return None
        visitor, _, signature = token.strip().partition(".")
        if not visitor or not signature:
            return None
        expected = self._sign("visitor", assistant, visitor)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        return visitor

    def turn_ref(self, assistant: str, visitor: str | None, turn_id: int) -> str:
        """The public reference of a stored turn, good only for ``visitor``."""
        return f"{turn_id}.{self._sign('turn', assistant, visitor or '', str(turn_id))}"

    def turn_id(self, assistant: str, visitor: str | None, ref: str) -> int | None:
        """The turn id behind ``ref`` when it was issued to ``visitor``, else ``None``."""
        number, _, signature = ref.partition(".")
        if not number.isdigit() or len(number) > 18 or not signature:
            return None
        expected = self._sign("turn", assistant, visitor or "", str(int(number)))
        return int(number) if hmac.compare_digest(signature.encode(), expected.encode()) else None


def load_secret(settings: Settings, database: Database) -> bytes:
    """The key that signs visitor tokens: ``ASSISTANT_SECRET_KEY``, else one generated once
    and stored in the database (the first replica to store it wins)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode("utf-8")
    with database.session() as session:
        row = session.get(ServerSecretRow, _SECRET_NAME)
        if row is not None:
            return row.value.encode("ascii")
    try:
        with database.session() as session:
            session.add(ServerSecretRow(name=_SECRET_NAME, value=secrets.token_urlsafe(48)))
    except DatabaseError as exc:
        if not is_duplicate_key(exc):  # only a lost race to store the key is fine
            raise
        logger.info("another process stored the visitor token key first; using theirs")
    with database.session() as session:
        value = session.scalars(
            select(ServerSecretRow.value).where(ServerSecretRow.name == _SECRET_NAME)
        ).one()
        return value.encode("ascii")


async def tokens_of(request: Request) -> VisitorTokens:
    """The application's ``VisitorTokens`` (the secret is read on first use)."""
    tokens: VisitorTokens | None = getattr(request.app.state, "visitor_tokens", None)
    if tokens is None:
        core: Assistant = request.app.state.core
        secret = await run_in_threadpool(load_secret, request.app.state.settings, core.database)
        tokens = VisitorTokens(secret)
        request.app.state.visitor_tokens = tokens
    return tokens


async def resolve_visitor(
    request: Request, name: str, caller: Caller
) -> tuple[Caller, tuple[str, ...]]:
    """The public-key ``caller`` with its visitor taken from the token (a new token is issued
    and sent back when none or an invalid one came), and the rate-limit identity to count.

    The client's own ``X-Visitor-Id`` is ignored: anyone can rotate it.
    """
    tokens = await tokens_of(request)
    client = request.client.host if request.client else ""
    visitor = tokens.verify(name, request.headers.get(TOKEN_HEADER.lower()))
    if visitor is not None:
        identity: tuple[str, ...] = (name, client, visitor)
    else:
        visitor, token = tokens.issue(name)
        request.state.issued_visitor_token = token
        # No token yet: the address's shared budget, so discarding tokens gains nothing.
        identity = (name, client, "")
    return replace(caller, visitor=VISITOR_PREFIX + visitor), identity


class VisitorTokenMiddleware:
    """Adds a newly issued visitor token to the response as ``X-Visitor-Token``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application; copy an issued token into the response headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_token(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state") or {}
                token = state.get(_STATE_KEY)
                if token:
                    MutableHeaders(scope=message)[TOKEN_HEADER] = token
            await send(message)

        await self.app(scope, receive, send_with_token)


def check_conversation(core: Assistant, name: str, conversation_id: str, caller: Caller) -> None:
    """Refuse (404) a public-key caller's access to a conversation that is not its visitor's.

    Raises:
        NotFoundError: the conversation does not exist for ``name`` or is another visitor's.
    """
    if caller.kind != "public":
        return
    with core.database.session() as session:
        owner = session.scalars(
            select(ConversationRow.visitor).where(
                ConversationRow.id == conversation_id, ConversationRow.assistant == name
            )
        ).first()
    if owner is None or owner != caller.visitor:
        raise NotFoundError(f"no conversation {conversation_id!r} for assistant {name!r}")


@dataclass(frozen=True, slots=True)
class WidgetDoneEvent:
    """``DoneEvent`` as widget callers see it: ``turn_ref`` replaces a public key's turn id."""

    usage: Usage
    provider: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    cost_usd: float | None = None
    outcome: Literal["answered", "no_answer"] = "answered"
    conversation_id: str | None = None
    turn_id: int | None = None
    turn_ref: str | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    type: Literal["done"] = "done"


def _widget_done(event: DoneEvent, ref: str | None, hide_id: bool) -> WidgetDoneEvent:
    values: dict[str, Any] = asdict(event)
    values["usage"] = event.usage
    if hide_id:
        values["turn_id"] = None
    return WidgetDoneEvent(**values, turn_ref=ref)


async def public_events(
    events: AsyncIterator[StreamEvent], tokens: VisitorTokens, name: str, caller: Caller
) -> AsyncIterator[Any]:
    """``events`` with each ``done`` carrying a turn reference for feedback; a public key's
    caller does not see the sequential turn id. Closing this stream closes ``events``."""
    try:
        async for event in events:
            if isinstance(event, DoneEvent):
                ref = (
                    tokens.turn_ref(name, caller.visitor, event.turn_id)
                    if event.turn_id is not None
                    else None
                )
                yield _widget_done(event, ref, hide_id=caller.kind == "public")
            else:
                yield event
    finally:
        await close_stream(events)


async def without_turn_ids(events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """``events`` with the turn id removed from ``done`` (a whole answer to a public key)."""
    try:
        async for event in events:
            yield replace(event, turn_id=None) if isinstance(event, DoneEvent) else event
    finally:
        await close_stream(events)
