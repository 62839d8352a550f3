"""The units of a passage an extractive answer may quote, and which of them read as prose.

Page text keeps the shape of its page: table rows as ``cell | cell`` lines, list items as lines,
and on some sites the leftovers of navigation ("Previous topic", "Python » 3.11 » Tutorial").
Quoted alone, a table's header row or a breadcrumb is no answer. ``answer_units`` splits a
passage into sentences and lines and keeps only those worth quoting:

- never a table's header row (the first row of a table, when it holds no figure), nor
  navigation or page boilerplate ("Previous topic", "Next topic", "Table of contents",
  "Show source", "This page", ...) and the link title that follows such a label, nor a
  breadcrumb trail, nor a line of code (an interpreter prompt, a comment), nor a fragment of
  fewer than three words;
- never a question: a FAQ's own question ("What does http.postBuffer really do?") is what the
  visitor asked, and it matches their words best, but the sentences after it are the answer;
- a sentence split after "e.g.", "i.e.", "cf.", "vs." or "viz." ("... (e.g. MySQL, Oracle).")
  is joined again: those never end a sentence;
- a sentence that ends a line with a colon and is followed by lines of code carries those
  lines (``AnswerUnit.block``, at most ``BLOCK_LINES``): quoted alone, "invoking Uvicorn would
  look like:" says nothing;
- a table row reads as ``first cell — header: cell; header: cell`` when its header is known;
- a list item loses its bullet.

Each unit says whether it is a complete sentence, so a scorer can prefer those.

>>> [unit.text for unit in answer_units("Plan | Monthly | Annual\\nTeam | $10 | $8\\nCancel any time.")]
['Team — Monthly: $10; Annual: $8', 'Cancel any time.']
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from assistant.knowledge.text import split_sentences

__all__ = ["AnswerUnit", "answer_units"]

_CELL_SEPARATOR = " | "
# Labels of documentation themes and site chrome, matched against a whole line.
_BOILERPLATE = re.compile(
    r"^(?:previous topic|next topic|previous|next|previous page|next page|table of contents|"
    r"contents|on this page|this page|show source|show page source|view page source|"
    r"report a bug|edit this page|edit on github|quick search|navigation|skip to content|"
    r"skip to main content|back to top|search|index|modules|theme|"
    r"(?:©|copyright|all rights reserved|last updated|powered by|created using)\b.*)\s*:?$",
    re.IGNORECASE,
)
# Labels after which the next line is a link title, not content.
_LINK_LABELS = frozenset(
    {"previous topic", "next topic", "previous", "next", "previous page", "next page"}
)
_BREADCRUMB_SEPARATOR = re.compile(r"\s*(?:»|›|→|>|/)\s*")
# Lines of code in the text: interpreter prompts and comments ("# create a socket").
_CODE_LINE = re.compile(r"^(?:>>>|\.\.\.(?:\s|$)|#\s+[a-z]|\$\s)")
_BULLET = re.compile(r"^(?:[-*•‣◦]|\d{1,3}[.)])\s+")
_DIGIT = re.compile(r"\d")
_COMPLETE_START = re.compile(r"^[\"'“‘(\[]?[A-Z0-9¿¡]")
_COMPLETE_END = re.compile(r"[.!?…:;][\"'”’)\]]*$")
_QUESTION_END = re.compile(r"\?[\"'”’)\]]*$")
# Abbreviations after which the sentence splitter may cut ("(e.g. MySQL, Oracle)"), which never
# end a sentence.
_ABBREVIATION_END = re.compile(r"(?:^|[\s(\[])(?:e\.g|i\.e|cf|vs|viz)\.$", re.IGNORECASE)
MIN_WORDS = 3
"""A unit of fewer words is a fragment, never quoted."""
BLOCK_LINES = 8
"""The most lines of code a sentence ending in a colon carries; a longer block is cut, with a
last line "…"."""
_BLOCK_CHARS = 600


@dataclass(frozen=True, slots=True)
class AnswerUnit:
    """A sentence, list item or table row of a passage that may be quoted."""

    text: str
    """What the answer shows (a bullet dropped, a table row labelled by its header)."""
    raw: str
    """The unit exactly as it stands in the passage."""
    index: int
    """Its place among the passage's units (reading order)."""
    complete: bool
    """Whether it reads as a complete sentence (capitalised, closed by punctuation)."""
    block: str = ""
    """The lines of code the unit introduces ("... would look like:"), indentation kept; empty
    for most units."""


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split(_CELL_SEPARATOR)] if _CELL_SEPARATOR in line else []


