"""Builds the widget's front-end (``frontend/``) before the Python package is assembled.

``pip install .`` / ``pip install -e .`` run ``build_py``; this subclass first runs
``npm ci && npm run build`` in ``frontend/`` when the built files in
``assistant/api/static/widget/`` are missing or older than the sources, so a wheel always
ships them. Everything else is configured in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
FRONTEND = ROOT / "frontend"
BUILT = ROOT / "assistant" / "api" / "static" / "widget"


def _newest(paths: list[Path]) -> float:
    return max((path.stat().st_mtime for path in paths), default=0.0)


def frontend_is_stale() -> bool:
    """Whether the built widget is missing or older than any front-end source."""
    manifest = BUILT / "manifest.json"
    if not FRONTEND.is_dir():
        return False  # an sdist or wheel build that already carries the built files
    if not manifest.is_file():
        return True
    sources = [*FRONTEND.glob("src/**/*"), *FRONTEND.glob("*.json"), FRONTEND / "build.mjs"]
    return _newest([p for p in sources if p.is_file()]) > manifest.stat().st_mtime


def build_frontend() -> None:
    """``npm ci && npm run build`` in ``frontend/``; a clear error when npm is missing."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "error: building the website widget needs Node.js and npm (https://nodejs.org); "
            "install them (e.g. `apt-get install nodejs npm`) and run the install again"
        )
    if not (FRONTEND / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    subprocess.run([npm, "run", "build"], cwd=FRONTEND, check=True)


class BuildWithFrontend(build_py):
    """``build_py`` that builds the front-end first when it is stale."""

    def run(self) -> None:
        if frontend_is_stale():
            build_frontend()
        super().run()


setup(cmdclass={"build_py": BuildWithFrontend})
