"""Small Markdown sites written to a temporary folder, for tests that ingest one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_docs(root: Path, docs: Mapping[str, str], name: str = "docs") -> Path:
    """``docs`` (file name → text) written to a new folder ``root / name``; returns it."""
    folder = root / name
    folder.mkdir()
    for file_name, text in docs.items():
        (folder / file_name).write_text(text, encoding="utf-8")
    return folder
