"""Assistants, their keys and their widget: ``/api/assistants``.

An assistant exists when it has stored settings or a knowledge base (the command line makes
knowledge bases on first use, without settings); both share its name. Creating one stores its
settings and makes its empty knowledge base, so it can answer ("I don't know") at once.
Deleting one removes everything it owns: knowledge base, settings, keys, conversations with
their turns and feedback, and jobs.
"""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Response, status
from sqlalchemy import delete, select

from assistant.api.deps import AdminAccess, CoreDep, ManageAccess
from assistant.api.keys import ApiKey, KeyStore
from assistant.api.problems import error_responses
from assistant.api.schemas import (
    AssistantCreate,
    AssistantList,
    AssistantPublic,
    AssistantUpdate,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyPublic,
)
from assistant.api.sessions import SessionAdminAccess
from assistant.assistants import AssistantConfig
from assistant.core import Assistant
from assistant.database.models import (
    ApiKeyRow,
    AssistantRow,
    ConversationRow,
    FeedbackRow,
    JobRow,
    TurnRow,
)
from assistant.errors import ConflictError, NotFoundError
from assistant.knowledge.vector_store import ChromaStore

__all__ = ["delete_assistant", "require_assistant", "router"]

# Every route authenticates, and reads the application database.
router = APIRouter(
    prefix="/api/assistants", tags=["assistants"], responses=error_responses(401, 403, 503)
)
# The routes that name an assistant; 429 where an assistant's key may call (rate-limited).
_NAMED = error_responses(404, 422)
_NAMED_LIMITED = error_responses(404, 422, 429)
# The routes that read a JSON body: unreadable (400), too large (413), invalid (422).
_JSON_BODY = error_responses(400, 413, 422)


def _exists(core: Assistant, name: str) -> bool:
    return core.registry.exists(name) or name in core.knowledge_bases()


def require_assistant(core: Assistant, name: str) -> None:
    """Raise ``NotFoundError`` unless assistant ``name`` exists."""
    if not _exists(core, name):
        raise NotFoundError(f"no assistant named {name!r}; create it with POST /api/assistants")


def _public(name: str, row: AssistantRow | None) -> AssistantPublic:
    if row is None:
        return AssistantPublic(name=name, config=AssistantConfig())
    return AssistantPublic(
        name=name,
        config=AssistantConfig.model_validate(row.config),
        created_at=row.created_at,
    )


def _read(core: Assistant, name: str) -> AssistantPublic:
    with core.database.session() as session:
        return _public(name, session.get(AssistantRow, name))


def _key_public(key: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=key.id,
        kind=key.kind,
        prefix=key.prefix,
        label=key.label,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


def delete_assistant(core: Assistant, name: str) -> None:
    """Remove ``name``'s rows from the application database, then its knowledge base.

    The rows go first, so its keys stop working at once; should the vector store fail after,
    the knowledge base remains and deleting again finishes the job.
    """
    with core.database.session() as session:
        session.execute(delete(FeedbackRow).where(FeedbackRow.assistant == name))
        session.execute(delete(TurnRow).where(TurnRow.assistant == name))
        session.execute(delete(ConversationRow).where(ConversationRow.assistant == name))
        session.execute(delete(ApiKeyRow).where(ApiKeyRow.assistant == name))
        session.execute(delete(JobRow).where(JobRow.assistant == name))
        session.execute(delete(AssistantRow).where(AssistantRow.name == name))
    if name in core.knowledge_bases():
        # Dropping needs only the client and the name; opening the store would load the
        # encoder and refuse a knowledge base built with another embedding model.
        ChromaStore(core.chroma, None, name).drop()
    # The core keeps each opened knowledge base (its Chroma collection, BM25 index and head);
    # a stale one would serve a deleted collection to an assistant re-created under this name.
    with core._lock:
        core._knowledge_bases.pop(name, None)
    data_dir = core.settings.data_dir
    for folder in (data_dir / "lexical" / name, data_dir / "heads" / name):
        shutil.rmtree(folder, ignore_errors=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AssistantPublic,
    responses=_JSON_BODY | error_responses(409),
)
def create_assistant(body: AssistantCreate, core: CoreDep, caller: AdminAccess) -> AssistantPublic:
    """Create an assistant and its empty knowledge base (admin); 409 if the name is taken."""
    if _exists(core, body.name):
        raise ConflictError(f"an assistant named {body.name!r} exists already")
    core.ingest_connectors([], kb=body.name)
    core.registry.put(body.name, body.config)
    return _read(core, body.name)


@router.get("", response_model=AssistantList)
def list_assistants(core: CoreDep, caller: SessionAdminAccess) -> AssistantList:
    """Every assistant, by name (admin)."""
    with core.database.session() as session:
        rows = {row.name: row for row in session.scalars(select(AssistantRow)).all()}
    names = sorted(set(rows) | set(core.knowledge_bases()))
    return AssistantList(assistants=[_public(name, rows.get(name)) for name in names])


@router.get("/{name}", response_model=AssistantPublic, responses=_NAMED_LIMITED)
def get_assistant(name: str, core: CoreDep, caller: ManageAccess) -> AssistantPublic:
    """One assistant's settings (admin, or its secret key)."""
    require_assistant(core, name)
    return _read(core, name)


@router.patch("/{name}", response_model=AssistantPublic, responses=_NAMED | _JSON_BODY)
def update_assistant(
    name: str, body: AssistantUpdate, core: CoreDep, caller: AdminAccess
) -> AssistantPublic:
    """Change settings by section; fields left out keep their values (admin)."""
    require_assistant(core, name)
    changes = body.model_dump(exclude_none=True)
    if changes:
        core.configure(name, **changes)
    return _read(core, name)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=_NAMED)
def remove_assistant(name: str, core: CoreDep, caller: AdminAccess) -> Response:
    """Delete an assistant with its knowledge base, keys, conversations and jobs (admin)."""
    require_assistant(core, name)
    delete_assistant(core, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{name}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
    responses=_NAMED | _JSON_BODY,
)
def create_key(name: str, body: KeyCreate, core: CoreDep, caller: AdminAccess) -> KeyCreated:
    """Make a key for the assistant; the key is in this answer only (admin)."""
    require_assistant(core, name)
    key, plaintext = KeyStore(core.database).create(name, body.kind, body.label)
    return KeyCreated(**_key_public(key).model_dump(), key=plaintext)


@router.get("/{name}/keys", response_model=KeyList, responses=_NAMED)
def list_keys(name: str, core: CoreDep, caller: AdminAccess) -> KeyList:
    """The assistant's keys without their secret part, revoked ones included (admin)."""
    require_assistant(core, name)
    return KeyList(keys=[_key_public(key) for key in KeyStore(core.database).list(name)])


@router.delete("/{name}/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NAMED)
def revoke_key(name: str, key_id: str, core: CoreDep, caller: AdminAccess) -> Response:
    """Revoke one of the assistant's keys; it is refused from the next request on (admin)."""
    KeyStore(core.database).revoke(name, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
