"""Main-content extraction from HTML: furniture dropped, headings kept as section paths."""

from __future__ import annotations

import doctest
import time
from pathlib import Path

import pytest

import connectors.html
import connectors.html_structure
from assistant.errors import ParseError, UnsupportedContentError
from connectors.document import Section
from connectors.html import SectionBuilder, decode_text, extract_html, html_fragment_text

DOCS_FAQ_INDEX = Path("/usr/share/doc/python3.11/html/faq/index.html")

HELP_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Refund policy</title>
  <meta property="og:title" content="Refunds at ACME">
  <link rel="canonical" href="/policies/refunds#top">
  <style>.banner { color: red } /* STYLE-LEAK */</style>
  <script>window.analytics = "SCRIPT-LEAK-HEAD";</script>
</head>
<body>
  <div id="cookie-banner" class="cookie-consent">
    <p>We use cookies to improve your experience on our website. By browsing on, you agree to
    our use of cookies. COOKIE-LEAK</p>
    <button>Accept all</button>
  </div>
  <header class="site-header">
    <a href="/">ACME Store HEADER-LEAK</a>
    <nav><ul>
      <li><a href="/shop">Shop NAV-LEAK</a></li>
      <li><a href="/about#team">About us</a></li>
      <li><a href="mailto:help@example.com">Mail us</a></li>
      <li><a href="javascript:void(0)">Menu</a></li>
    </ul></nav>
  </header>
  <div class="layout">
    <aside class="sidebar">
      <h3>Related SIDEBAR-LEAK</h3>
      <ul><li><a href="/shipping">Shipping</a></li><li><a href="/shop">Shop again</a></li></ul>
    </aside>
    <main>
      <article>
        <h1>Refund policy</h1>
        <p>We want you to be happy with every purchase. If something is not right, ask for a
        refund within thirty days of delivery &amp; we will sort it out, no questions asked.</p>
        <h2>How to ask for a refund</h2>
        <p>Write to our support team with your order number and the items you want to return.
        We answer within two working days, usually faster.</p>
        <ul><li>Order number</li><li>Items to return</li></ul>
        <h3>Damaged items</h3>
        <p>Send a photo of the damage. We refund damaged items in full, shipping included, and
        you keep the item, caf&eacute; cr&egrave;me edition or not.</p>
        <table>
          <tr><th>Item</th><th>Refund</th></tr>
          <tr><td>Mug</td><td>100%</td></tr>
        </table>
        <h2>Exceptions</h2>
        <p>Gift cards and personalised items cannot be refunded, because we cannot sell them
        to anyone else afterwards.</p>
        <pre><code>refund --order 1234
  --reason damaged</code></pre>
      </article>
    </main>
  </div>
  <footer><p>&copy; 2024 ACME Store FOOTER-LEAK. All rights reserved.</p>
    <a href="https://other.example.org/privacy">Privacy</a></footer>
  <script>document.write("SCRIPT-LEAK-BODY")</script>
