"""The import-time benchmark: one quick run writes its table's numbers as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from bench import import_time


def test_import_time_bench_measures_each_statement(tmp_path: Path) -> None:
    output = tmp_path / "import_time.json"
    import_time.main(["--runs", "1", "--json", str(output)])
    results = json.loads(output.read_text())
    imports = {row["statement"]: row for row in results["imports"]}
    assert list(imports) == list(import_time.TARGETS)
    client = imports["import assistant.client"]
    assert client["heavy"] == [] and client["modules"] > imports["import assistant"]["modules"]
    assert client["process_seconds"] >= client["import_seconds"] > 0
    assert isinstance(results["client_under_goal"], bool)
