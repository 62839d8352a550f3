"""API keys of assistants: created once, stored hashed, verified per request, revocable.

A key is ``sk_`` (secret, server to server) or ``pk_`` (public, the website widget) followed by
43 random URL-safe characters (256 bits). Only its SHA-256 is stored: keys are random, not
passwords, so a fast hash is enough and a lookup by hash needs no constant-time compare. The
first characters (``prefix``) are kept in clear so people can tell their keys apart.

>>> store = KeyStore(database)  # doctest: +SKIP
>>> info, key = store.create("help-centre", "public", "website")  # doctest: +SKIP
>>> store.verify(key).assistant  # doctest: +SKIP
'help-centre'
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from sqlalchemy import delete, select

from assistant.database.engine import Database
from assistant.database.models import ApiKeyRow, utcnow
from assistant.errors import InvalidInputError, NotFoundError

__all__ = ["KEY_PREFIXES", "ApiKey", "KeyKind", "KeyStore", "hash_key"]

KeyKind = Literal["secret", "public"]

KEY_PREFIXES: dict[KeyKind, str] = {"secret": "sk_", "public": "pk_"}
"""What each kind of key starts with."""

_SHOWN_CHARACTERS = 8  # random characters kept in ``prefix`` after ``sk_`` / ``pk_``
_LONGEST_KEY = 128  # anything longer is not one of ours; refused without a database query


def hash_key(plaintext: str) -> str:
    """The stored form of a key: its SHA-256, hex."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as stored, without its secret part."""

    id: str
    assistant: str
    kind: KeyKind
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key has been revoked."""
        return self.revoked_at is not None

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        """The key held by a database row."""
        return cls(
            id=row.id,
            assistant=row.assistant,
            kind=cast(KeyKind, row.kind),
            prefix=row.prefix,
            label=row.label,
            created_at=row.created_at or utcnow(),
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )


class KeyStore:
    """Assistants' keys in the application database.

    ``touch_interval`` bounds how often a verified key's ``last_used_at`` is written (once a
    minute by default), so a busy key costs reads, not a write per request. ``clock`` gives the
    current time (tests pass their own).
    """

    def __init__(
        self,
        database: Database,
        *,
        touch_interval: timedelta = timedelta(minutes=1),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._touch_interval = touch_interval
        self._clock = clock

    def create(self, assistant: str, kind: KeyKind, label: str = "") -> tuple[ApiKey, str]:
        """A new key for ``assistant``: what is stored, and the key itself (shown once).

        Raises:
            InvalidInputError: ``kind`` is not ``secret`` or ``public``.
        """
        if kind not in KEY_PREFIXES:
            raise InvalidInputError(f"a key is 'secret' or 'public', not {kind!r}")
        plaintext = KEY_PREFIXES[kind] + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            assistant=assistant,
            kind=kind,
            prefix=plaintext[: len(KEY_PREFIXES[kind]) + _SHOWN_CHARACTERS],
            key_hash=hash_key(plaintext),
            label=label,
            created_at=self._clock(),
        )
        with self._database.session() as session:
            session.add(row)
            session.flush()
            key = ApiKey.from_row(row)
        return key, plaintext

    def verify(self, plaintext: str) -> ApiKey | None:
        """The key ``plaintext`` is, or ``None`` when it is unknown or revoked.

        Records the use in ``last_used_at`` (at most once per ``touch_interval``).
        """
        if len(plaintext) > _LONGEST_KEY or not plaintext.startswith(tuple(KEY_PREFIXES.values())):
            return None
        digest = hash_key(plaintext)
        with self._database.session() as session:
            row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)).first()
            if row is None or row.revoked_at is not None:
                return None
            now = self._clock()
            last_used = row.last_used_at
            if last_used is None or now - last_used >= self._touch_interval:
                row.last_used_at = now
            return ApiKey.from_row(row)

    def get(self, assistant: str, key_id: str) -> ApiKey:
        """One of ``assistant``'s keys.

        Raises:
            NotFoundError: ``assistant`` has no key ``key_id``.
        """
        with self._database.session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.assistant != assistant:
                raise NotFoundError(f"assistant {assistant!r} has no key {key_id!r}")
            return ApiKey.from_row(row)

    def list(self, assistant: str) -> list[ApiKey]:
        """``assistant``'s keys, oldest first, revoked ones included."""
        with self._database.session() as session:
            rows = session.scalars(
                select(ApiKeyRow)
                .where(ApiKeyRow.assistant == assistant)
                .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            ).all()
            return [ApiKey.from_row(row) for row in rows]

    def revoke(self, assistant: str, key_id: str) -> ApiKey:
        """Revoke one of ``assistant``'s keys (again is a no-op); it is refused from now on.

        Raises:
            NotFoundError: ``assistant`` has no key ``key_id``.
        """
        with self._database.session() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.assistant != assistant:
                raise NotFoundError(f"assistant {assistant!r} has no key {key_id!r}")
            if row.revoked_at is None:
                row.revoked_at = self._clock()
            return ApiKey.from_row(row)

    def delete_all(self, assistant: str) -> int:
        """Delete every key of ``assistant`` (when the assistant is deleted); returns how many."""
        with self._database.session() as session:
            result = session.execute(delete(ApiKeyRow).where(ApiKeyRow.assistant == assistant))
            return int(getattr(result, "rowcount", 0) or 0)
