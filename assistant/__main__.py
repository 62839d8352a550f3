"""``python -m assistant`` runs the ``assistant`` command."""

from assistant.cli import main

main()
