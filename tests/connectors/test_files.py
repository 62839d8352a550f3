"""Files as documents: real PDF, Word, Markdown, HTML and text files made in the tests."""

from __future__ import annotations

import doctest
import io
import os
import time
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

import connectors.files
from assistant.errors import ConnectorError, ParseError, TooLargeError, UnsupportedContentError
from connectors.base import Connector
from connectors.document import Document, Section, SourceFailure
from connectors.files import FileConnector, parse_bytes, sniff_kind

PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06" * 8


def make_pdf(
    *,
    title: str | None = "Quarterly Report",
    pages: tuple[tuple[str, str], ...] = (
        ("Introduction", "Refunds are paid within thirty days. This is an exam-\nple of a break."),
        ("Results", "Revenue grew by ten percent in the third quarter."),
    ),
    bookmarks: bool = True,
    password: str | None = None,
    with_text: bool = True,
) -> bytes:
    pdf = FPDF()
    if title is not None:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=12)
    for heading, body in pages:
        pdf.add_page()
        if not with_text:
            pdf.rect(20, 20, 100, 60, style="F")  # what a scanned page holds: no text
            continue
        if bookmarks:
            pdf.start_section(heading)
        pdf.multi_cell(0, 10, body)
    if password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    return bytes(pdf.output())


def make_docx(*, core_title: str = "", with_title_style: bool = True) -> bytes:
    document = docx.Document()
    document.core_properties.title = core_title
    if with_title_style:
        document.add_paragraph("Employee Handbook", style="Title")
    document.add_paragraph("Welcome to the company.")
    document.add_heading("Leave", level=1)
    document.add_paragraph("You get 25 days of paid leave a year.")
    document.add_heading("Sick leave", level=2)
    document.add_paragraph("Tell your manager before ten in the morning.")
    document.add_paragraph("Bring a doctor's note after three days", style="List Bullet")
    table = document.add_table(rows=3, cols=2)
    for row_index, (days, pay) in enumerate([("Days", "Pay"), ("1-3", "100%"), ("4+", "80%")]):
        table.cell(row_index, 0).text = days
        table.cell(row_index, 1).text = pay
    document.add_heading("Travel", level=1)
    document.add_paragraph("Book trains rather than flights.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


MARKDOWN = """---
title: "Getting started"
tags: [setup, install]
---
Read this first, then see [the FAQ](https://example.com/faq) and ![a diagram](d.png).

Installation
============

You need Python <abbr>3.11</abbr> or later.

1. Download the package
2. Run `setup`
   - with **admin** rights

```bash
# a comment, not a heading
pip install thing
```

## Configuration

| key | value |
|-----|-------|
| port | 8080 |

<div class="note">Careful &amp; slow.<script>alert("SCRIPT-LEAK")</script></div>

# Troubleshooting

Logs live in `/var/log/thing`.
"""

HTML_FILE = """<!DOCTYPE html><html><head><title>Shipping</title></head><body>
<nav>Home NAV-LEAK</nav>
<main><h1>Shipping</h1><p>We ship to every country in the European Union within five days.</p>
<h2>Costs</h2><p>Shipping is free above fifty euros; below that it costs four euros.</p></main>
<footer>FOOTER-LEAK</footer></body></html>"""


def test_pdf_pages_become_sections_with_bookmark_headings() -> None:
    document = parse_bytes(make_pdf(), "/docs/report.pdf", name_hint="report.pdf")

    assert document.content_type == "pdf"
    assert document.title == "Quarterly Report"
    assert document.sections == (
        Section(
            ("Introduction",), "Refunds are paid within thirty days. This is an example of a break."
        ),
        Section(("Results",), "Revenue grew by ten percent in the third quarter."),
    )


def test_pdf_without_metadata_title_or_bookmarks() -> None:
    document = parse_bytes(make_pdf(title=None, bookmarks=False), "/docs/report.pdf")

    assert document.title == "Refunds are paid within thirty days. This is an example of a break."
    assert [section.heading_path for section in document.sections] == [(), ()]


def test_pdf_named_txt_is_parsed_as_pdf() -> None:
    document = parse_bytes(make_pdf(), "/docs/notes.txt", name_hint="notes.txt")
    assert document.content_type == "pdf"
    assert sniff_kind(make_pdf(), name_hint="notes.txt") == "pdf"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(make_pdf()[:600], id="truncated"),
        pytest.param(b"%PDF-1.7\n" + b"\x13garbage\x00" * 500, id="garbage"),
        pytest.param(b"%PDF-", id="header only"),
    ],
)
def test_corrupt_pdf_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError) as raised:
        parse_bytes(data, "/docs/broken.pdf")
    assert raised.value.source == "/docs/broken.pdf"
    assert raised.value.reason.startswith("corrupt PDF")


def test_password_protected_pdf_is_a_parse_error_saying_so() -> None:
    with pytest.raises(ParseError, match="encrypted with a password"):
        parse_bytes(make_pdf(password="secret"), "/docs/locked.pdf")


def test_pdf_without_text_is_a_parse_error_about_ocr() -> None:
    with pytest.raises(ParseError, match="OCR is not supported"):
        parse_bytes(make_pdf(with_text=False), "/docs/scan.pdf")


