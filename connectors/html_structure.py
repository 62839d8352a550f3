"""From an element tree to sections: which elements are headings, blocks, list items, table
rows or code, and how their text joins.

One walker serves two trees: a page's own HTML (``html_role``) and trafilatura's XML output
(``trafilatura_role``), which names the same things differently. Only text leaves the walk:
markup, scripts and styles are never copied out.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Literal

from lxml import etree

from connectors.document import Section

__all__ = ["BlockKind", "Role", "SectionBuilder", "html_role", "trafilatura_role", "walk_text"]

BlockKind = Literal["paragraph", "item", "row", "code"]
"""How a block of text joins its neighbours: list items and table rows stay on adjacent lines."""

# A line break inside a paragraph. Decoded text never holds NUL (it is removed before
# parsing), so the marker cannot collide with content.
_LINE_BREAK = "\x00"


class SectionBuilder:
    """Groups headings and text blocks, given in reading order, into ``Section``\\ s.

    A heading of level *n* closes every open heading of level *n* or deeper, so the heading
    path of the text after it is the stack of enclosing headings. Text before any heading
    gets an empty heading path; headings with no text under them make no section of their own.

    >>> builder = SectionBuilder()
    >>> builder.heading(1, "Billing")
    >>> builder.heading(2, "Refunds")
    >>> builder.block("Within 14 days.")
    >>> builder.sections()
    (Section(heading_path=('Billing', 'Refunds'), text='Within 14 days.'),)
    """

    def __init__(self) -> None:
        self._open_headings: list[tuple[int, str]] = []
        self._blocks: list[tuple[BlockKind, str]] = []
        self._sections: list[Section] = []
        self._heading_texts: list[str] = []

    def heading(self, level: int | None, text: str) -> None:
        """Open a heading; ``level`` None means one level below the innermost open heading."""
        text = " ".join(text.split())
        if not text:
            return
        self._close_section()
        if level is None:
            level = self._open_headings[-1][0] + 1 if self._open_headings else 1
        while self._open_headings and self._open_headings[-1][0] >= level:
            self._open_headings.pop()
        self._open_headings.append((level, text))
        self._heading_texts.append(text)

    def block(self, text: str, kind: BlockKind = "paragraph") -> None:
        """Add a block of text under the current heading path."""
        if text.strip():
            self._blocks.append((kind, text))

    def sections(self) -> tuple[Section, ...]:
        """Return the sections built so far.

        A source made of headings alone yields one section holding the heading texts, so
        that its only readable text is not lost.
        """
        self._close_section()
        if not self._sections and self._heading_texts:
            return (Section((), "\n".join(self._heading_texts)),)
        return tuple(self._sections)

    def _close_section(self) -> None:
        if not self._blocks:
            return
        parts: list[str] = []
        previous_kind: BlockKind | None = None
        for kind, text in self._blocks:
            if parts:
                tight = kind == previous_kind and kind in ("item", "row")
                parts.append("\n" if tight else "\n\n")
            parts.append(text)
            previous_kind = kind
        heading_path = tuple(text for _, text in self._open_headings)
        self._sections.append(Section(heading_path, "".join(parts)))
        self._blocks = []


class Role(Enum):
    """What an element means to the text walker."""

    SKIP = "skip"
    BLOCK = "block"
    INLINE = "inline"
    HEADING = "heading"
    ITEM = "item"
    ROW = "row"
    CELL = "cell"
    PREFORMATTED = "preformatted"
    LINE_BREAK = "line break"


_HTML_SKIPPED_TAGS = frozenset(
    {"script", "style", "noscript", "template", "head", "title", "meta", "link", "dialog"}
    | {"iframe", "frame", "frameset", "object", "embed", "svg", "math", "canvas", "map"}
    | {"audio", "video", "picture", "button", "select", "option", "textarea", "input"}
)
_HTML_BLOCK_TAGS = frozenset(
    {"html", "body", "main", "article", "section", "div", "p", "blockquote", "hgroup"}
    | {"ul", "ol", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "caption", "hr"}
    | {"figure", "figcaption", "address", "details", "summary", "fieldset", "legend"}
    | {"center", "header", "footer", "nav", "aside", "form"}
)
_HTML_ROLES: dict[str, Role] = {
    **dict.fromkeys(_HTML_SKIPPED_TAGS, Role.SKIP),
    **dict.fromkeys(_HTML_BLOCK_TAGS, Role.BLOCK),
    **dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), Role.HEADING),
    "li": Role.ITEM,
    "tr": Role.ROW,
    "td": Role.CELL,
    "th": Role.CELL,
    "pre": Role.PREFORMATTED,
    "br": Role.LINE_BREAK,
}

_TRAFILATURA_ROLES: dict[str, Role] = {
    **dict.fromkeys(
        ["doc", "body", "main", "p", "list", "quote", "table", "div", "comments"], Role.BLOCK
    ),
    "graphic": Role.SKIP,
    "head": Role.HEADING,
    "item": Role.ITEM,
    "row": Role.ROW,
    "cell": Role.CELL,
    "lb": Role.LINE_BREAK,
}
_TRAFILATURA_INLINE_PARENTS = frozenset({"p", "item", "cell", "head", "hi", "ref", "del"})


def html_role(element: etree._Element) -> Role:
    """The role of an element of an HTML page."""
    return _HTML_ROLES.get(str(element.tag), Role.INLINE)


def trafilatura_role(element: etree._Element) -> Role:
    """The role of an element of trafilatura's XML output."""
    tag = str(element.tag)
    if tag == "code":
        # Trafilatura uses <code> for both code blocks and inline code.
        parent = element.getparent()
        inline = parent is not None and str(parent.tag) in _TRAFILATURA_INLINE_PARENTS
        return Role.INLINE if inline else Role.PREFORMATTED
    return _TRAFILATURA_ROLES.get(tag, Role.INLINE)


