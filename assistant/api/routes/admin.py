"""The admin console: ``/admin``, a login form and the analytics dashboard.

Logging in posts the admin key or an assistant's secret key to ``/admin/session``, which
answers with a session cookie (``assistant.api.sessions``) and a redirect; the key itself is
never stored in the cookie, the URL or web storage. The dashboard script (the content-hashed
``dashboard`` chunk of the widget build) then reads the analytics with the cookie.
Pages carry a strict Content-Security-Policy: no inline script or style.
"""

from __future__ import annotations

import hmac
import json
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from assistant.api.keys import KeyStore
from assistant.api.routes.widget import widget_dir
from assistant.api.sessions import (
    SESSION_SECONDS,
    Session,
    clear_cookie,
    new_cookie,
    same_origin,
    session_of,
    set_cookie,
)
from assistant.core import Assistant
from assistant.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from assistant.settings import Settings

__all__ = ["router"]

router = APIRouter(prefix="/admin", include_in_schema=False)

_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _POLICY,
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it, browsers send ``Origin: null`` on the sign-in form's POST,
    # and the origin check could not tell this page from any other.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_LONGEST_FORM = 4096

_CSS = (
    "body{margin:0;font:15px/1.45 system-ui,sans-serif;background:#f6f7f9;color:#17191c}"
    ".login{max-width:22rem;margin:12vh auto;padding:1.5rem;background:#fff;border-radius:8px;"
    "box-shadow:0 1px 4px #0002}.login label{display:block;margin:.75rem 0 .25rem}"
    ".login input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit}"
    ".login button{margin-top:1rem;padding:.5rem 1rem;font:inherit}"
    ".error{color:#a4161a}"
)


def _html(title: str, body: str, status: int = 200) -> Response:
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/admin/console.css">
</head>
<body>
{body}
</body>
</html>
"""
    return Response(page, status, media_type="text/html; charset=utf-8", headers=_HEADERS)


def _login_page(error: str | None = None, status: int = 200) -> Response:
    # Only fixed strings reach the page; nothing the visitor typed is echoed.
    message = f'<p class="error" role="alert">{error}</p>' if error else ""
    return _html(
        "Sign in · Assistant console",
        f"""<main class="login">
<h1>Assistant console</h1>
{message}<form method="post" action="/admin/session">
<label for="key">Admin key or secret key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>""",
        status,
    )


def _dashboard_file() -> str:
    try:
        manifest = json.loads((widget_dir() / "manifest.json").read_text(encoding="utf-8"))
        return str(manifest["dashboard"]["file"])
    except (OSError, ValueError, KeyError) as error:
        raise NotFoundError(
            "the dashboard is not built: run `npm ci && npm run build` in frontend/"
        ) from error


@router.get("")
async def console(request: Request) -> Response:
    """The login form, or the dashboard when the browser has a session."""
    session = await session_of(request)
    if session is None:
        return _login_page()
    script = _dashboard_file()
    return _html(
        "Analytics · Assistant console",
        f"""<div id="dashboard" data-kind="{session.kind}"></div>
<form method="post" action="/admin/logout" class="logout"><button type="submit">Sign out</button></form>
<script type="module" src="/widget/{script}"></script>""",
    )


@router.get("/console.css")
def console_styles() -> Response:
    """The login page's few styles (the dashboard brings its own)."""
    return Response(
        _CSS, media_type="text/css; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


def _check_key(settings: Settings, core: Assistant, key: str) -> Session:
    expires = int(time.time()) + SESSION_SECONDS
    admin_key = settings.admin_key
    if admin_key is not None and hmac.compare_digest(
        key.encode("utf-8"), admin_key.get_secret_value().encode("utf-8")
    ):
        return Session("admin", None, None, expires)
    found = KeyStore(core.database).verify(key)
    if found is None:
        raise AuthenticationError("unknown or revoked key")
    if found.kind != "secret":
        raise PermissionDeniedError("a public key cannot sign in; use a secret key")
    return Session("secret", found.assistant, found.id, expires)


@router.post("/session")
async def login(request: Request) -> Response:
    """Exchange a key (form field ``key``) for a session cookie; back to ``/admin``."""
    if not same_origin(request):
        return _login_page("Sign in from this server's own page.", 403)
    body = await request.body()
    if len(body) > _LONGEST_FORM:
        return _login_page("That key is too long.", 401)
    key = (parse_qs(body.decode("utf-8", "replace")).get("key") or [""])[0].strip()
    try:
        session = await run_in_threadpool(
            _check_key, request.app.state.settings, request.app.state.core, key
        )
    except (AuthenticationError, PermissionDeniedError):
        return _login_page("That key cannot sign in: use the admin key or a secret key.", 401)
    response = Response(status_code=303, headers={"Location": "/admin", **_HEADERS})
    set_cookie(request, response, await new_cookie(request, session))
    return response


@router.get("/session")
async def whoami(request: Request) -> dict[str, str | None]:
    """Who the browser's session stands for (the dashboard picks its assistants by it)."""
    session = await session_of(request)
    if session is None or not same_origin(request):
        raise AuthenticationError("no console session: sign in at /admin")
    return {"kind": session.kind, "assistant": session.assistant}


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session: the cookie is cleared; back to the login form."""
    response = Response(status_code=303, headers={"Location": "/admin", **_HEADERS})
    clear_cookie(request, response)
    return response