def test_docx_headings_tables_and_lists() -> None:
    document = parse_bytes(make_docx(), "/docs/handbook.docx", name_hint="handbook.docx")

    assert document.content_type == "docx"
    assert document.title == "Employee Handbook"
    assert document.sections == (
        Section(("Employee Handbook",), "Welcome to the company."),
        Section(("Employee Handbook", "Leave"), "You get 25 days of paid leave a year."),
        Section(
            ("Employee Handbook", "Leave", "Sick leave"),
            "Tell your manager before ten in the morning.\n\n"
            "- Bring a doctor's note after three days\n\n"
            "Days | Pay\n1-3 | 100%\n4+ | 80%",
        ),
        Section(("Employee Handbook", "Travel"), "Book trains rather than flights."),
    )


def test_docx_title_prefers_core_properties_then_falls_back_to_first_heading() -> None:
    assert parse_bytes(make_docx(core_title="HR Handbook 2024"), "/d/h.docx").title == (
        "HR Handbook 2024"
    )
    assert parse_bytes(make_docx(with_title_style=False), "/d/h.docx").title == "Leave"


def test_corrupt_docx_is_a_parse_error() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document>not closed")
    with pytest.raises(ParseError, match="corrupt Word document"):
        parse_bytes(buffer.getvalue(), "/docs/broken.docx")


def test_zip_that_is_not_a_docx_is_unsupported() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photos/readme.txt", "holiday photos")
    with pytest.raises(UnsupportedContentError, match="not a Word"):
        parse_bytes(buffer.getvalue(), "/docs/archive.docx", name_hint="archive.docx")


def test_markdown_sections_front_matter_and_readable_text() -> None:
    document = parse_bytes(MARKDOWN.encode(), "/docs/guide.md", name_hint="guide.md")

    assert document.content_type == "markdown"
    assert document.title == "Getting started"
    by_path = {section.heading_path: section.text for section in document.sections}
    assert by_path[()] == "Read this first, then see the FAQ and a diagram."
    assert by_path[("Installation",)] == (
        "You need Python 3.11 or later.\n\n"
        "1. Download the package\n2. Run setup\n  - with admin rights\n\n"
        "# a comment, not a heading\npip install thing"
    )
    assert (
        by_path[("Installation", "Configuration")] == "key | value\nport | 8080\n\nCareful & slow."
    )
    assert by_path[("Troubleshooting",)] == "Logs live in /var/log/thing."
    assert "tags:" not in document.text and "https://" not in document.text
    assert "SCRIPT-LEAK" not in document.text


def test_markdown_title_falls_back_to_first_h1_then_stem() -> None:
    assert parse_bytes(b"Intro.\n\n# Main\n\nText.", "/d/a.md").title == "Main"
    assert parse_bytes(b"## Only a second level\n\nText.", "/d/notes.md").title == "notes"


def test_markdown_by_content_type_hint() -> None:
    document = parse_bytes(
        b"# Hi\n\nThere.", "https://x.test/raw", content_type_hint="text/markdown"
    )
    assert document.content_type == "markdown"
    assert document.sections == (Section(("Hi",), "There."),)


def test_html_file_drops_furniture_and_keeps_headings() -> None:
    document = parse_bytes(HTML_FILE.encode(), "/docs/shipping.html", name_hint="shipping.html")

    assert document.content_type == "html"
    assert document.title == "Shipping"
    assert [section.heading_path for section in document.sections] == [
        ("Shipping",),
        ("Shipping", "Costs"),
    ]
    assert "NAV-LEAK" not in document.text and "FOOTER-LEAK" not in document.text


def test_html_named_txt_is_parsed_as_html() -> None:
    document = parse_bytes(HTML_FILE.encode(), "/docs/page.txt", name_hint="page.txt")
    assert document.content_type == "html"
    assert "<" not in document.text


def test_html_by_content_type_hint_uses_its_charset() -> None:
    data = "<p>Crème brûlée for dessert.</p>".encode("cp1252")
    document = parse_bytes(
        data, "https://x.test/menu", content_type_hint="text/html; charset=windows-1252"
    )
    assert document.content_type == "html"
    assert document.text == "Crème brûlée for dessert."


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  ", b"\xef\xbb\xbf  \n"])
def test_empty_file_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError) as raised:
        parse_bytes(data, "/docs/empty.txt")
    assert raised.value.reason == "empty file"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(PNG_BYTES, id="png"),
        pytest.param(bytes(range(256)) * 16, id="random bytes with NULs"),
    ],
)
def test_binary_file_named_html_is_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedContentError):
        parse_bytes(data, "/docs/index.html", name_hint="index.html")
    with pytest.raises(UnsupportedContentError):
        sniff_kind(data, name_hint="index.html", content_type_hint="text/html")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Le café était “très” bon, über alles — naïve façade.\n", "cp1252"),
        ("Grüße aus Köln, à bientôt, señor Muñoz.\n", "latin-1"),
        ("Plain UTF-8: Zażółć gęślą jaźń ✓\n", "utf-8"),
        ("UTF-8 with a byte-order mark: café\n", "utf-8-sig"),
        ("UTF-16 with a byte-order mark: café ✓\n", "utf-16"),
    ],
)
def test_text_encodings_are_decoded(text: str, encoding: str) -> None:
    document = parse_bytes(text.encode(encoding), "/docs/letter.txt", name_hint="letter.txt")
    assert document.content_type == "text"
    assert document.text == text.strip()


