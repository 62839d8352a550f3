"""Custom domains: ``help.example.com`` serving one assistant's full page at ``/``.

An assistant lists its host names in ``custom_domains`` (pointed at this server by DNS). A
request whose ``Host`` is one of them gets that assistant's full page at ``/`` (the same page
as ``/a/{name}``; a ``?key=pk_...`` is passed on), while the widget's files and API routes work
as on any host; ``/a/{other}`` there is 404, so one site's domain never shows another's
assistant. The page's origin counts as one of the assistant's allowed origins.

Which hosts are the server's own: loopback names, IP addresses, and ``ASSISTANT_SERVER_HOSTS``.
When that setting is given, a request for any other host that no assistant claims is refused
with 421 Misdirected Request (a stray DNS record or a spoofed ``Host`` gets nothing); unset,
every host not claimed is served as the server's own, as before custom domains existed.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.api.problems import ApiProblem, problem_response
from assistant.assistants import AssistantRegistry
from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.settings import Settings

__all__ = ["CustomDomainMiddleware", "DomainMap", "request_host"]

logger = logging.getLogger(__name__)

# Claimed domains change rarely; a found one is trusted this long before it is read again.
_FRESH_SECONDS = 10.0


def request_host(scope: Scope) -> str:
    """The request's ``Host`` without its port, lowercase (``""`` when absent)."""
    host = Headers(scope=scope).get("host", "").strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class DomainMap:
    """Which assistant claims which host name, read from the assistants' settings.

    A host found is served from memory for ``_FRESH_SECONDS``; a host not found is looked up
    again each time, so a domain just added works on its very first request.
    """

    def __init__(self, registry: Callable[[], AssistantRegistry]) -> None:
        self._registry = registry
        self._domains: dict[str, str] = {}
        self._read_at = 0.0

    def _reload(self) -> None:
        registry = self._registry()
        domains: dict[str, str] = {}
        for name in registry.names():
            for domain in registry.get(name).custom_domains:
                domains.setdefault(domain, name)
        self._domains = domains
        self._read_at = time.monotonic()

    def assistant_of(self, host: str) -> str | None:
        """The assistant that claims ``host``, if any."""
        name = self._domains.get(host)
        if name is None or time.monotonic() - self._read_at > _FRESH_SECONDS:
            self._reload()
            name = self._domains.get(host)
        return name


class CustomDomainMiddleware:
    """Serves custom domains' full pages at ``/`` and refuses hosts nobody claims."""

    def __init__(self, app: ASGIApp, settings: Settings, core: Callable[[], Assistant]) -> None:
        self.app = app
        self.own_hosts = {"localhost", *(host.lower() for host in settings.server_hosts)}
        self.refuse_unknown = bool(settings.server_hosts)
        self.domains = DomainMap(lambda: core().registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route a custom domain's ``/`` to its assistant's page; refuse unknown hosts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = request_host(scope)
        if not host or host in self.own_hosts or _is_address(host):
            await self.app(scope, receive, send)
            return
        try:
            name = await run_in_threadpool(self.domains.assistant_of, host)
        except AssistantError as exc:
            logger.warning("cannot read the custom domains: %s", type(exc).__name__)
            name = None
        if name is None:
            if self.refuse_unknown:
                problem = ApiProblem(
                    421,
                    "misdirected_request",
                    f"this server does not serve {host!r}: add it to an assistant's "
                    "custom_domains, or to ASSISTANT_SERVER_HOSTS",
                )
                await problem_response(problem)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/a/"):
            problem = ApiProblem(404, "not_found", f"{host} serves only its own assistant at /")
            await problem_response(problem)(scope, receive, send)
            return
        scope = dict(scope)
        scope.setdefault("state", {})
        scope["state"] = {**scope["state"], "custom_domain": (host, name)}
        if path == "/":
            scope["path"] = f"/a/{name}"
            scope["raw_path"] = scope["path"].encode("ascii")
        await self.app(scope, receive, send)
