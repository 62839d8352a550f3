"""Prompt templates, read from the ``prompts/`` folder; code holds no prompt prose.

Templates use ``$name`` placeholders (``string.Template``). A missing placeholder value is an
error rather than a silently empty hole in a prompt.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from string import Template

from assistant.errors import ConfigError

__all__ = ["PROMPTS_DIR", "PromptLibrary"]


def _default_directory() -> Path:
    """``prompts/`` beside the package in a source checkout, else where the wheel installs it."""
    checkout = Path(__file__).resolve().parents[2] / "prompts"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "assistant-rag" / "prompts"


PROMPTS_DIR = _default_directory()


class PromptLibrary:
    """Loads and fills the templates of one prompts folder.

    >>> PromptLibrary().render("no_answer", company="Harbor").startswith("I couldn't find")
    True
    """

    def __init__(self, directory: Path = PROMPTS_DIR) -> None:
        self.directory = directory

    def render(self, name: str, **values: object) -> str:
        """Fill template ``name`` (file ``name.txt``) with ``values``."""
        template = _load(self.directory / f"{name}.txt")
        try:
            return template.substitute({key: str(value) for key, value in values.items()}).strip()
        except KeyError as exc:
            raise ConfigError(f"prompt {name!r} needs a value for {exc.args[0]!r}") from exc


@lru_cache(maxsize=64)
def _load(path: Path) -> Template:
    try:
        return Template(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"prompt template {path} cannot be read ({exc.strerror}); set ASSISTANT_PROMPTS_DIR "
            "to the folder that holds the prompts"
        ) from exc