def test_text_is_one_section_with_normalised_line_endings() -> None:
    data = b"First line   \r\nSecond line\rThird\t \n\n\nLast\n\n"
    document = parse_bytes(data, "/docs/readme", name_hint="README.txt")
    assert document.title == "README"
    assert document.sections == (Section((), "First line\nSecond line\nThird\n\n\nLast"),)


def test_file_connector_follows_the_connector_protocol(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Hello.")
    connector = FileConnector(tmp_path)
    assert isinstance(connector, Connector)
    assert connector.source == str(tmp_path.resolve())
    assert connector.complete is False


def test_file_connector_loads_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nStep one.")
    connector = FileConnector(path)

    results = list(connector.load())

    assert len(results) == 1
    document = results[0]
    assert isinstance(document, Document)
    assert document.source == str(path.resolve())
    assert document.title == "Guide"
    assert connector.complete is True


def test_missing_path_raises_at_first_iteration(tmp_path: Path) -> None:
    results = FileConnector(tmp_path / "nowhere").load()
    with pytest.raises(ConnectorError, match="no such file or directory"):
        next(results)


def test_directory_mix_loads_every_good_file_and_reports_every_bad_one(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes(make_pdf())
    (tmp_path / "handbook.docx").write_bytes(make_docx())
    (tmp_path / "guides").mkdir()
    (tmp_path / "guides" / "start.md").write_text(MARKDOWN)
    (tmp_path / "guides" / "shipping.html").write_text(HTML_FILE)
    (tmp_path / "notes.txt").write_bytes("Café notes.".encode("cp1252"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n" + b"junk" * 50)
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "photo.png").write_bytes(PNG_BYTES)
    (tmp_path / "fake.html").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "huge.txt").write_bytes(b"x" * 2048)
    (tmp_path / ".hidden.md").write_text("# Secret\n\nHIDDEN")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.txt").write_text("HIDDEN")

    connector = FileConnector(tmp_path, max_bytes=1024)
    results = list(connector.load())

    def path(name: str) -> str:
        return str((tmp_path / name).resolve())

    documents = {result.source: result for result in results if isinstance(result, Document)}
    failures = {result.source: result for result in results if isinstance(result, SourceFailure)}
    assert set(documents) == {
        path("guides/shipping.html"),
        path("guides/start.md"),
        path("notes.txt"),
    }
    # The PDF and DOCX made above are over the 1 KiB limit of this connector.
    expected_errors = {
        path("broken.pdf"): ParseError,
        path("empty.txt"): ParseError,
        path("fake.html"): UnsupportedContentError,
        path("handbook.docx"): TooLargeError,
        path("huge.txt"): TooLargeError,
        path("photo.png"): UnsupportedContentError,
        path("report.pdf"): TooLargeError,
    }
    assert {source: type(failure.error) for source, failure in failures.items()} == expected_errors
    for source, failure in failures.items():
        assert isinstance(failure.error, ConnectorError)
        assert failure.error.source == source
        assert failure.reason == failure.error.reason
    assert [result.source for result in results] == sorted(
        [*documents, *failures], key=lambda source: Path(source).relative_to(tmp_path).parts
    )
    assert documents[path("notes.txt")].text == "Café notes."
    assert all("HIDDEN" not in document.text for document in documents.values())
    assert connector.complete is True


def test_large_sparse_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "giant.txt"
    with path.open("wb") as file:
        file.truncate(8 * 1024**3)
    started = time.monotonic()
    results = list(FileConnector(tmp_path, max_bytes=50 * 1024**2).load())
    assert time.monotonic() - started < 2
    assert len(results) == 1
    failure = results[0]
    assert isinstance(failure, SourceFailure)
    assert isinstance(failure.error, TooLargeError)
    assert "raise max_bytes" in failure.reason


def test_symlinks_outside_the_root_are_skipped_and_loops_do_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "inner").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("OUTSIDE")
    (root / "inner" / "page.txt").write_text("Inside text.")
    (root / "link-out.txt").symlink_to(outside / "secret.txt")
    (root / "dir-out").symlink_to(outside, target_is_directory=True)
    (root / "inner" / "loop").symlink_to(root, target_is_directory=True)
    (root / "alias.txt").symlink_to(root / "inner" / "page.txt")

    results = list(FileConnector(root).load())

    assert [(type(result), result.source) for result in results] == [
        (Document, str((root / "inner" / "page.txt").resolve()))
    ]


def test_special_files_are_reported_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "real.txt").write_text("Real text.")

    results = list(FileConnector(tmp_path).load())

    assert isinstance(results[0], SourceFailure)
    assert isinstance(results[0].error, UnsupportedContentError)
    assert isinstance(results[1], Document)


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(connectors.files).failed == 0
