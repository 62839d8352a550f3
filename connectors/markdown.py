"""Markdown files as documents: headings, lists, tables and code blocks kept apart; link
URLs and HTML tags dropped, front matter read for the title."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from connectors.document import Document
from connectors.errors import ParseError
from connectors.html import html_fragment_text
from connectors.html_structure import SectionBuilder
from connectors.text import clean_title

__all__ = ["markdown_document"]

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def markdown_document(text: str, source: str, stem: str) -> Document:
    """Markdown text as sections under its headings; its title from the front matter, the
    first level-1 heading or else ``stem``.

    Raises:
        ParseError: the file holds no readable text.
    """
    front_matter_title = ""
    front_matter = _FRONT_MATTER.match(text)
    if front_matter:
        title_match = _FRONT_MATTER_TITLE.search(front_matter.group(1))
        if title_match:
            front_matter_title = clean_title(title_match.group(1).strip("\"'"))
        text = text[front_matter.end() :]
    builder = SectionBuilder()
    first_heading = _MarkdownReader(builder).read(_MARKDOWN.parse(text))
    sections = builder.sections()
    if not sections:
        raise ParseError(source, "the Markdown file has no readable text")
    title = front_matter_title or clean_title(first_heading) or stem
    return Document(source=source, title=title, sections=sections, content_type="markdown")


class _MarkdownReader:
    """Turns markdown-it's flat token stream into headings and blocks."""

    def __init__(self, builder: SectionBuilder) -> None:
        self.builder = builder
        self.ordered_lists: list[bool] = []
        self.item_prefix: str | None = None
        self.row_cells: list[str] | None = None
        self.heading_level: int | None = None

    def read(self, tokens: list[Token]) -> str:
        """Feed every token to the builder; return the first level-1 heading's text."""
        first_heading = ""
        for token in tokens:
            kind = token.type
            if kind == "heading_open":
                self.heading_level = int(token.tag[1])
            elif kind == "heading_close":
                self.heading_level = None
            elif kind in ("bullet_list_open", "ordered_list_open"):
                self.ordered_lists.append(kind == "ordered_list_open")
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.ordered_lists.pop()
            elif kind == "list_item_open":
                indent = "  " * (len(self.ordered_lists) - 1)
                marker = f"{token.info}." if self.ordered_lists[-1] and token.info else "-"
                self.item_prefix = f"{indent}{marker} "
            elif kind == "list_item_close":
                self.item_prefix = None
            elif kind == "tr_open":
                self.row_cells = []
            elif kind == "tr_close" and self.row_cells is not None:
                self.builder.block(" | ".join(self.row_cells), "row")
                self.row_cells = None
            elif kind in ("fence", "code_block"):
                self._flush_item_marker()
                self.builder.block(token.content.strip("\n"), "code")
            elif kind == "html_block":
                self.builder.block(html_fragment_text(token.content))
            elif kind == "inline":
                heading = self._inline(token)
                if heading and not first_heading:
                    first_heading = heading
        return first_heading

    def _inline(self, token: Token) -> str:
        """Route one inline run; return its text when it is a level-1 heading."""
        text = _inline_text(token)
        if self.heading_level is not None:
            self.builder.heading(self.heading_level, text)
            return text if self.heading_level == 1 else ""
        if self.row_cells is not None:
            self.row_cells.append(text.replace("\n", " "))
        elif self.item_prefix is not None:
            self.builder.block(self.item_prefix + text, "item")
            # Later paragraphs of the same item are indented under its marker.
            self.item_prefix = " " * len(self.item_prefix)
        elif self.ordered_lists:
            self.builder.block(text, "item")
        else:
            self.builder.block(text)
        return ""

    def _flush_item_marker(self) -> None:
        if self.item_prefix is not None and self.item_prefix.strip():
            self.builder.block(self.item_prefix.rstrip(), "item")
            self.item_prefix = " " * len(self.item_prefix)


def _inline_text(token: Token) -> str:
    """Readable text of an inline run: link text without URLs, image alt text, no HTML tags."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "text_special", "code_inline") or child.type == "image":
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)
