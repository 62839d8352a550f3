"""Admin console sessions: a signed, expiring cookie standing for the admin key or one
assistant's secret key, so the dashboard's browser requests never carry the key itself.

The cookie holds ``<payload>.<HMAC-SHA256>`` under the server's secret (the one visitor tokens
use, ``assistant.api.visitors.load_secret``), with the caller's kind, assistant, key id and
expiry; never the key. It is ``HttpOnly`` and ``SameSite=Strict`` (``Secure`` over https).

It is accepted on a few ``GET`` routes only (the analytics and the assistants list), and only
when the request has no ``Authorization`` header and either no ``Origin`` or this server's own:
with ``SameSite=Strict`` and read-only routes, another site can neither send it nor change
anything with it. A secret key's session ends when the key is revoked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from assistant.api.auth import authenticate_admin, authenticate_manager, normalise_origin
from assistant.api.caller import Caller
from assistant.api.keys import KeyStore
from assistant.api.visitors import load_secret
from assistant.core import Assistant
from assistant.errors import AuthenticationError, NotFoundError, PermissionDeniedError

__all__ = [
    "COOKIE_NAME",
    "SESSION_SECONDS",
    "Session",
    "SessionAdminAccess",
    "SessionManageAccess",
    "clear_cookie",
    "same_origin",
    "session_of",
    "set_cookie",
]

COOKIE_NAME = "assistant_admin"
SESSION_SECONDS = 8 * 3600
"""How long a console session lasts (a working day); logging in again starts a new one."""

_STATE_KEY = "admin_session_secret"


@dataclass(frozen=True, slots=True)
class Session:
    """Who a console session stands for, and until when (Unix seconds)."""

    kind: Literal["admin", "secret"]
    assistant: str | None
    key_id: str | None
    expires: int

    def caller(self) -> Caller:
        """The caller the session acts as."""
        return Caller(self.kind, self.assistant, self.key_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    # Domain-separated from visitor tokens, which share the secret.
    message = b"admin-session\x1f" + payload.encode("ascii")
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())


def encode(secret: bytes, session: Session) -> str:
    """The cookie value of ``session``."""
    body = {"k": session.kind, "a": session.assistant, "i": session.key_id, "e": session.expires}
    payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_sign(secret, payload)}"


def decode(secret: bytes, value: str | None, now: float | None = None) -> Session | None:
    """The session in cookie ``value`` when its signature holds and it has not expired."""
    if not value or len(value) > 1024:
        return None
    payload, _, signature = value.partition(".")
    try:
        if not hmac.compare_digest(signature.encode("ascii"), _sign(secret, payload).encode()):
            return None
        body = json.loads(_unb64(payload))
    except (ValueError, UnicodeError):
        return None
    if not isinstance(body, dict) or body.get("k") not in ("admin", "secret"):
        return None
    expires = body.get("e")
    if not isinstance(expires, int) or expires <= (time.time() if now is None else now):
        return None
    return Session(body["k"], body.get("a"), body.get("i"), expires)


async def _secret(request: Request) -> bytes:
    secret: bytes | None = getattr(request.app.state, _STATE_KEY, None)
    if secret is None:
        core: Assistant = request.app.state.core
        secret = await run_in_threadpool(load_secret, request.app.state.settings, core.database)
        setattr(request.app.state, _STATE_KEY, secret)
    return secret


def same_origin(request: Request) -> bool:
    """Whether the request has no ``Origin`` header or this server's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return normalise_origin(origin) == normalise_origin(own)


def _still_valid(core: Assistant, session: Session) -> bool:
    if session.kind == "admin":
        return True
    if session.assistant is None or session.key_id is None:
        return False
    try:
        key = KeyStore(core.database).get(session.assistant, session.key_id)
    except NotFoundError:
        return False
    return not key.revoked and key.kind == "secret"


async def session_of(request: Request) -> Session | None:
    """The request's valid console session, if it has one (revoked keys' sessions are not)."""
    session = decode(await _secret(request), request.cookies.get(COOKIE_NAME))
    if session is None:
        return None
    core: Assistant = request.app.state.core
    return session if await run_in_threadpool(_still_valid, core, session) else None


async def new_cookie(request: Request, session: Session) -> str:
    """The signed cookie value of ``session`` under this server's secret."""
    return encode(await _secret(request), session)


def set_cookie(request: Request, response: Response, value: str) -> None:
    """Set the session cookie: HttpOnly, SameSite=Strict, Secure over https."""
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response) -> None:
    """Expire the session cookie."""
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def _cookie_caller(request: Request) -> Caller | None:
    # A request with a key is judged by its key alone; a cookie never adds to it.
    if request.method != "GET" or "authorization" in request.headers:
        return None
    if COOKIE_NAME not in request.cookies:
        return None
    if not same_origin(request):
        raise PermissionDeniedError("the console session is only accepted from its own pages")
    session = await session_of(request)
    if session is None:
        raise AuthenticationError("the console session has expired: log in again at /admin")
    caller = session.caller()
    request.state.caller = caller
    return caller


async def session_manage_access(request: Request, name: str) -> Caller:
    """The console session (admin, or ``name``'s secret key), else ``ManageAccess``'s rules."""
    caller = await _cookie_caller(request)
    if caller is None:
        return await authenticate_manager(request, name)
    if caller.kind != "admin" and caller.assistant != name:
        raise PermissionDeniedError(f"this session belongs to another assistant, not {name!r}")
    return caller


async def session_admin_access(request: Request) -> Caller:
    """An admin console session, else ``AdminAccess``'s rules."""
    caller = await _cookie_caller(request)
    if caller is None:
        return await authenticate_admin(request)
    if caller.kind != "admin":
        raise PermissionDeniedError("this needs the admin key (ASSISTANT_ADMIN_KEY)")
    return caller


SessionManageAccess = Annotated[Caller, Depends(session_manage_access)]
SessionAdminAccess = Annotated[Caller, Depends(session_admin_access)]
