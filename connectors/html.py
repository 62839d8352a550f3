"""Main-content extraction from HTML: readable text grouped by headings, plus page metadata.

Trafilatura finds the main content and drops navigation, headers, footers, cookie banners and
sidebars. Its XML output keeps headings, lists, tables and code apart, so we build sections
from that tree rather than from its Markdown output, which escapes characters such as ``*``
and ``<`` in the text. Very short pages, where trafilatura finds nothing, go through a plain
lxml extraction of ``<main>``/``<article>``/``<body>`` with the page furniture removed.

Only text ever leaves this module: markup, scripts and styles are never copied out.

Usage::

    page = extract_html(response_bytes, url="https://example.com/help/billing")
    for section in page.sections:
        print(" > ".join(section.heading_path), section.text)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
import trafilatura
from lxml import etree

from connectors.document import Section
from connectors.errors import ParseError, UnsupportedContentError
from connectors.sniff import codec_name, decode_text

__all__ = [
    "BlockKind",
    "ExtractedPage",
    "SectionBuilder",
    "decode_text",
    "extract_html",
    "html_fragment_text",
]

logger = logging.getLogger(__name__)

BlockKind = Literal["paragraph", "item", "row", "code"]
"""How a block of text joins its neighbours: list items and table rows stay on adjacent lines."""

# A line break inside a paragraph. Decoded text never holds NUL (it is removed before
# parsing), so the marker cannot collide with content.
_LINE_BREAK = "\x00"

# C0 controls (tab, line feed and carriage return excepted), DEL and lone surrogates: lxml
# refuses some of them in text and none of them is readable.
_UNREADABLE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]{0,200}\?>", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-z0-9._:\-]{1,40})""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([a-z0-9._:\-]{1,40})""")
_FURNITURE_MARKERS = re.compile(r"cookie|consent|banner|gdpr", re.IGNORECASE)

_MAX_TITLE_CHARACTERS = 300
# Longer hrefs are almost always data: URLs or tracking junk, never pages worth crawling.
_MAX_LINK_CHARACTERS = 4096
# Trafilatura's own threshold below which it distrusts its main-content extraction.
_MIN_MAIN_CONTENT_CHARACTERS = 250

_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)


@dataclass(frozen=True, slots=True)
class ExtractedPage:
    """The readable content of one HTML page and what a crawler needs from it.

    ``links`` are absolute http(s) URLs without fragments, in document order and without
    duplicates; ``noindex`` is true when a robots meta tag asks not to index the page.
    """

    title: str
    sections: tuple[Section, ...]
    canonical_url: str | None
    links: tuple[str, ...]
    noindex: bool


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


def extract_html(
    content: bytes | str, url: str | None = None, *, encoding: str | None = None
) -> ExtractedPage:
    """Extract the main content of an HTML page as sections, with its title and links.

    ``content`` given as bytes is decoded from its byte-order mark, the ``encoding`` declared
    by the transport (an HTTP ``charset``), its ``<meta charset>``, or else a guess. ``url``
    resolves relative links and names the page in errors.

    Raises:
        ParseError: the page holds no readable text.
        UnsupportedContentError: the bytes are binary, not text.

    >>> page = extract_html("<title>Help</title><main><h1>Refunds</h1><p>In 14 days.</p></main>")
    >>> page.title, page.sections[0].heading_path, page.sections[0].text
    ('Help', ('Refunds',), 'In 14 days.')
    """
    source = url or "<html>"
    text = _decode_html(content, encoding, source) if isinstance(content, bytes) else content
    tree = _parse_document(text, source)
    title = _page_title(tree)
    base_url = _base_url(tree, url)
    page_links = _links(tree, base_url)
    canonical_url = _canonical_url(tree, base_url)
    noindex = _has_noindex(tree)

    sections = _main_content_sections(tree, source)
    if _character_count(sections) < _MIN_MAIN_CONTENT_CHARACTERS:
        # On short pages trafilatura falls back to flattening the whole body, navigation and
        # headings included; the structured fallback does better there. It starts again from
        # the markup because trafilatura may have trimmed the tree.
        sections = _fallback_sections(_parse_document(text, source)) or sections
    if not sections:
        raise ParseError(source, "no readable text in the page")
    return ExtractedPage(
        title=title or _first_heading(sections),
        sections=sections,
        canonical_url=canonical_url,
        links=page_links,
        noindex=noindex,
    )


