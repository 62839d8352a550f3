"""Markdown answers as Slack messages: mrkdwn text, blocks within Slack's limits, sources.

Slack's mrkdwn is not Markdown: bold is ``*x*``, italics ``_x_``, links ``<url|text>``, there
are no headings and ``&``, ``<`` and ``>`` must be escaped. A section block holds at most
3,000 characters and a message at most 50 blocks, so long answers are split at paragraph
(then line, then word) boundaries, code fences closed and reopened across a split.

>>> to_mrkdwn("**Refunds** take [5 days](https://ex.com/r) & more")
'*Refunds* take <https://ex.com/r|5 days> &amp; more'
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from assistant.chat.events import Citation, Source

__all__ = [
    "MAX_BLOCKS",
    "MAX_SECTION_CHARS",
    "answer_blocks",
    "feedback_value",
    "sources_block",
    "split_text",
    "to_mrkdwn",
]

MAX_SECTION_CHARS = 3000
MAX_BLOCKS = 50

_FENCE = re.compile(r"^```[\w+-]*\s*$")
_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
# A placeholder the model's text cannot contain, for spans already converted.
_HOLD = "\x00{}\x00"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(text: str) -> str:
    """Convert one line outside code fences."""
    held: list[str] = []

    def hold(value: str) -> str:
        held.append(value)
        return _HOLD.format(len(held) - 1)

    parts = _INLINE_CODE.split(text)
    out: list[str] = []
    for index, part in enumerate(parts):
        if index % 2:  # inline code: escaped, never formatted
            out.append(hold(_escape(part)))
            continue
        part = _escape(part)
        part = _LINK.sub(lambda m: hold(f"<{m.group(2)}|{m.group(1).replace('|', '¦')}>"), part)
        # Italics first, on single stars only, so that the bold produced next is left alone.
        part = _ITALIC.sub(lambda m: f"_{m.group(1)}_", part)
        part = _BOLD.sub(lambda m: hold(f"*{m.group(2)}*"), part)
        part = _STRIKE.sub(lambda m: f"~{m.group(1)}~", part)
        out.append(part)
    line = "".join(out)
    for position in range(len(held) - 1, -1, -1):
        line = line.replace(_HOLD.format(position), held[position])
    return line


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn for a Markdown answer (bold, italics, links, lists, headings, code)."""
    lines: list[str] = []
    in_code = False
    for line in markdown.split("\n"):
        if _FENCE.match(line.strip()):
            in_code = not in_code
            lines.append("```")
            continue
        if in_code:
            lines.append(_escape(line))
            continue
        heading = _HEADING.match(line)
        if heading:
            lines.append(f"*{_inline(heading.group(1)).strip('*')}*")
            continue
        bullet = _BULLET.match(line)
        if bullet:
            line = f"{bullet.group(1)}• {line[bullet.end() :]}"
        lines.append(_inline(line))
    return "\n".join(lines)


def _cut(text: str, limit: int) -> int:
    """Where to split ``text`` (longer than ``limit``): the last paragraph, line or word end."""
    for separator in ("\n\n", "\n", " "):
        position = text.rfind(separator, 0, limit)
        if position > limit // 2:
            return position
    return limit


def split_text(text: str, limit: int = MAX_SECTION_CHARS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, code fences balanced in each."""
    pieces: list[str] = []
    rest = text.strip()
    # Room for a fence closed at the end of a piece and reopened at the start of the next.
    room = limit - 8
    while rest:
        if len(rest) <= limit and rest.count("```") % 2 == 0:
            pieces.append(rest)
            break
        position = _cut(rest, min(room, len(rest)))
        piece, rest = rest[:position].rstrip(), rest[position:].strip()
        if piece.count("```") % 2:
            piece += "\n```"
            rest = "```\n" + rest
        pieces.append(piece)
    return pieces or [""]


def feedback_value(assistant: str, turn_id: int) -> str:
    """The value a feedback or handoff button carries back: which assistant's turn."""
    return json.dumps({"assistant": assistant, "turn": turn_id}, separators=(",", ":"))


def sources_block(
    citations: Sequence[Citation], sources: Sequence[Source]
) -> dict[str, Any] | None:
    """A context block listing the cited sources (else those given), as numbered links."""
    entries = [(c.n, c.title, c.url) for c in citations] or [(s.n, s.title, s.url) for s in sources]
    seen: set[str] = set()
    elements: list[dict[str, Any]] = [{"type": "mrkdwn", "text": "*Sources*"}]
    for number, title, url in entries:
        if url in seen:
            continue
        seen.add(url)
        label = _escape(title or url).replace("|", "¦")[:200]
        link = f"<{url}|{label}>" if url.startswith(("http://", "https://")) else label
        elements.append({"type": "mrkdwn", "text": f"[{number}] {link}"})
        # A context block holds at most 10 elements.
        if len(elements) == 10:
            break
    return {"type": "context", "elements": elements} if len(elements) > 1 else None


def _buttons(value: str, handoff: bool) -> dict[str, Any]:
    elements: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": "assistant_feedback_up",
            "text": {"type": "plain_text", "text": "👍", "emoji": True},
            "value": value,
        },
        {
            "type": "button",
            "action_id": "assistant_feedback_down",
            "text": {"type": "plain_text", "text": "👎", "emoji": True},
            "value": value,
        },
    ]
    if handoff:
        elements.append(
            {
                "type": "button",
                "action_id": "assistant_handoff",
                "text": {"type": "plain_text", "text": "Talk to a person"},
                "value": value,
            }
        )
    return {"type": "actions", "block_id": "assistant_feedback", "elements": elements}


def answer_blocks(
    text: str,
    *,
    citations: Sequence[Citation] = (),
    sources: Sequence[Source] = (),
    button_value: str | None = None,
    handoff: bool = False,
) -> list[list[dict[str, Any]]]:
    """The messages (each a list of at most 50 blocks) that show a Markdown answer.

    The answer's sections come first; the sources and the buttons end the last message.
    """
    sections = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}}
        for piece in split_text(to_mrkdwn(text))
    ]
    tail: list[dict[str, Any]] = []
    block = sources_block(citations, sources)
    if block is not None:
        tail.append(block)
    if button_value is not None:
        tail.append(_buttons(button_value, handoff))
    messages: list[list[dict[str, Any]]] = []
    while len(sections) + len(tail) > MAX_BLOCKS:
        messages.append(sections[:MAX_BLOCKS])
        sections = sections[MAX_BLOCKS:]
    messages.append(sections + tail)
    return messages
