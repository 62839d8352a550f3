"""Who is calling: what authentication finds out and routes, visitors and metrics read.

A module of its own because both ``auth`` (which builds it) and ``visitors`` (which auth
calls, and which binds conversations to the caller) need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Caller"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the kind of key, the assistant it belongs to (``None`` for admin), the
    key's id, the request's ``Origin`` and the visitor id (widget) where given."""

    kind: Literal["admin", "secret", "public"]
    assistant: str | None
    key_id: str | None = None
    origin: str | None = None
    visitor: str | None = None