</body>
</html>
"""

LEAK_MARKERS = (
    "COOKIE-LEAK",
    "HEADER-LEAK",
    "NAV-LEAK",
    "SIDEBAR-LEAK",
    "FOOTER-LEAK",
    "SCRIPT-LEAK",
    "STYLE-LEAK",
)


def page_text(sections: tuple[Section, ...]) -> str:
    return "\n".join(" > ".join(section.heading_path) + "\n" + section.text for section in sections)


def test_article_headings_become_heading_paths() -> None:
    page = extract_html(HELP_PAGE, url="https://shop.example.com/help/refunds")

    by_path = {section.heading_path: section.text for section in page.sections}
    assert by_path[("Refund policy",)].startswith("We want you to be happy")
    assert "Write to our support team" in by_path[("Refund policy", "How to ask for a refund")]
    damaged = by_path[("Refund policy", "How to ask for a refund", "Damaged items")]
    assert "café crème edition" in damaged
    assert "Gift cards" in by_path[("Refund policy", "Exceptions")]
    assert page.title == "Refund policy"


def test_page_furniture_scripts_and_styles_are_dropped() -> None:
    page = extract_html(HELP_PAGE, url="https://shop.example.com/help/refunds")

    text = page_text(page.sections)
    for marker in LEAK_MARKERS:
        assert marker not in text
    assert "<" not in text and "&amp;" not in text
    assert "delivery & we will" in text


def test_lists_tables_and_code_come_out_as_readable_text() -> None:
    page = extract_html(HELP_PAGE)

    text = page_text(page.sections)
    assert "- Order number\n- Items to return" in text
    assert "Item | Refund\nMug | 100%" in text
    assert "refund --order 1234\n  --reason damaged" in text


def test_links_canonical_and_noindex() -> None:
    page = extract_html(HELP_PAGE, url="https://shop.example.com/help/refunds")

    assert page.canonical_url == "https://shop.example.com/policies/refunds"
    assert page.links == (
        "https://shop.example.com/",
        "https://shop.example.com/shop",
        "https://shop.example.com/about",
        "https://shop.example.com/shipping",
        "https://other.example.org/privacy",
    )
    assert page.noindex is False


def test_links_resolve_against_base_and_relative_links_need_a_url() -> None:
    markup = (
        '<html><head><base href="https://docs.example.com/v2/"></head><body>'
        '<p>See <a href="guide/start.html#install">the guide</a> and '
        '<a href=" https://example.com/a\n b ">this</a> and <a href="http://[broken">bad</a>.</p>'
        "</body></html>"
    )
    assert extract_html(markup).links == (
        "https://docs.example.com/v2/guide/start.html",
        "https://example.com/a b",
    )
    assert extract_html(markup.replace("<base", "<nobase")).links == ("https://example.com/a b",)


@pytest.mark.parametrize(
    ("robots", "expected"),
    [("noindex, follow", True), ("NONE", True), ("index,follow", False)],
)
def test_robots_meta_noindex(robots: str, expected: bool) -> None:
    markup = f'<html><head><meta name="Robots" content="{robots}"></head><p>Hello there.</p>'
    assert extract_html(markup).noindex is expected


def test_title_falls_back_to_og_title_then_first_heading() -> None:
    og_only = '<html><head><meta property="og:title" content="From OG"></head><h1>Head</h1>'
    assert extract_html(og_only + "<p>Body text.</p>").title == "From OG"
    assert extract_html("<h1>First heading</h1><p>Body text.</p>").title == "First heading"
    assert extract_html("<p>No title at all.</p>").title == ""


def test_short_page_uses_the_structured_fallback() -> None:
    markup = (
        "<html><body><nav>Menu NAV-LEAK</nav><div class='gdpr-notice'>Consent COOKIE-LEAK</div>"
        "<main><header><h1>Contact</h1></header><p>Call us on 555 0100.</p>"
        "<h2>Address</h2><p>1 Main Street<br>Springfield</p></main>"
        "<footer>FOOTER-LEAK</footer></body></html>"
    )
    page = extract_html(markup)

    assert page.sections == (
        Section(("Contact",), "Call us on 555 0100."),
        Section(("Contact", "Address"), "1 Main Street\nSpringfield"),
    )


def test_short_page_without_main_drops_banners_and_hidden_elements() -> None:
    markup = (
        "<html><body><div id='consent-popup'><p>Accept cookies COOKIE-LEAK</p></div>"
        "<div class='top-banner'>Sale BANNER-LEAK</div><div hidden>HIDDEN-LEAK</div>"
        "<form><label>Search FORM-LEAK</label></form>"
        "<h1>Opening hours</h1><p>Monday to Friday, nine to five.</p></body></html>"
    )
    assert extract_html(markup).sections == (
        Section(("Opening hours",), "Monday to Friday, nine to five."),
    )


def test_bytes_are_decoded_with_the_meta_charset() -> None:
    markup = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
        "</head><body><p>Caf\u00e9 \u201cspecial\u201d \u00fcber alles.</p></body></html>"
    )
    page = extract_html(markup.encode("cp1252"))
    assert page.sections[0].text == "Café “special” über alles."


def test_bytes_are_decoded_with_the_declared_encoding_and_byte_order_mark() -> None:
    body = "<html><body><p>Grüße aus Köln.</p></body></html>"
    assert extract_html(body.encode("latin-1"), encoding="ISO-8859-1").sections[0].text == (
        "Grüße aus Köln."
    )
    assert extract_html(body.encode("utf-16")).sections[0].text == "Grüße aus Köln."
    assert extract_html(b"\xef\xbb\xbf" + body.encode("utf-8")).sections[0].text == (
        "Grüße aus Köln."
    )


@pytest.mark.parametrize(
    "markup",
    ["", "   \n", "<html><body><script>only()</script><style>p{}</style></body></html>"],
)
def test_a_page_without_text_is_a_parse_error_naming_the_url(markup: str) -> None:
    with pytest.raises(ParseError) as raised:
        extract_html(markup, url="https://example.com/empty")
    assert raised.value.source == "https://example.com/empty"
    assert "no readable text" in raised.value.reason


def test_errors_name_html_when_there_is_no_url() -> None:
    with pytest.raises(ParseError) as raised:
        extract_html("<html></html>")
    assert raised.value.source == "<html>"


def test_binary_bytes_are_refused() -> None:
    with pytest.raises(UnsupportedContentError):
        extract_html(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 20)


def test_deeply_nested_markup_finishes_quickly_and_keeps_the_article() -> None:
    markup = (
        "<html><body><article><h1>Nesting</h1><p>Intro text before the nest.</p></article>"
        + "<div>" * 10_000
        + "deep text"
        + "</div>" * 10_000
        + "</body></html>"
    )
    started = time.monotonic()
    page = extract_html(markup)
    assert time.monotonic() - started < 5
    assert page.sections[0] == Section(("Nesting",), "Intro text before the nest.")
    assert "<div" not in page_text(page.sections)


def test_huge_attribute_and_script_text_do_not_leak() -> None:
    markup = (
        '<html><body><h1>Big</h1><p data-payload="'
        + "<script>x</script>" * 60_000
        + '">Visible paragraph text.</p><script>var leaked = "SCRIPT-LEAK'
        + "a" * 100_000
        + '";</script><img src=x onerror="alert(1)"><p>Second paragraph.</p></body></html>'
    )
    assert len(markup) > 1_000_000
    started = time.monotonic()
    page = extract_html(markup)
    assert time.monotonic() - started < 5
    text = page_text(page.sections)
    assert "Visible paragraph text." in text and "Second paragraph." in text
    assert "SCRIPT-LEAK" not in text and "<script" not in text and "alert" not in text


def test_invalid_markup_and_entities() -> None:
    markup = (
        "<html><body><main><h2>Broken <b>heading</h2><p>Unclosed <i>tags <p>next"
        "</span></div> &lt;not a tag&gt; &eacute;t&eacute; &#x263A; &bogus;</main>"
    )
    page = extract_html(markup)
    text = page_text(page.sections)
    assert page.sections[0].heading_path == ("Broken heading",)
    assert "<not a tag> été ☺ &bogus;" in text
    assert "</" not in text


def test_section_builder_nests_and_joins_items_and_rows() -> None:
    builder = SectionBuilder()
    builder.block("Preamble.")
    builder.heading(2, "Billing")
    builder.heading(4, "Cards")
    builder.block("- Visa", "item")
    builder.block("- Amex", "item")
    builder.block("Note.")
    builder.heading(3, "Invoices")
    builder.heading(None, "Monthly")
    builder.block("a | b", "row")
    builder.heading(1, "Top")
    builder.heading(2, "Empty headings make no section")

    assert builder.sections() == (
        Section((), "Preamble."),
        Section(("Billing", "Cards"), "- Visa\n- Amex\n\nNote."),
        Section(("Billing", "Invoices", "Monthly"), "a | b"),
    )


def test_html_fragment_text_strips_markup() -> None:
    assert html_fragment_text("<h3>Tip</h3><p>Use <code>--fast</code><script>x()</script></p>") == (
        "Tip\n\nUse --fast"
    )
    assert html_fragment_text("<!-- only a comment -->") == ""


def test_decode_text_prefers_windows_1252_among_equal_guesses() -> None:
    assert decode_text("Héllo naïve “quotes”".encode("cp1252")) == "Héllo naïve “quotes”"
    assert decode_text("Größe".encode("latin-1")) == "Größe"
    assert decode_text(b"abc\x00\x01\x02") is None


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(connectors.html).failed == 0


def test_section_builder_docstring_examples_hold() -> None:
    results = doctest.testmod(connectors.html_structure)
    assert (results.failed, results.attempted > 0) == (0, True)


SPHINX_LIKE_PAGE = """<html><head><title>Installing — Docs</title></head><body>
<div class="related" role="navigation" aria-label="related navigation">
  <a href="prev.html">Previous topic RELATED-LEAK</a> | <a href="next.html">next</a>
