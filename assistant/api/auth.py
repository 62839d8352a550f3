"""Who is calling, what they may do, and how often.

Every request names its key as ``Authorization: Bearer <key>``. The rules, in order:

1. No key. When ``ASSISTANT_ADMIN_KEY`` is unset (local development) a request from a loopback
   client (127.0.0.1, ::1) acts as admin, unless it carries an ``Origin`` header of a page that
   is not itself on this machine: another site open in the same browser must not be able to
   drive a local server. Otherwise → 401 ``authentication_failed``.
2. The admin key (compared in constant time) → admin: everything.
3. ``sk_`` / ``pk_`` keys are looked up by hash; unknown or revoked → 401.
4. Server-side keys (admin, secret) are refused with 403 when the request has an ``Origin``
   header, whatever its value: browsers send one and server code does not, and a key that
   works from a web page is a key published to every visitor. Web pages use public keys.
5. A secret key manages and chats with its own assistant only (another assistant → 403).
6. A public key only chats (``ChatAccess`` routes), with its own assistant, and only when the
   ``Origin`` header is one of the assistant's ``allowed_origins`` or ``https://`` one of its
   ``custom_domains`` (missing or other → 403). A same-origin request without ``Origin`` (a GET
   from a page this server serves, marked ``Sec-Fetch-Site: same-origin``) counts as coming
   from this server's own origin.
   Browsers set ``Origin`` themselves, so a page elsewhere cannot borrow the key; scripts can
   forge it, which is why public keys are rate-limited per visitor and can do nothing else.

Then the limits: each ``sk_`` / ``pk_`` key gets ``limits.requests_per_minute``; requests with a
public key are also counted per visitor (client address + the server-signed visitor token, see
``assistant.api.visitors``; the client-chosen ``X-Visitor-Id`` is ignored for them) against
``limits.visitor_requests_per_minute``. The admin key is not limited. The caller is stored in
``request.state.caller`` for the routers, logs and metrics.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from urllib.parse import urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from assistant.api.caller import Caller
from assistant.api.keys import ApiKey, KeyStore
from assistant.api.prometheus import metrics_of
from assistant.api.ratelimit import RateLimiter
from assistant.api.schemas import ASSISTANT_NAME_PATTERN
from assistant.api.visitors import resolve_visitor
from assistant.assistants import AssistantConfig
from assistant.core import Assistant
from assistant.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from assistant.settings import Settings

__all__ = [
    "VISITOR_HEADER",
    "Caller",
    "authenticate_admin",
    "authenticate_chat",
    "authenticate_manager",
    "is_loopback_host",
    "is_loopback_origin",
    "normalise_origin",
]

VISITOR_HEADER = "X-Visitor-Id"
"""Header naming the widget visitor (any stable random id the widget keeps), for per-visitor
rate limits and ``Caller.visitor``."""

_NAME = re.compile(ASSISTANT_NAME_PATTERN)
_LONGEST_VISITOR = 128


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def normalise_origin(origin: str) -> str:
    """``Origin`` as ``allowed_origins`` stores it: lowercase, no trailing slash."""
    return origin.strip().rstrip("/").lower()


def is_loopback_origin(origin: str) -> bool:
    """Whether ``origin`` is a page served from this machine (``http://localhost:3000``)."""
    try:
        return is_loopback_host(urlsplit(origin).hostname)
    except ValueError:
        return False


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "malformed Authorization header: send 'Authorization: Bearer <key>'"
        )
    return token.strip()


def _refuse_in_browser(origin: str | None, what: str) -> None:
    if origin is not None:
        raise PermissionDeniedError(
            f"{what} is refused from web pages (the request has an Origin header): keep it on "
            "servers, and give web pages a public key (pk_...) for the widget"
        )


async def _identify(request: Request) -> tuple[Caller, ApiKey | None]:
    """The caller behind the request's key (not yet checked against what it asks for)."""
    settings: Settings = request.app.state.settings
    core: Assistant = request.app.state.core
    origin = request.headers.get("origin")
    token = _bearer_token(request)
    if token is None:
        client = request.client.host if request.client else None
        if (
            settings.admin_key is None
            and is_loopback_host(client)
            and (origin is None or is_loopback_origin(origin))
        ):
            return Caller("admin", None, origin=origin), None
        raise AuthenticationError(
            "no API key: send 'Authorization: Bearer <key>' (the admin key, or a key made "
            "with POST /api/assistants/{name}/keys)"
        )
    admin_key = settings.admin_key
    if admin_key is not None and hmac.compare_digest(
        token.encode("utf-8"), admin_key.get_secret_value().encode("utf-8")
    ):
        _refuse_in_browser(origin, "the admin key")
        return Caller("admin", None, origin=origin), None
    key = await run_in_threadpool(KeyStore(core.database).verify, token)
    if key is None:
        raise AuthenticationError("unknown or revoked API key")
    if key.kind == "secret":
        _refuse_in_browser(origin, "a secret key")
    visitor = request.headers.get(VISITOR_HEADER.lower())
    if visitor is not None:
        visitor = visitor.strip()[:_LONGEST_VISITOR] or None
    return Caller(key.kind, key.assistant, key.id, origin=origin, visitor=visitor), key


