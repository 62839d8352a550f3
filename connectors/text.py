"""Plain text files as documents, and the text clean-up every file reader shares."""

from __future__ import annotations

import re

from connectors.document import Document, Section
from connectors.errors import ParseError

__all__ = ["MAX_TITLE_CHARACTERS", "clean_title", "first_line", "normalise_text", "text_document"]

MAX_TITLE_CHARACTERS = 300
_UNREADABLE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


def clean_title(text: str) -> str:
    """``text`` on one line, spaces folded, cut to the longest title kept."""
    return " ".join(text.split())[:MAX_TITLE_CHARACTERS]


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def normalise_text(text: str) -> str:
    """Normalise line endings, drop control characters and trailing spaces, trim blank ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = _UNREADABLE_CHARACTERS.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def text_document(text: str, source: str, stem: str) -> Document:
    """A plain text file as one untitled section; the file name's ``stem`` is its title.

    Raises:
        ParseError: nothing readable is left after clean-up.
    """
    normalised = normalise_text(text)
    if not normalised.strip():
        raise ParseError(source, "empty file")
    return Document(
        source=source, title=stem, sections=(Section((), normalised),), content_type="text"
    )
