"""``assistant serve``: the HTTP API under uvicorn, registered on the main ``assistant`` app."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from assistant.cli.common import KbOption, app, errors, escape, open_assistant, print_report, run
from assistant.core import Assistant
from assistant.knowledge.long_lived import freeze_after_loading
from assistant.settings import Settings

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "serve", "serve_url"]

GRACEFUL_SHUTDOWN_SECONDS = 5
"""How long, after SIGTERM or SIGINT, open requests (a chat stream, a slow upload) may take to
finish before uvicorn closes them. Running ingestion jobs do not wait for it: they stop at
their next document and go back to ``queued``, so the next start resumes them."""


def serve_url(host: str, port: int) -> str:
    """The base URL a server listening on ``host``:``port`` answers at.

    >>> serve_url("::1", 8000)
    'http://[::1]:8000'
    """
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; others than loopback need an admin key.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Files, folders, pages or sitemaps to ingest into --kb first."),
    ] = None,
    kb: KbOption = "default",
    log_level: Annotated[
        str, typer.Option(help="uvicorn's log level: critical, error, warning, info, debug.")
    ] = "info",
    workers: Annotated[
        int,
        typer.Option(
            help="API processes sharing the port. Over 1 needs ASSISTANT_REDIS_URL (shared rate "
            "limits and ingestion queue, run by `assistant worker`) and ASSISTANT_CHROMA_URL.",
            min=1,
            max=64,
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (assistants, keys, chat, sources) and the widget's endpoints."""
    import uvicorn

    from assistant.api.app import create_app
    from assistant.api.auth import is_loopback_host

    settings = Settings()
    if settings.admin_key is None and not is_loopback_host(host):
        errors.print(
            f"[red]error:[/red] refusing to listen on {escape(host)} without an admin key: "
            "anyone who can reach it would manage every assistant. Set ASSISTANT_ADMIN_KEY "
            "(e.g. to the output of `python -c 'import secrets; print(secrets.token_urlsafe(32))'`) "
            "or listen on 127.0.0.1.",
            highlight=False,
        )
        raise typer.Exit(1)
    if workers > 1:
        _check_shared_services(settings)
    core: Assistant | None = None
    if sources:
        assistant = open_assistant()
        core = assistant
        report = run(lambda: assistant.ingest(sources, kb=kb))
        print_report(report, kb)
    if workers > 1 and core is not None:
        # Each process opens its own; this one's work (the ingestion) is done.
        core.close()
        core = None
    mode = (
        "admin key required" if settings.admin_key else "no admin key: loopback clients are admin"
    )
    errors.print(
        f"Serving the assistant API on {serve_url(host, port)} ({mode}); "
        f"chat with it at {serve_url(host, port)}{'/' if kb == 'default' else f'/a/{kb}'} "
        "and API documentation at "
        f"{serve_url(host, port)}/docs",
        highlight=False,
        markup=False,
    )
    try:
        processes: dict[str, Any] = {}
        if workers > 1:
            # Each process builds its app (and freezes what it loads) in app_from_environment.
            _share_cores(settings, workers)
            target: Any = "assistant.api.app:app_from_environment"
            processes = {"factory": True, "workers": workers}
        else:
            # This process serves for its life: what it loads is frozen out of the collector's
            # passes (knowledge.long_lived).
            freeze_after_loading()
            target = create_app(settings, core=core)
        uvicorn.run(
            target,
            host=host,
            port=port,
            log_level=log_level,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            **processes,
        )
    finally:
        if core is not None:
            core.close()


def _check_shared_services(settings: Settings) -> None:
    """Refuse several processes over state that only one process may hold."""
    missing = []
    if settings.redis_url is None:
        missing.append(
            "ASSISTANT_REDIS_URL (rate limits must be counted once for all processes, and "
            "ingestion jobs queued for `assistant worker`)"
        )
    if settings.chroma_url is None:
        missing.append(
            "ASSISTANT_CHROMA_URL (embedded Chroma is opened by one process; serve the data "
            "with `chroma run --path DIR` instead)"
        )
    if missing:
        errors.print(
            "[red]error:[/red] --workers over 1 needs " + " and ".join(missing) + ".",
            highlight=False,
            markup=True,
        )
        raise typer.Exit(1)


def _share_cores(settings: Settings, workers: int) -> None:
    """Give each process its share of the cores for torch, unless set explicitly: N processes
    each spawning a thread per core would only fight over them."""
    if settings.torch_threads == 0:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ["ASSISTANT_TORCH_THREADS"] = str(share)