def _same_origin_page(request: Request) -> str | None:
    """This server's own origin, for a request a browser says comes from one of its pages.

    Browsers leave ``Origin`` off same-origin GET requests (the assistant's full page reading
    its config), but mark every request with ``Sec-Fetch-Site``, which pages cannot set. A
    script can forge both headers, as it can forge ``Origin``; public keys stay chat-only and
    rate-limited for that reason.
    """
    if request.headers.get("sec-fetch-site") != "same-origin":
        return None
    host = request.headers.get("host")
    return f"{request.url.scheme}://{host}" if host else None


def _origin_allowed(origin: str, config: AssistantConfig) -> bool:
    """One of ``allowed_origins``, or ``https://`` one of the assistant's custom domains."""
    if normalise_origin(origin) in config.allowed_origins:
        return True
    try:
        parts = urlsplit(normalise_origin(origin))
    except ValueError:
        return False
    return (
        parts.scheme == "https" and parts.port is None and parts.hostname in config.custom_domains
    )


def _check_name(name: str) -> None:
    # No assistant can have another name, and the core would take it for a setting error.
    if not _NAME.match(name):
        raise NotFoundError(f"no assistant named {name!r}")


async def _config(request: Request, name: str) -> AssistantConfig:
    core: Assistant = request.app.state.core
    return await run_in_threadpool(core.config, name)


async def _limit(request: Request, scope: str, identity: tuple[str, ...], per_minute: int) -> None:
    limiter: RateLimiter = request.app.state.rate_limiter
    try:
        await limiter.hit(scope, identity, per_minute)
    except RateLimitedError:
        metrics_of(request).observe_rate_limited(scope)
        raise


def _remember(request: Request, caller: Caller) -> Caller:
    request.state.caller = caller
    return caller


async def authenticate_admin(request: Request) -> Caller:
    """The admin (admin key, or a loopback client when no admin key is configured).

    Raises:
        AuthenticationError: no key, or an unknown or revoked one.
        PermissionDeniedError: an assistant's key, or the admin key sent from a web page.
    """
    caller, _ = await _identify(request)
    if caller.kind != "admin":
        raise PermissionDeniedError("this needs the admin key (ASSISTANT_ADMIN_KEY)")
    return _remember(request, caller)


async def authenticate_manager(request: Request, name: str) -> Caller:
    """The admin, or a secret key of assistant ``name`` (rate-limited per key).

    Raises:
        NotFoundError: ``name`` is not a possible assistant name.
        AuthenticationError: no key, or an unknown or revoked one.
        PermissionDeniedError: a public key, or a key of another assistant.
        RateLimitedError: the key's requests per minute are spent.
    """
    _check_name(name)
    caller, key = await _identify(request)
    if caller.kind == "admin" or key is None:
        return _remember(request, caller)
    if key.kind != "secret":
        raise PermissionDeniedError(
            "a public key can only chat; manage the assistant with a secret key"
        )
    if key.assistant != name:
        raise PermissionDeniedError(f"this key belongs to another assistant, not {name!r}")
    config = await _config(request, name)
    await _limit(request, "key", (key.id,), config.limits.requests_per_minute)
    return _remember(request, caller)


async def authenticate_chat(request: Request, name: str) -> Caller:
    """The admin, a secret key of ``name``, or a public key of ``name`` sent from one of its
    allowed origins; keys are rate-limited per key, public keys also per visitor.

    Raises:
        NotFoundError: ``name`` is not a possible assistant name.
        AuthenticationError: no key, or an unknown or revoked one.
        PermissionDeniedError: a key of another assistant, or a public key without an allowed
            ``Origin``.
        RateLimitedError: the key's or the visitor's requests per minute are spent.
    """
    _check_name(name)
    caller, key = await _identify(request)
    if caller.kind == "admin" or key is None:
        return _remember(request, caller)
    if key.assistant != name:
        raise PermissionDeniedError(f"this key belongs to another assistant, not {name!r}")
    config = await _config(request, name)
    if key.kind == "public":
        origin = caller.origin or _same_origin_page(request)
        if origin is None or not _origin_allowed(origin, config):
            raise PermissionDeniedError(
                f"origin {origin or '(none)'} may not use assistant {name!r}'s public key; "
                "add it to the assistant's allowed_origins"
            )
    if key.kind == "public":
        # The visitor first: one visitor's refused requests do not spend the whole site's budget.
        # The visitor is the one the server-signed token names, never a client-chosen id.
        caller, identity = await resolve_visitor(request, name, caller)
        await _limit(request, "visitor", identity, config.limits.visitor_requests_per_minute)
    await _limit(request, "key", (key.id,), config.limits.requests_per_minute)
    return _remember(request, caller)
