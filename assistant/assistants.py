"""Per-assistant settings (brand, provider, retrieval, access) and where they are kept.

An assistant and its knowledge base share one name. Its ``AssistantConfig`` lives in the
application database; fields left unset fall back to the process ``Settings``, so a deployment
configured by environment alone needs no per-assistant rows at all.
"""

from __future__ import annotations

from typing import Literal

from assistant.config import (
    AssistantConfig,
    BrandConfig,
    LimitsConfig,
    ProviderConfig,
    RetrievalConfig,
)
from assistant.database.engine import Database
from assistant.database.models import AssistantRow
from assistant.errors import InvalidInputError, NotFoundError

__all__ = [
    "AssistantConfig",
    "AssistantRegistry",
    "BrandConfig",
    "LimitsConfig",
    "ProviderConfig",
    "RetrievalConfig",
]

ConfigSection = Literal[
    "brand", "answering", "retrieval", "limits", "webhook", "handoff", "lead_form"
]


class AssistantRegistry:
    """Reads and writes assistants' configurations in the application database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def get(self, name: str) -> AssistantConfig:
        """The configuration of ``name``; defaults when it has none stored."""
        with self._database.session() as session:
            row = session.get(AssistantRow, name)
            return AssistantConfig.model_validate(row.config) if row else AssistantConfig()

    def exists(self, name: str) -> bool:
        """Whether ``name`` has a stored configuration."""
        with self._database.session() as session:
            return session.get(AssistantRow, name) is not None

    def names(self) -> list[str]:
        """Names of the assistants with a stored configuration, sorted."""
        with self._database.session() as session:
            return sorted(row.name for row in session.query(AssistantRow).all())

    def put(self, name: str, config: AssistantConfig) -> AssistantConfig:
        """Store ``config`` for ``name`` (creating the row on first use)."""
        with self._database.session() as session:
            row = session.get(AssistantRow, name)
            data = config.model_dump(mode="json")
            if row is None:
                session.add(AssistantRow(name=name, config=data))
            else:
                row.config = data
        return config

    def update(self, name: str, changes: dict[str, object]) -> AssistantConfig:
        """Merge ``changes`` (nested by section, e.g. ``{"brand": {"tone": "..."}}``) and store.

        Raises:
            InvalidInputError: a change names an unknown field or has an invalid value.
        """
        current = self.get(name).model_dump(mode="json")
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(current.get(key), dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
        try:
            config = AssistantConfig.model_validate(current)
        except ValueError as exc:
            raise InvalidInputError(f"invalid assistant settings: {exc}") from exc
        return self.put(name, config)

    def delete(self, name: str) -> None:
        """Remove ``name``'s stored configuration.

        Raises:
            NotFoundError: nothing is stored for ``name``.
        """
        with self._database.session() as session:
            row = session.get(AssistantRow, name)
            if row is None:
                raise NotFoundError(f"no assistant named {name!r}")
            session.delete(row)
