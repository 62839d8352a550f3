"""What the command line prints from stored data reaches the terminal as plain text.

Visitors' questions, page titles and source paths are data: a terminal escape in them must not
move the operator's cursor, retitle the window or clear the screen, and rich markup in them must
print literally.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from assistant.cli import app
from assistant.core import Assistant
from assistant.database.models import TurnRow
from tests.analytics.conftest import record_turn

HOSTILE = "Do you ship [bold]abroad[/bold]?\x1b]0;owned\x07\x1b[2J\x00\x9b31m\u202eevil"


def _assert_plain(output: str) -> None:
    assert not any(c in output for c in "\x1b\x07\x00\x9b\u202e")
    assert "[bold]abroad[/bold]" in output


def test_gaps_prints_stored_questions_without_escapes_or_markup(
    make_assistant: Callable[..., Assistant], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = make_assistant()
    store = bot.conversation_store
    turn_id = record_turn(
        store, "docs", store.start("docs"), "placeholder", outcome="no_answer", top_score=0.1
    )
    # A row stored before questions were cleaned on the way in still holds the raw text.
    with bot.database.session() as session:
        session.execute(update(TurnRow).where(TurnRow.id == turn_id).values(question=HOSTILE))
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(bot.settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")
    bot.close()
    result = CliRunner().invoke(app, ["gaps", "--kb", "docs"])
    assert result.exit_code == 0, result.output
    _assert_plain(result.output)
    assert "Do you ship" in result.output and "evil" in result.output


def test_escape_strips_controls_and_markup() -> None:
    from assistant.cli.common import console, escape

    with console.capture() as captured:
        console.print(escape(HOSTILE), highlight=False)
    _assert_plain(captured.get())
