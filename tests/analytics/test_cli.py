"""``assistant report`` through the real console entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.core import Assistant
from tests.analytics.conftest import REFUNDS, record_turn

pytestmark = pytest.mark.slow


def test_report_prints_tables_with_sparklines_and_json(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    bot = make_assistant()
    notes = tmp_path / "refunds.md"
    notes.write_text("# Refunds\n\n" + REFUNDS.text + "\n", encoding="utf-8")
    bot.ingest([str(notes)], kb="docs")
    store = bot.conversation_store
    for question in ("How do I get a refund?", "Can I get a refund on my annual plan?"):
        record_turn(
            store, "docs", store.start("docs"), question, answer=REFUNDS.text, sources=[REFUNDS]
        )
    data_dir = bot.settings.data_dir
    bot.close()
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(data_dir), "COLUMNS": "200"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "assistant", "report", "--kb", "docs", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )

    shown = cli("--since", "7d")
    assert shown.returncode == 0, shown.stderr
    assert "Top questions" in shown.stdout and "refund" in shown.stdout
    assert any(bar in shown.stdout for bar in "▁▂▃▄▅▆▇█")
    as_json = cli("--json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["volume"]["turns"] == 2
    assert body["top_questions"][0]["count"] == 2
    bad = cli("--since", "whenever")
    assert bad.returncode == 1 and "30d" in bad.stderr
