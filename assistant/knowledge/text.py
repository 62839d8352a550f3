"""Small text helpers shared by chunking and answering."""

from __future__ import annotations

import re

__all__ = ["split_paragraphs", "split_sentences"]

# A sentence ends at ., ! or ? (optionally closed by a quote or bracket) followed by space and
# something that starts a new sentence. Abbreviations like "e.g." stay joined because the next
# character is lowercase; before a capital they split ("(e.g. MySQL)"). The chunks, and so every
# index, are cut with this rule, so the offline answerer joins those again in its own units
# (``chat.sentences``) rather than the rule changing here.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[“‘¿¡])")


def split_paragraphs(text: str) -> list[str]:
    """Split on blank lines; list items and lines inside a paragraph stay together."""
    return [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; each line of a list or table is its own unit.

    >>> split_sentences("Plans start at $8. The Team plan adds SSO.\\n- item one")
    ['Plans start at $8.', 'The Team plan adds SSO.', '- item one']
    """
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        sentences.extend(part.strip() for part in _SENTENCE_END.split(line) if part.strip())
    return sentences