</div>
<div class="body" role="main">
  <h1 id="install">Installing<a class="headerlink" href="#install" title="Link">¶</a></h1>
  <p>Run the installer and follow its steps; it asks where to put the files.<a href="#top">↑</a></p>
  <h2 id="upgrade">Upgrading <a class="hash-link" href="#upgrade">&#8203;</a></h2>
  <p>Upgrades keep your settings, see the note<a href="#fn1">[1]</a> below.</p>
  <h2 id="ref"><a href="#ref">Reference</a></h2>
  <p>Every option is listed in the reference of the command line tool.</p>
</div>
<div class="sphinxsidebar" role="navigation"><h3>This page</h3>
  <p>Show Source SIDEBAR-LEAK</p></div>
<div role="search"><form><input name="q"></form> SEARCH-LEAK</div>
<div class="footer" role="contentinfo">Copyright FOOTER-LEAK</div>
</body></html>"""


def test_permalink_symbols_and_landmark_furniture_are_not_read_as_content() -> None:
    """Documentation themes end every heading with a permalink symbol and mark their sidebars
    with ARIA roles on plain divs; neither is part of what a page says."""
    page = extract_html(SPHINX_LIKE_PAGE, "https://docs.example.com/install.html")
    text = " ".join(section.text for section in page.sections)
    headings = [section.heading_path for section in page.sections]
    assert headings == [("Installing",), ("Installing", "Upgrading"), ("Installing", "Reference")]
    assert "¶" not in text and "↑" not in text and "\u200b" not in text
    assert "LEAK" not in text
    # Links with words in them are content: a footnote mark and a heading written as a link.
    assert "note[1] below" in text


def test_a_landmark_role_on_the_page_container_does_not_remove_the_page() -> None:
    page = extract_html(
        '<body role="banner"><main role="navigation"><h1>Plans</h1>'
        "<p>Every plan includes the widget and the Slack integration.</p></main></body>"
    )
    assert page.sections[0].text.startswith("Every plan includes")


@pytest.mark.skipif(not DOCS_FAQ_INDEX.exists(), reason="needs Debian's python3.11-doc")
def test_a_sphinx_index_page_reads_as_its_list_of_pages_without_the_sidebars() -> None:
    page = extract_html(DOCS_FAQ_INDEX.read_bytes(), "http://127.0.0.1/faq/index.html")
    text = " ".join(section.text for section in page.sections)
    assert page.sections[0].heading_path == ("Python Frequently Asked Questions",)
    assert "Programming FAQ" in text
    assert "Previous topic" not in text and "Show Source" not in text


def _paragraph(topic: str) -> str:
    return f"<p>{f'This paragraph explains {topic} in enough words to read as prose. ' * 5}</p>"


# An older theme's grid with no <main>, <article> or role: the site's header with its own <h1>,
# the content in plain divs, a sidebar of links, and a footer.
GRID_LAYOUT_PAGE = f"""<html><head><title>Caching - Docs</title></head><body>
<div class="document"><div id="custom-doc" class="yui-t6">
  <div id="hd"><h1><a href="/">Example 3.2 documentation</a></h1>
    <div id="global-nav"><a href="/">Home</a> | <a href="/toc">Table of contents</a> NAV-LEAK</div>
  </div>
  <div id="bd"><div id="yui-main"><div class="yui-b"><div class="yui-g">
    <div class="section"><h1>Caching</h1>{_paragraph("why caching helps")}
      <div class="section"><h2>Setting up the cache</h2>{_paragraph("the cache settings")}
        <div class="section"><h3>Memcached</h3>{_paragraph("Memcached")}</div>
      </div>
      <div class="section"><h2>Cache a template fragment</h2>{_paragraph("fragments")}</div>
    </div>
  </div></div></div>
  <div class="yui-b" id="sidebar"><h3>Browse</h3><ul><li><a href="/a">Prev SIDEBAR-LEAK</a></li>
    <li><a href="/b">Next</a></li></ul><h3>Last update:</h3>Nov 11, 2026</div>
  </div>
  <div id="ft"><a href="/">Home</a> | FOOTER-LEAK</div>
