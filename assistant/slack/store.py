"""What the bot remembers: thread → conversation, events already taken, handoff requests.

Event ids are claimed before anything is done for them, so Slack's retries (sent when an answer
takes longer than its 3 seconds, even while the first delivery is still being handled) are
answered once. With Redis the claim is one ``SET NX EX``; without it, a row in the database.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete

from assistant.database.engine import Database, is_duplicate_key
from assistant.database.models import utcnow
from assistant.database.slack_models import SlackEventRow, SlackThreadRow
from assistant.errors import DatabaseError, NotFoundError
from assistant.handoff import Handoff, HandoffStore

__all__ = [
    "DatabaseEventClaims",
    "EventClaims",
    "RedisEventClaims",
    "ThreadKey",
    "ThreadStore",
    "request_handoff",
]

logger = logging.getLogger(__name__)

EVENT_TTL = timedelta(hours=1)
"""How long an event id stays claimed: past Slack's last retry (about 5 minutes)."""


@dataclass(frozen=True, slots=True)
class ThreadKey:
    """A Slack thread: workspace, channel and the ``ts`` of its root message."""

    team: str
    channel: str
    thread_ts: str

    def __str__(self) -> str:
        return f"{self.team}:{self.channel}:{self.thread_ts}"


class ThreadStore:
    """Slack threads and the conversations they continue, in the application database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def conversation(self, key: ThreadKey) -> str | None:
        """The conversation ``key`` continues, or ``None`` for a thread the bot never answered."""
        with self._database.session() as session:
            row = session.get(SlackThreadRow, (key.team, key.channel, key.thread_ts))
            return row.conversation_id if row is not None else None

    def remember(self, key: ThreadKey, assistant: str, conversation_id: str) -> None:
        """Record that ``key`` is ``conversation_id`` (a new thread, or a restarted one)."""
        with self._database.session() as session:
            row = session.get(SlackThreadRow, (key.team, key.channel, key.thread_ts))
            if row is None:
                session.add(
                    SlackThreadRow(
                        team=key.team,
                        channel=key.channel,
                        thread_ts=key.thread_ts,
                        assistant=assistant,
                        conversation_id=conversation_id,
                    )
                )
            else:
                row.assistant = assistant
                row.conversation_id = conversation_id

    def mark_handoff(self, key: ThreadKey, user: str) -> tuple[str, str] | None:
        """Record that ``user`` asked for a person in ``key``; returns the thread's assistant and
        conversation, or ``None`` for an unknown thread."""
        with self._database.session() as session:
            row = session.get(SlackThreadRow, (key.team, key.channel, key.thread_ts))
            if row is None:
                return None
            row.handoff_by = user
            row.handoff_at = utcnow()
            return row.assistant, row.conversation_id


def request_handoff(
    threads: ThreadStore, handoffs: HandoffStore, key: ThreadKey, user: str
) -> Handoff | None:
    """Record that ``user`` wants a person to take over the conversation of thread ``key``.

    The request goes to the same handoff queue as the website widget's (channel ``slack``,
    with the conversation's transcript), so owners see every request in one list. Returns
    the handoff, or ``None`` for a thread the bot never answered.
    """
    thread = threads.mark_handoff(key, user)
    if thread is None:
        return None
    assistant, conversation_id = thread
    try:
        handoff = handoffs.create(
            assistant,
            conversation_id=conversation_id,
            visitor=f"slack:{key.team}:{user}",
            channel="slack",
            message=f"Asked for a person in Slack thread {key}",
        )
    except NotFoundError:
        # The conversation was deleted since: the request still reaches the queue, untied.
        handoff = handoffs.create(
            assistant, visitor=f"slack:{key.team}:{user}", channel="slack", message=str(key)
        )
    logger.info("handoff %s requested in Slack thread %s", handoff.id, key)
    return handoff


class EventClaims(Protocol):
    """Claims Slack event ids so that each event is handled once."""

    async def claim(self, event_id: str) -> bool:
        """``True`` the first time ``event_id`` is claimed (within the TTL), else ``False``."""
        ...


class DatabaseEventClaims:
    """Event claims as rows of the application database (no Redis configured)."""

    def __init__(self, database: Database, ttl: timedelta = EVENT_TTL) -> None:
        self._database = database
        self._ttl = ttl

    def _claim(self, event_id: str) -> bool:
        now = utcnow()
        # Expired claims go first, so an id can be claimed again after the TTL.
        with self._database.session() as session:
            session.execute(delete(SlackEventRow).where(SlackEventRow.expires_at < now))
        try:
            with self._database.session() as session:
                session.add(SlackEventRow(event_id=event_id[:64], expires_at=now + self._ttl))
        except DatabaseError as exc:
            if is_duplicate_key(exc):
                return False
            raise
        return True

    async def claim(self, event_id: str) -> bool:
        """Insert the id's row; a duplicate key means another delivery took it first."""
        return await asyncio.to_thread(self._claim, event_id)


class RedisEventClaims:
    """Event claims as Redis keys with a TTL (``SET NX EX``), shared by every replica."""

    def __init__(self, url: str, ttl: timedelta = EVENT_TTL, prefix: str = "slack:event:") -> None:
        self._url = url
        self._ttl = ttl
        self._prefix = prefix
        self._clients: dict[asyncio.AbstractEventLoop, object] = {}

    async def claim(self, event_id: str) -> bool:
        """Set the id's key unless it exists."""
        import redis.asyncio as redis

        # A client per event loop: its connections belong to the loop that opened them.
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = redis.Redis.from_url(self._url)
            self._clients[loop] = client
        assert isinstance(client, redis.Redis)
        created = await client.set(
            self._prefix + event_id, b"1", nx=True, ex=int(self._ttl.total_seconds())
        )
        return bool(created)

    async def aclose(self) -> None:
        """Close the client of the running event loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()
