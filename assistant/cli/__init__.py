"""The ``assistant`` command: ingest, search, ask, chat, sources, forget, jobs, cancel, eval,
report, serve, worker, slack.

Each module holds a few commands and registers them on one typer app (``common.app``); this
package imports them in the order ``assistant --help`` lists them. Output for people goes
through rich; ``--json`` prints the contract shapes for scripts.
"""

from __future__ import annotations

from assistant.cli.common import app

# Imported for the commands they register on ``app``, in the order ``--help`` lists them.
# isort: off
from assistant.cli import ingest, search, manage, jobs, ranking, chat, report, serve, worker, slack
# isort: on

__all__ = ["app", "main"]

_COMMAND_MODULES = (ingest, search, manage, jobs, ranking, chat, report, serve, worker, slack)


def main() -> None:
    """Entry point of the ``assistant`` console script."""
    app()