def _is_breadcrumb(line: str) -> bool:
    """A trail of short link titles: "Home › Billing › Refunds", "Python » 3.11 » Tutorial »"."""
    if _COMPLETE_END.search(line) and not line.endswith(("»", "›")):
        return False
    parts = [part for part in _BREADCRUMB_SEPARATOR.split(line) if part]
    separators = _BREADCRUMB_SEPARATOR.findall(line)
    strong = any(mark.strip() in {"»", "›", "→"} for mark in separators)
    return (len(parts) >= 3 or (strong and len(parts) >= 2)) and all(
        len(part.split()) <= 5 for part in parts
    )


def _is_header_row(cells: list[str], next_cells: list[str] | None, previous_is_row: bool) -> bool:
    """The first row of a table of several rows, made of labels (no figures)."""
    return (
        not previous_is_row
        and next_cells is not None
        and len(next_cells) == len(cells)
        and not any(_DIGIT.search(cell) for cell in cells)
        and all(len(cell.split()) <= 5 for cell in cells)
    )


def _complete(text: str) -> bool:
    return bool(_COMPLETE_START.search(text) and _COMPLETE_END.search(text))


def answer_units(text: str) -> list[AnswerUnit]:
    """The quotable units of ``text`` in reading order (see the module docstring)."""
    raw_lines = text.splitlines()
    lines = [line.strip() for line in raw_lines]
    units: list[AnswerUnit] = []
    header: list[str] | None = None
    skip_next = False
    for position, line in enumerate(lines):
        if not line:
            header = None
            continue
        if skip_next:
            skip_next = False
            continue
        if _BOILERPLATE.match(line):
            skip_next = line.lower().rstrip(": ") in _LINK_LABELS
            continue
        cells = _cells(line)
        if cells:
            previous_cells = _cells(lines[position - 1]) if position > 0 else []
            following = _cells(lines[position + 1]) if position + 1 < len(lines) else []
            if _is_header_row(cells, following or None, bool(previous_cells)):
                header = cells
                continue
            if not previous_cells:
                header = None
            shown = _labelled_row(cells, header)
            if len(shown.split()) >= MIN_WORDS:
                units.append(AnswerUnit(shown, line, len(units), False))
            continue
        header = None
        if _is_breadcrumb(line) or _CODE_LINE.match(line):
            continue
        bullet = _BULLET.match(line)
        for sentence in _sentences(line):
            shown = _BULLET.sub("", sentence, count=1) if bullet else sentence
            if len(shown.split()) < MIN_WORDS or _QUESTION_END.search(shown):
                continue
            # Sentences are not split at a colon, so one ending in a colon ends its line.
            introduces = shown.endswith(":") and not bullet
            block = _code_block(raw_lines, position + 1) if introduces else ""
            units.append(AnswerUnit(shown, sentence, len(units), _complete(shown), block))
    return units


def _code_block(raw_lines: list[str], start: int) -> str:
    """The lines of code from ``raw_lines[start]`` on: up to a blank line or one that reads as
    prose, a list item or a table row; dedented, cut at ``BLOCK_LINES``. Empty when the next
    line is not code."""
    block: list[str] = []
    for raw in raw_lines[start:]:
        line = raw.strip()
        if (
            not line
            or _BULLET.match(line)
            or _cells(line)
            or (_complete(line) and not _CODE_LINE.match(line))
        ):
            break
        block.append(raw.rstrip())
        if len(block) > BLOCK_LINES:
            break  # cut here: the rest of the passage need not be read
    if not block:
        return ""
    cut = len(block) > BLOCK_LINES or sum(map(len, block)) > _BLOCK_CHARS
    kept = block[:BLOCK_LINES]
    while len(kept) > 1 and sum(map(len, kept)) > _BLOCK_CHARS:
        kept.pop()
    code = textwrap.dedent("\n".join(kept))
    return f"{code}\n…" if cut else code


def _sentences(line: str) -> list[str]:
    """The sentences of one line, joined again where a split fell after an abbreviation; each
    exactly as it stands in ``line`` (its spacing kept), since units are found in their chunk by
    their text."""
    sentences: list[str] = []
    start = end = 0
    for part in split_sentences(line):
        found = line.find(part, end)
        if found < 0:  # not expected; keep the splitter's sentences as they are
            return split_sentences(line)
        if sentences and _ABBREVIATION_END.search(sentences[-1]):
            sentences[-1] = line[start : found + len(part)]
        else:
            start = found
            sentences.append(part)
        end = found + len(part)
    return sentences


def _labelled_row(cells: list[str], header: list[str] | None) -> str:
    """A table row as text: its first cell, then each other cell after its column's label."""
    cells = [cell for cell in cells]
    if header is None or len(header) != len(cells):
        return "; ".join(cell for cell in cells if cell)
    labelled = [
        f"{label}: {cell}" for label, cell in zip(header[1:], cells[1:], strict=True) if cell
    ]
    return f"{cells[0]} — {'; '.join(labelled)}" if cells[0] else "; ".join(labelled)
