"""The HTTP load benchmark at minimal sizes: it builds, serves, loads and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_serve_load_bench_reports_every_level(tmp_path: Path) -> None:
    output = tmp_path / "serve.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "serve_load.py"),
        *("--chunks", "500", "--turns", "10", "--concurrency", "1", "2"),
        *("--distinct-questions", "5", "--warmup", "5", "--json", str(output)),
    ]
    finished = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    results = json.loads(output.read_text())
    levels = results["levels"]
    assert [level["concurrency"] for level in levels] == [1, 2]
    for level in levels:
        assert (level["turns"], level["errors"]) == (10, 0)
        # Every turn was answered through the fake provider, not the extractive fallback.
        assert level["providers"] == {"openai:gpt-4o-mini": 10}
        first_text, turn = level["first_text"], level["turn_total"]
        assert first_text["count"] == 10
        assert 0 < first_text["p50_ms"] <= turn["p50_ms"]
        assert first_text["p99_ms"] <= turn["p99_ms"]
        assert level["turns_per_second"] > 0
        assert len(level["load_average_before"]) == 3
        assert {"encode", "recall", "first_token"} <= set(level["server_stages_ms"])
    # Five warm-up turns and twenty timed ones, one provider request each.
    assert results["provider_requests"] == 25
    assert results["build_seconds"]["token_cache"] > 0