</div></div></body></html>"""


def test_a_page_without_a_main_landmark_keeps_its_headings() -> None:
    """Main-content extraction finds no container on such a page and would gather loose
    paragraphs without a single heading; the element holding the prose is marked as main."""
    page = extract_html(GRID_LAYOUT_PAGE, "https://docs.example.com/topics/cache.html")

    assert [section.heading_path for section in page.sections] == [
        ("Caching",),
        ("Caching", "Setting up the cache"),
        ("Caching", "Setting up the cache", "Memcached"),
        ("Caching", "Cache a template fragment"),
    ]
    text = " ".join(section.text for section in page.sections)
    assert "LEAK" not in text and "Example 3.2 documentation" not in text
    assert "explains fragments" in text


def test_the_marked_container_reads_as_if_the_page_had_marked_it_itself() -> None:
    marked = GRID_LAYOUT_PAGE.replace('<div class="yui-g">', '<div class="yui-g" role="main">')
    assert extract_html(marked).sections == extract_html(GRID_LAYOUT_PAGE).sections


def _chapter(number: int, title: str, sections: tuple[str, ...]) -> str:
    """A DocBook chapter: every title in a ``titlepage`` of nested divs, as DocBook writes it."""
    inner = "".join(
        f'<div class="section"><div class="titlepage"><div><div><h3 class="title">'
        f'<a name="s{number}-{index}"></a>{name}</h3></div></div></div>{_paragraph(name)}</div>'
        for index, name in enumerate(sections)
    )
    return (
        f'<div class="chapter"><div class="titlepage"><div><div><h2 class="title">'
        f'<a name="c{number}"></a>Chapter {number}. {title}</h2></div></div></div>'
        f"{_paragraph(title)}{inner}</div>"
    )


DOCBOOK_PAGE = (
    '<html><head><title>User Manual</title></head><body><div class="book"><div class="titlepage">'
    '<div><div><h1 class="title">User Manual</h1></div></div></div>'
    f"{_chapter(1, 'Repositories', ('Cloning', 'Branches'))}"
    f"{_chapter(2, 'History', ('Commits', 'Tags'))}</div></body></html>"
)


def test_a_container_whose_headings_extraction_drops_is_read_with_its_own_structure() -> None:
    """Main-content extraction keeps one heading of a DocBook book, whose titles sit in
    ``titlepage`` divs; the container is then read as it is built, every title in place."""
    page = extract_html(DOCBOOK_PAGE, "https://docs.example.com/user-manual.html")

    assert [section.heading_path for section in page.sections] == [
        ("User Manual", "Chapter 1. Repositories"),
        ("User Manual", "Chapter 1. Repositories", "Cloning"),
        ("User Manual", "Chapter 1. Repositories", "Branches"),
        ("User Manual", "Chapter 2. History"),
        ("User Manual", "Chapter 2. History", "Commits"),
        ("User Manual", "Chapter 2. History", "Tags"),
    ]
    assert "explains Tags" in page.sections[-1].text


def test_a_page_of_links_is_not_read_from_the_one_paragraph_of_its_sidebar() -> None:
    """An index page has lists, not prose: the sidebar's one short paragraph must not be taken
    for the page's content."""
    links = "".join(
        f'<li><a href="/p{i}">Question number {i} about the product?</a></li>' for i in range(30)
    )
    page = extract_html(
        f"<html><head><title>FAQ</title></head><body><div id='bd'><div class='yui-g'><h1>FAQ</h1>"
        f"<ul>{links}</ul></div><div id='sidebar'><h3>Last update:</h3><p>Nov 11, 2026</p>"
        "</div></div></body></html>"
    )
    text = " ".join(section.text for section in page.sections)
    assert "Question number 29 about the product?" in text