def _heading_level(element: etree._Element) -> int | None:
    for candidate in (str(element.tag), element.get("rend") or ""):
        if len(candidate) == 2 and candidate[0] == "h" and candidate[1] in "123456":
            return int(candidate[1])
    return None


class _TextCollector:
    """Turns the walker's element events into headings and blocks on a ``SectionBuilder``."""

    def __init__(self, builder: SectionBuilder, *, headings_as_text: bool) -> None:
        self.builder = builder
        self.headings_as_text = headings_as_text
        self.pieces: list[str] = []
        self.prefix = ""
        self.prefix_kind: BlockKind = "paragraph"
        self.item_depth = 0
        self.cell_depth = 0
        self.cells_in_row = 0
        self.open_heading: etree._Element | None = None

    def add(self, text: str | None) -> None:
        if text:
            self.pieces.append(text)

    def flush(self, kind: BlockKind | None = None) -> None:
        text = _normalise_inline("".join(self.pieces))
        self.pieces = []
        if text:
            self.builder.block(self.prefix + text, kind or self.prefix_kind)
            self.prefix, self.prefix_kind = "", "paragraph"

    def open(self, role: Role, element: etree._Element) -> None:
        nested = self.cell_depth > 0 or self.open_heading is not None
        if role is Role.LINE_BREAK:
            self.add(_LINE_BREAK)
        elif role is Role.CELL:
            if self.cell_depth == 0 and self.cells_in_row > 0:
                self.add(" | ")
            elif self.cell_depth > 0:
                self.add(" ")
            if self.cell_depth == 0:
                self.cells_in_row += 1
            self.cell_depth += 1
        elif nested:
            # Tables and headings keep their content on one line.
            self.add(" ")
        elif role is Role.HEADING and not self.headings_as_text:
            self.flush()
            self.open_heading = element
        elif role is Role.ITEM:
            self.flush()
            self.item_depth += 1
            self.prefix = "  " * (self.item_depth - 1) + "- "
            self.prefix_kind = "item"
        elif role is Role.ROW:
            self.flush()
            self.cells_in_row = 0
        elif role is not Role.INLINE:
            self.flush()

    def close(self, role: Role, element: etree._Element) -> None:
        if role is Role.CELL:
            self.cell_depth -= 1
            return
        if element is self.open_heading:
            text = _normalise_inline("".join(self.pieces)).replace("\n", " ")
            self.pieces = []
            self.open_heading = None
            self.builder.heading(_heading_level(element), text)
            return
        if self.cell_depth > 0 or self.open_heading is not None:
            if role is not Role.INLINE:
                self.add(" ")
            return
        if role is Role.ITEM:
            self.flush()
            self.item_depth = max(0, self.item_depth - 1)
            self.prefix, self.prefix_kind = "", "paragraph"
        elif role is Role.ROW:
            self.flush("row")
        elif role not in (Role.INLINE, Role.LINE_BREAK):
            self.flush()

    def preformatted(self, element: etree._Element) -> None:
        text = "".join(element.itertext())
        if self.cell_depth > 0 or self.open_heading is not None:
            self.add(" " + " ".join(text.split()) + " ")
            return
        self.flush()
        lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
        self.builder.block("\n".join(lines).strip("\n"), "code")


def walk_text(
    root: etree._Element,
    role_of: Callable[[etree._Element], Role],
    builder: SectionBuilder,
    *,
    headings_as_text: bool = False,
) -> None:
    """Feed the text under ``root`` to ``builder``, without recursion (trees can be deep)."""
    collector = _TextCollector(builder, headings_as_text=headings_as_text)
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        if not isinstance(element.tag, str):
            continue
        role = role_of(element)
        if event == "start":
            if role is Role.SKIP:
                walker.skip_subtree()
            elif role is Role.PREFORMATTED:
                collector.preformatted(element)
                walker.skip_subtree()
            else:
                collector.open(role, element)
                collector.add(element.text)
        else:
            if role not in (Role.SKIP, Role.PREFORMATTED):
                collector.close(role, element)
            if element is not root:
                collector.add(element.tail)
    collector.flush()


def _normalise_inline(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.split(_LINE_BREAK))
    return "\n".join(line for line in lines if line)