def html_fragment_text(markup: str) -> str:
    """Return the readable text of an HTML fragment, headings included, without any markup.

    >>> html_fragment_text("<div>Note: <b>read</b> this<script>alert(1)</script></div>")
    'Note: read this'
    """
    text = _UNREADABLE_CHARACTERS.sub(" ", markup)
    if not text.strip():
        return ""
    try:
        root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", text), parser=_PARSER)
    except (etree.ParserError, ValueError):
        return ""
    builder = SectionBuilder()
    _walk(root, _html_role, builder, headings_as_text=True)
    return "\n\n".join(section.text for section in builder.sections())


class _Role(Enum):
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
_HTML_ROLES: dict[str, _Role] = {
    **dict.fromkeys(_HTML_SKIPPED_TAGS, _Role.SKIP),
    **dict.fromkeys(_HTML_BLOCK_TAGS, _Role.BLOCK),
    **dict.fromkeys(("h1", "h2", "h3", "h4", "h5", "h6"), _Role.HEADING),
    "li": _Role.ITEM,
    "tr": _Role.ROW,
    "td": _Role.CELL,
    "th": _Role.CELL,
    "pre": _Role.PREFORMATTED,
    "br": _Role.LINE_BREAK,
}

_TRAFILATURA_ROLES: dict[str, _Role] = {
    **dict.fromkeys(
        ["doc", "body", "main", "p", "list", "quote", "table", "div", "comments"], _Role.BLOCK
    ),
    "graphic": _Role.SKIP,
    "head": _Role.HEADING,
    "item": _Role.ITEM,
    "row": _Role.ROW,
    "cell": _Role.CELL,
    "lb": _Role.LINE_BREAK,
}
_TRAFILATURA_INLINE_PARENTS = frozenset({"p", "item", "cell", "head", "hi", "ref", "del"})


def _html_role(element: etree._Element) -> _Role:
    return _HTML_ROLES.get(str(element.tag), _Role.INLINE)


def _trafilatura_role(element: etree._Element) -> _Role:
    tag = str(element.tag)
    if tag == "code":
        # Trafilatura uses <code> for both code blocks and inline code.
        parent = element.getparent()
        inline = parent is not None and str(parent.tag) in _TRAFILATURA_INLINE_PARENTS
        return _Role.INLINE if inline else _Role.PREFORMATTED
    return _TRAFILATURA_ROLES.get(tag, _Role.INLINE)


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

    def open(self, role: _Role, element: etree._Element) -> None:
        nested = self.cell_depth > 0 or self.open_heading is not None
        if role is _Role.LINE_BREAK:
            self.add(_LINE_BREAK)
        elif role is _Role.CELL:
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
        elif role is _Role.HEADING and not self.headings_as_text:
            self.flush()
            self.open_heading = element
        elif role is _Role.ITEM:
            self.flush()
            self.item_depth += 1
            self.prefix = "  " * (self.item_depth - 1) + "- "
            self.prefix_kind = "item"
        elif role is _Role.ROW:
            self.flush()
            self.cells_in_row = 0
        elif role is not _Role.INLINE:
            self.flush()

    def close(self, role: _Role, element: etree._Element) -> None:
        if role is _Role.CELL:
            self.cell_depth -= 1
            return
        if element is self.open_heading:
            text = _normalise_inline("".join(self.pieces)).replace("\n", " ")
            self.pieces = []
            self.open_heading = None
            self.builder.heading(_heading_level(element), text)
            return
        if self.cell_depth > 0 or self.open_heading is not None:
            if role is not _Role.INLINE:
                self.add(" ")
            return
        if role is _Role.ITEM:
            self.flush()
            self.item_depth = max(0, self.item_depth - 1)
            self.prefix, self.prefix_kind = "", "paragraph"
        elif role is _Role.ROW:
            self.flush("row")
        elif role not in (_Role.INLINE, _Role.LINE_BREAK):
            self.flush()

    def preformatted(self, element: etree._Element) -> None:
        text = "".join(element.itertext())
        if self.cell_depth > 0 or self.open_heading is not None:
            self.add(" " + " ".join(text.split()) + " ")
            return
        self.flush()
        lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
        self.builder.block("\n".join(lines).strip("\n"), "code")


