"""Dependencies shared by the routers: the core ``Assistant``, settings, and who is calling.

Routers declare access with the ``Annotated`` aliases below, never by reading headers
themselves, so every route is authenticated and rate-limited the same way:

- ``AdminAccess``: the admin key (management of assistants and keys).
- ``ManageAccess``: the admin key or the path assistant's secret key.
- ``ChatAccess``: those, or the path assistant's public widget key sent from one of its
  allowed origins (checked server-side), subject to per-visitor rate limits.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assistant.api.auth import Caller, authenticate_admin, authenticate_chat, authenticate_manager
from assistant.core import Assistant
from assistant.settings import Settings

__all__ = [
    "AdminAccess",
    "Caller",
    "ChatAccess",
    "CoreDep",
    "ManageAccess",
    "SettingsDep",
    "get_core",
    "get_settings",
]


def get_core(request: Request) -> Assistant:
    """The application's ``Assistant`` (built once, in the lifespan)."""
    core: Assistant = request.app.state.core
    return core


def get_settings(request: Request) -> Settings:
    """The application's settings."""
    settings: Settings = request.app.state.settings
    return settings


CoreDep = Annotated[Assistant, Depends(get_core)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def admin_access(request: Request) -> Caller:
    """Require the admin key."""
    return await authenticate_admin(request)


async def manage_access(request: Request, name: str) -> Caller:
    """Require the admin key or assistant ``name``'s secret key."""
    return await authenticate_manager(request, name)


async def chat_access(request: Request, name: str) -> Caller:
    """Require a key that may chat with assistant ``name`` (public keys: allowed origins only)."""
    return await authenticate_chat(request, name)


AdminAccess = Annotated[Caller, Depends(admin_access)]
ManageAccess = Annotated[Caller, Depends(manage_access)]
ChatAccess = Annotated[Caller, Depends(chat_access)]
