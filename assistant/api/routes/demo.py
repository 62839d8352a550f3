"""The demo chat page at ``/``: a small page that streams answers from the chat API.

The page is static (HTML, CSS and script from the package) under a strict content security
policy: scripts only from this origin, no inline script, and every server-provided string is
inserted as text.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_STATIC = Path(__file__).resolve().parents[1] / "static"
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' https: data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_TYPES = {
    "demo.html": "text/html; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}


@lru_cache(maxsize=len(_TYPES))
def _read(name: str) -> bytes:
    return (_STATIC / name).read_bytes()


def _asset(name: str) -> Response:
    return Response(
        _read(name),
        media_type=_TYPES[name],
        headers={
            "Content-Security-Policy": _POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@router.get("/")
def demo_page() -> Response:
    """The demo chat page."""
    return _asset("demo.html")


@router.get("/demo.js")
def demo_script() -> Response:
    """The demo page's script."""
    return _asset("demo.js")


@router.get("/demo.css")
def demo_styles() -> Response:
    """The demo page's styles."""
    return _asset("demo.css")