def _walk(
    root: etree._Element,
    role_of: Callable[[etree._Element], _Role],
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
            if role is _Role.SKIP:
                walker.skip_subtree()
            elif role is _Role.PREFORMATTED:
                collector.preformatted(element)
                walker.skip_subtree()
            else:
                collector.open(role, element)
                collector.add(element.text)
        else:
            if role not in (_Role.SKIP, _Role.PREFORMATTED):
                collector.close(role, element)
            if element is not root:
                collector.add(element.tail)
    collector.flush()


def _normalise_inline(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.split(_LINE_BREAK))
    return "\n".join(line for line in lines if line)


def _decode_html(content: bytes, encoding: str | None, source: str) -> str:
    declared = encoding if codec_name(encoding) is not None else None
    if declared is None:
        head = content[:4096]
        match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
        declared = match.group(1).decode("ascii", errors="replace") if match else None
        # As browsers do: a page cannot declare UTF-16 from inside ASCII-compatible markup,
        # and "us-ascii" pages are in practice UTF-8 or windows-1252, which guessing handles.
        codec = codec_name(declared)
        if codec is not None and (codec.startswith("utf-16") or codec == "ascii"):
            declared = "utf-8" if codec.startswith("utf-16") else None
    text = decode_text(content, declared)
    if text is None and content.count(b"\x00") <= len(content) // 1000:
        # A stray NUL byte is common in real pages; a binary file is full of them.
        text = decode_text(content.replace(b"\x00", b""), declared)
    if text is None:
        raise UnsupportedContentError(source, "the content is binary, not an HTML page")
    return text


def _parse_document(text: str, source: str) -> lxml.html.HtmlElement:
    cleaned = _UNREADABLE_CHARACTERS.sub(" ", _XML_DECLARATION.sub("", text, count=1))
    if not cleaned.strip():
        raise ParseError(source, "no readable text in the page")
    try:
        return lxml.html.document_fromstring(cleaned, parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(source, f"the HTML could not be parsed: {exc}") from exc


def _main_content_sections(tree: lxml.html.HtmlElement, source: str) -> tuple[Section, ...]:
    try:
        extracted = trafilatura.bare_extraction(
            tree,
            output_format="python",
            include_comments=False,
            include_tables=True,
            include_formatting=True,
            include_links=False,
            include_images=False,
            deduplicate=False,
            with_metadata=False,
        )
    except (RecursionError, ValueError, TypeError, etree.LxmlError) as exc:
        logger.info("main-content extraction failed for %s (%s); using the fallback", source, exc)
        return ()
    body = getattr(extracted, "body", None)
    if not isinstance(body, etree._Element):
        return ()
    builder = SectionBuilder()
    _walk(body, _trafilatura_role, builder)
    return builder.sections()


def _fallback_sections(tree: lxml.html.HtmlElement) -> tuple[Section, ...]:
    """Plain extraction for pages too short for trafilatura, with page furniture removed."""
    unwanted: list[lxml.html.HtmlElement] = list(
        tree.xpath(
            "//script | //style | //noscript | //template | //nav | //aside | //form"
            " | //iframe | //svg | //dialog | //*[@hidden] | //*[@aria-hidden='true']"
            # A header or footer inside an article is the article's own (its title, its date).
            " | //header[not(ancestor::article or ancestor::main)]"
            " | //footer[not(ancestor::article or ancestor::main)]"
        )
    )
    for element in tree.xpath("//*[@id or @class]"):
        if str(element.tag) in ("html", "body", "main", "article"):
            continue
        marker = f"{element.get('id', '')} {element.get('class', '')}"
        if _FURNITURE_MARKERS.search(marker):
            unwanted.append(element)
    for element in unwanted:
        if element.getparent() is not None:
            element.drop_tree()
    root = _fallback_root(tree)
    builder = SectionBuilder()
    _walk(root, _html_role, builder)
    return builder.sections()


def _fallback_root(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    for xpath in ("//main", "//*[@role='main']"):
        found = tree.xpath(xpath)
        if found:
            return found[0]  # type: ignore[no-any-return]
    articles: list[lxml.html.HtmlElement] = tree.xpath("//article")
    if articles:
        return max(articles, key=lambda article: len(article.text_content()))
    bodies: list[lxml.html.HtmlElement] = tree.xpath("//body")
    return bodies[0] if bodies else tree


def _page_title(tree: lxml.html.HtmlElement) -> str:
    candidates: list[str] = []
    title = tree.find(".//title")
    if title is not None:
        candidates.append(title.text_content())
    candidates.extend(str(value) for value in tree.xpath("//meta[@property='og:title']/@content"))
    first_heading = tree.find(".//h1")
    if first_heading is not None:
        candidates.append(first_heading.text_content())
    for candidate in candidates:
        text = " ".join(candidate.split())
        if text:
            return text[:_MAX_TITLE_CHARACTERS]
    return ""


def _character_count(sections: tuple[Section, ...]) -> int:
    return sum(len(section.text) for section in sections)


def _first_heading(sections: tuple[Section, ...]) -> str:
    for section in sections:
        if section.heading_path:
            return section.heading_path[0][:_MAX_TITLE_CHARACTERS]
    return ""


def _base_url(tree: lxml.html.HtmlElement, url: str | None) -> str | None:
    hrefs = tree.xpath("//base/@href")
    if not hrefs:
        return url
    return _absolute_http_url(str(hrefs[0]), url) or url


def _absolute_http_url(href: str, base_url: str | None) -> str | None:
    # Browsers ignore tabs and newlines inside URLs, and trim surrounding spaces.
    href = re.sub(r"[\t\n\r]", "", href).strip()
    if not href or len(href) > _MAX_LINK_CHARACTERS:
        return None
    try:
        absolute = urljoin(base_url, href) if base_url else href
        absolute = urldefrag(absolute).url
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return absolute


def _links(tree: lxml.html.HtmlElement, base_url: str | None) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for href in tree.xpath("//a/@href | //area/@href"):
        absolute = _absolute_http_url(str(href), base_url)
        if absolute is not None:
            seen.setdefault(absolute, None)
    return tuple(seen)


def _canonical_url(tree: lxml.html.HtmlElement, base_url: str | None) -> str | None:
    for link in tree.xpath("//link[@rel and @href]"):
        relations = str(link.get("rel", "")).lower().split()
        if "canonical" in relations:
            return _absolute_http_url(str(link.get("href", "")), base_url)
    return None


def _has_noindex(tree: lxml.html.HtmlElement) -> bool:
    for meta in tree.xpath("//meta[@name and @content]"):
        if str(meta.get("name", "")).strip().lower() not in ("robots", "googlebot"):
            continue
        directives = re.split(r"[\s,]+", str(meta.get("content", "")).lower())
        if "noindex" in directives or "none" in directives:
            return True
    return False
