"""Main-content extraction from HTML: readable text grouped by headings, plus page metadata.

Trafilatura finds the main content and drops navigation, headers, footers, cookie banners and
sidebars. Its XML output keeps headings, lists, tables and code apart, so we build sections
from that tree rather than from its Markdown output, which escapes characters such as ``*``
and ``<`` in the text. Very short pages, where trafilatura finds nothing, and pages whose
headings it drops go through a plain lxml extraction of ``<main>``/``<article>``/``<body>``
(or of the container found to hold the prose) with the page furniture removed.

Only text ever leaves this module: markup, scripts and styles are never copied out.

Usage::

    page = extract_html(response_bytes, url="https://example.com/help/billing")
    for section in page.sections:
        print(" > ".join(section.heading_path), section.text)
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.html
import trafilatura
from lxml import etree

from connectors.decoding import decode_html, decode_text
from connectors.document import Section
from connectors.errors import ParseError
from connectors.html_structure import (
    BlockKind,
    SectionBuilder,
    html_role,
    trafilatura_role,
    walk_text,
)
from connectors.limits import DEFAULT_LIMITS, ExtractionLimits, check_html_elements

__all__ = [
    "BlockKind",
    "ExtractedPage",
    "SectionBuilder",
    "decode_text",
    "extract_html",
    "html_fragment_text",
]

logger = logging.getLogger(__name__)

# C0 controls (tab, line feed and carriage return excepted), DEL and lone surrogates: lxml
# refuses some of them in text and none of them is readable.
_UNREADABLE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]{0,200}\?>", re.IGNORECASE)
_FURNITURE_MARKERS = re.compile(r"cookie|consent|banner|gdpr", re.IGNORECASE)
_MAX_TITLE_CHARACTERS = 300
# Longer hrefs are almost always data: URLs or tracking junk, never pages worth crawling.
_MAX_LINK_CHARACTERS = 4096
# Trafilatura's own threshold below which it distrusts its main-content extraction.
_MIN_MAIN_CONTENT_CHARACTERS = 250

_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True)
_LANDMARK_FURNITURE = (
    "//*[@role='navigation' or @role='search' or @role='complementary'"
    " or @role='banner' or @role='contentinfo']"
)
_CONTAINERS = frozenset({"html", "body", "main", "article"})
# The share of a page's paragraph text the element taken for its main content holds.
_MAIN_CONTENT_SHARE = 0.95
# A page's title block longer than this is not a title and a summary.
_MAX_LEAD_CHARACTERS = 600
_HEADINGS = ".//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6"
# Letters, digits and the underscore: a link whose text has none of them reads as a symbol.
_WORD_CHARACTER = re.compile(r"\w")


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


def extract_html(
    content: bytes | str,
    url: str | None = None,
    *,
    encoding: str | None = None,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> ExtractedPage:
    """Extract the main content of an HTML page as sections, with its title and links.

    ``content`` given as bytes is decoded from its byte-order mark, the ``encoding`` declared
    by the transport (an HTTP ``charset``), its ``<meta charset>``, or else a guess. ``url``
    resolves relative links and names the page in errors.

    Raises:
        ParseError: the page holds no readable text.
        UnsupportedContentError: the bytes are binary, not text.
        DocumentTooLargeError: it has more than ``limits.max_html_elements`` elements.

    >>> page = extract_html("<title>Help</title><main><h1>Refunds</h1><p>In 14 days.</p></main>")
    >>> page.title, page.sections[0].heading_path, page.sections[0].text
    ('Help', ('Refunds',), 'In 14 days.')
    """
    source = url or "<html>"
    text = decode_html(content, encoding, source) if isinstance(content, bytes) else content
    tree = _parse_document(text, source)
    check_html_elements(sum(1 for _ in tree.iter()), source, limits)
    title = _page_title(tree)
    base_url = _base_url(tree, url)
    page_links = _links(tree, base_url)
    canonical_url = _canonical_url(tree, base_url)
    noindex = _has_noindex(tree)

    marked = _mark_main_content(tree)
    headings = len(marked.xpath(_HEADINGS)) if marked is not None else 0
    sections = _main_content_sections(tree, source)
    kept_headings = len({section.heading_path for section in sections if section.heading_path})
    if kept_headings < headings / 2 or _character_count(sections) < _MIN_MAIN_CONTENT_CHARACTERS:
        # Trafilatura dropped most headings of the container (its heuristics read some themes'
        # titles as furniture), or the page is short, where it flattens the whole body,
        # navigation and headings included: the structured fallback does better in both. It
        # starts again from the markup because trafilatura may have trimmed the tree.
        fallback_tree = _parse_document(text, source)
        _mark_main_content(fallback_tree)
        sections = _fallback_sections(fallback_tree) or sections
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
    walk_text(root, html_role, builder, headings_as_text=True)
    return "\n\n".join(section.text for section in builder.sections())


def _parse_document(text: str, source: str) -> lxml.html.HtmlElement:
    cleaned = _UNREADABLE_CHARACTERS.sub(" ", _XML_DECLARATION.sub("", text, count=1))
    if not cleaned.strip():
        raise ParseError(source, "no readable text in the page")
    try:
        tree = lxml.html.document_fromstring(cleaned, parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(source, f"the HTML could not be parsed: {exc}") from exc
    _drop_landmark_furniture(tree)
    _drop_symbol_anchors(tree)
    return tree


def _drop_landmark_furniture(tree: lxml.html.HtmlElement) -> None:
    """Remove the page furniture that ARIA landmark roles name: navigation, search, sidebars,
    the site's banner and footer.

    Themes mark them on plain divs (Sphinx's sidebar and its previous/next bars are
    ``<div role="navigation">``), which main-content extraction does not recognise; on a
    short page it then flattens them into the text.
    """
    for element in tree.xpath(_LANDMARK_FURNITURE):
        # A role misplaced on the page's own container must not take the content with it.
        if str(element.tag) in _CONTAINERS or element.find(".//main") is not None:
            continue
        if element.getparent() is not None:
            element.drop_tree()


def _mark_main_content(tree: lxml.html.HtmlElement) -> lxml.html.HtmlElement | None:
    """Mark the element that holds the page's prose as its main landmark, if none is marked,
    and return it.

    Trafilatura finds the main content by ``<main>``, ``<article>``, ``role="main"`` and common
    class names. On a page with none of them (older themes, such as the YUI grid of Django's
    documentation or DocBook's books) it gathers the loose paragraphs instead and drops every
    heading, so chunks lose their section titles and the page's headings become unsearchable.
    The content is the smallest element that holds nearly all the paragraph text: navigation,
    headers and sidebars hold links and lists, not paragraphs.
    """
    if tree.xpath("//main | //article | //*[@role='main']"):
        return None
    held: dict[etree._Element, int] = {}
    for block in tree.xpath("//p | //pre"):
        length = len(block.text_content().strip())
        for ancestor in block.iterancestors():
            held[ancestor] = held.get(ancestor, 0) + length
    bodies = tree.xpath("//body")
    total = held.get(bodies[0], 0) if bodies else 0
    if total < _MIN_MAIN_CONTENT_CHARACTERS:
        return None  # a page of lists and links (an index): nothing to tell prose apart by
    element = bodies[0]
    while True:
        child = next((c for c in element if held.get(c, 0) >= _MAIN_CONTENT_SHARE * total), None)
        if child is None:
            break
        element = child
    if element is bodies[0] or str(element.tag) not in {"div", "section"}:
        return None
    element.set("role", "main")
    _adopt_page_lead(element)
    return element  # type: ignore[no-any-return]


def _adopt_page_lead(content: lxml.html.HtmlElement) -> None:
    """Move the page's title block into ``content`` when it sits just outside it.

    Generated manuals put the page's ``<h1>`` and its one-line summary in a header block
    before the content (AsciiDoc's man pages: "git-clean - Remove untracked files from the
    working tree"). That sentence says best what the page is for, and is lost with the
    header. A block is taken when it holds the page's first ``<h1>``, comes before
    ``content`` under the same parent and reads as prose: short, and mostly not link text,
    unlike a site banner's logo and menu.
    """
    parent = content.getparent()
    first = (
        next(iter(parent.xpath("ancestor-or-self::body//h1")), None) if parent is not None else None
    )
    if parent is None or first is None or content in first.iterancestors():
        return
    lead = next((a for a in first.iterancestors() if a.getparent() is parent), None)
    if lead is None or parent.index(lead) > parent.index(content):
        return
    text = lead.text_content().strip()
    linked = sum(len(a.text_content().strip()) for a in lead.iter("a"))
    if not text or len(text) > _MAX_LEAD_CHARACTERS or linked * 2 > len(text):
        return
    # A plain block, so no id or class of the header (``header``, ``banner``) marks it as
    # furniture inside the content.
    block = lxml.html.Element("div")
    block.text = lead.text
    for child in list(lead):
        block.append(child)
    parent.remove(lead)
    if first.getparent() is block and parent.xpath("normalize-space(//title)"):
        # The heading repeats the page's title, which every chunk carries already; as the
        # top of every section's heading path it would only lengthen them.
        first.drop_tree()
    content.insert(0, block)


def _drop_symbol_anchors(tree: lxml.html.HtmlElement) -> None:
    """Remove in-page links that show a symbol rather than words.

    Documentation generators put one beside every heading and definition (Sphinx and MkDocs
    ``¶``, Docusaurus a zero-width space, GitHub an icon), and pages add ``↑`` back-to-top
    links. Left in, the symbol ends every heading of every chunk: noise in what is embedded
    and matched, and in the headings shown with a source. A link with any word character
    (``[1]``, ``Installing``) is content and stays.
    """
    for anchor in tree.xpath("//a[starts-with(normalize-space(@href), '#')]"):
        if _WORD_CHARACTER.search(anchor.text_content()) is None:
            anchor.drop_tree()  # keeps the text that follows the link


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
    walk_text(body, trafilatura_role, builder)
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
        if str(element.tag) in _CONTAINERS:
            continue
        marker = f"{element.get('id', '')} {element.get('class', '')}"
        if _FURNITURE_MARKERS.search(marker):
            unwanted.append(element)
    for element in unwanted:
        if element.getparent() is not None:
            element.drop_tree()
    root = _fallback_root(tree)
    builder = SectionBuilder()
    walk_text(root, html_role, builder)
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