def _man_page(header: str, title: str = "<title>git-clean(1)</title>") -> str:
    """An AsciiDoc man page: the title and the NAME line in a header block before the content."""
    return (
        f'<html><head>{title}</head><body class="manpage"><div id="header">{header}</div>'
        '<div id="content"><div class="sect1"><h2>SYNOPSIS</h2><div class="sectionbody">'
        "<pre>git clean [-d] [-f] [-n]</pre></div></div>"
        f'<div class="sect1"><h2>DESCRIPTION</h2><div class="sectionbody">'
        f"{_paragraph('cleaning the working tree')}</div></div>"
        f'<div class="sect1"><h2>OPTIONS</h2><div class="sectionbody">{_paragraph("-d")}'
        f"{_paragraph('-n')}{_paragraph('-x')}</div></div></div>"
        '<div id="footer">Last updated 2026-11-02</div></body></html>'
    )


MAN_PAGE_HEADER = (
    "<h1>git-clean(1) Manual Page</h1><h2>NAME</h2><div class='sectionbody'>"
    "<p>git-clean - Remove untracked files from the working tree</p></div>"
)


def test_a_man_page_keeps_the_summary_line_of_its_title_block() -> None:
    """The one line that says what the page is for sits in the header, outside the content."""
    page = extract_html(_man_page(MAN_PAGE_HEADER), "http://127.0.0.1/git-clean.html")

    assert [section.heading_path for section in page.sections] == [
        ("NAME",),
        ("SYNOPSIS",),
        ("DESCRIPTION",),
        ("OPTIONS",),
    ]
    assert page.sections[0].text == "git-clean - Remove untracked files from the working tree"
    # The heading repeats the page's title, which every chunk carries anyway.
    assert page.title == "git-clean(1)"
    assert "Last updated" not in " ".join(section.text for section in page.sections)


def test_without_a_page_title_the_title_block_keeps_its_heading() -> None:
    page = extract_html(_man_page(MAN_PAGE_HEADER, title=""), "http://127.0.0.1/git-clean.html")
    assert page.title == "git-clean(1) Manual Page"
    assert page.sections[0].heading_path == ("git-clean(1) Manual Page", "NAME")


@pytest.mark.parametrize(
    "header",
    [
        # A site banner: its heading is the logo's link, the rest a menu.
        '<h1><a href="/">Example Docs</a></h1><a href="/guides">Guides</a> '
        '<a href="/api">API reference</a> <a href="/blog">Blog</a>',
        # Far longer than a title and a summary.
        "<h1>Release notes</h1>" + "<p>" + "Announcement text of the release. " * 30 + "</p>",
    ],
)
def test_a_banner_or_a_long_block_before_the_content_is_not_adopted(header: str) -> None:
    page = extract_html(_man_page(header), "http://127.0.0.1/git-clean.html")
    text = " ".join(section.text for section in page.sections)
    assert page.sections[0].heading_path == ("SYNOPSIS",)
    assert "Guides" not in text and "Announcement" not in text
