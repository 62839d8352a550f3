"""Decompression and size bombs, one or more per format (DOCX, PDF, HTML, Markdown, plain
text, a gzip'd sitemap, a gzip-encoded response): each is refused fast with a typed error
naming the limit, or read within bounds, never inflated in full."""

from __future__ import annotations

import contextlib
import gzip
import io
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pypdf
import pytest

from assistant.core import Assistant
from assistant.errors import DocumentTooLargeError, ParseError, TooLargeError
from connectors.base import FetchPolicy
from connectors.document import SourceFailure
from connectors.fetch import fetch
from connectors.files import FileConnector, parse_bytes
from connectors.limits import ExtractionLimits
from connectors.netguard import guarded_client
from connectors.sitemap import parse_sitemap
from tests.connectors.site import LocalSite, Reply, site_fixture  # noqa: F401 - pytest fixture

MIB = 1024 * 1024


def _docx(document_xml_bytes: int, *, compresslevel: int = 9) -> bytes:
    """A zip laid out like a .docx whose ``word/document.xml`` inflates to the given size."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b" " * MIB
            for _ in range(document_xml_bytes // MIB):
                member.write(block)
    return buffer.getvalue()


def test_a_docx_that_inflates_past_the_limit_is_refused_before_inflating() -> None:
    bomb = _docx(310 * MIB)
    assert len(bomb) < 2 * MIB, "small on disk"
    started = time.monotonic()
    with pytest.raises(DocumentTooLargeError) as refused:
        parse_bytes(bomb, "/srv/bomb.docx")
    assert time.monotonic() - started < 1.5
    assert "inflates" in refused.value.reason
    assert isinstance(refused.value, TooLargeError)


def test_a_docx_member_compressed_like_a_bomb_is_refused() -> None:
    with pytest.raises(DocumentTooLargeError, match=r"inflates .* times"):
        parse_bytes(_docx(8 * MIB), "/srv/small-bomb.docx")


def test_the_inflated_size_of_every_part_counts() -> None:
    limits = ExtractionLimits(max_inflated_bytes=3 * MIB, max_compression_ratio=10**9)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in ("word/document.xml", "word/styles.xml"):
            archive.writestr(part, b" " * (2 * MIB))
    with pytest.raises(DocumentTooLargeError, match="inflates to over 4,194,304 bytes"):
        parse_bytes(buffer.getvalue(), "/srv/parts.docx", limits=limits)


@pytest.mark.parametrize("name", ["huge.md", "huge.txt"])
def test_a_huge_text_upload_is_refused_by_the_text_limit(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(("# Notes\n\n" + "All work and no play. " * 40 + "\n\n") * 30_000, "utf-8")
    assert path.stat().st_size > 25 * 1_000_000
    started = time.monotonic()
    (result,) = FileConnector(path).load()
    assert time.monotonic() - started < 10
    assert isinstance(result, SourceFailure)
    assert isinstance(result.error, DocumentTooLargeError)
    assert result.error.limit == "ASSISTANT_MAX_DOCUMENT_CHARS"
    assert "raise ASSISTANT_MAX_DOCUMENT_CHARS" in result.reason


def test_a_pdf_with_too_many_pages_is_refused_before_extracting_them() -> None:
    writer = pypdf.PdfWriter()
    for _ in range(51):
        writer.add_blank_page(width=72, height=72)
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(DocumentTooLargeError, match="51 pages, over the 50-page limit"):
        parse_bytes(buffer.getvalue(), "/srv/long.pdf", limits=ExtractionLimits(max_pages=50))


def test_the_text_limit_applies_to_extracted_html_text() -> None:
    page = b"<html><body>" + b"<p>words and more words</p>" * 200 + b"</body></html>"
    with pytest.raises(DocumentTooLargeError, match="ASSISTANT_MAX_DOCUMENT_CHARS"):
        parse_bytes(page, "/srv/page.html", limits=ExtractionLimits(max_chars=1_000))


@pytest.mark.slow
def test_a_document_over_the_chunk_limit_fails_alone(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "long.md").write_text(
        "\n\n".join(f"## Part {n}\n\n" + f"Paragraph {n} about refunds. " * 60 for n in range(8)),
        "utf-8",
    )
    (folder / "short.md").write_text("# Hours\n\nOpen nine to five.\n", "utf-8")
    bot = make_assistant(max_document_chunks=3)
    report = bot.ingest([str(folder)], kb="docs")
    statuses = {Path(o.url).name: (o.status, o.error_type) for o in report.outcomes}
    assert statuses == {
        "long.md": ("failed", "DocumentTooLargeError"),
        "short.md": ("added", None),
    }
    (failure,) = report.failures
    assert "raise ASSISTANT_MAX_DOCUMENT_CHUNKS" in failure.reason


def _pdf_with_stream(content: bytes) -> bytes:
    """A one-page PDF whose content stream is ``content``, Flate-compressed."""
    stream = zlib.compress(content, 1)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def test_a_pdf_stream_that_inflates_like_a_bomb_is_refused() -> None:
    # pypdf stops inflating one stream at 75 MB; this one would be 80.
    bomb = _pdf_with_stream(b"BT /F1 12 Tf 72 712 Td (" + b"A" * (80 * MIB) + b") Tj ET")
    assert len(bomb) < MIB, "small on disk"
    started = time.monotonic()
    with pytest.raises(DocumentTooLargeError) as refused:
        parse_bytes(bomb, "/srv/bomb.pdf")
    assert time.monotonic() - started < 10
    assert refused.value.limit == "max_inflated_bytes"


def test_deeply_nested_html_is_refused_or_read_within_bounds() -> None:
    page = (
        b"<html><body>" + b"<div>" * 50_000 + b"deep text" + b"</div>" * 50_000 + b"</body></html>"
    )
    started = time.monotonic()
    try:
        document = parse_bytes(page, "/srv/nested.html")
    except (DocumentTooLargeError, ParseError):
        pass  # lxml gives up on nesting this deep: no text, refused as unreadable
    else:
        assert "deep text" in document.text
    assert time.monotonic() - started < 20


def test_html_flooded_with_elements_is_refused_before_it_is_parsed() -> None:
    page = b"<html><body>" + b"<p>a</p>" * 500_000 + b"</body></html>"
    started = time.monotonic()
    with pytest.raises(DocumentTooLargeError) as refused:
        parse_bytes(page, "/srv/tiny.html")
    assert time.monotonic() - started < 5
    assert refused.value.limit == "max_html_elements"
    assert refused.value.source == "/srv/tiny.html"


@pytest.mark.parametrize(
    "markdown",
    [
        pytest.param("> " * 20_000 + "quoted", id="nested-quotes"),
        pytest.param("[" * 50_000 + "x" + "](" * 50_000, id="unclosed-links"),
        pytest.param("* " * 20_000 + "item", id="nested-lists"),
        pytest.param("`" * 100_000, id="backticks"),
    ],
)
def test_pathological_markdown_is_read_within_bounds(markdown: str) -> None:
    started = time.monotonic()
    with contextlib.suppress(DocumentTooLargeError):
        parse_bytes(("# Title\n\n" + markdown + "\n").encode(), "/srv/weird.md")
    assert time.monotonic() - started < 20


def test_a_gzipped_sitemap_bomb_stops_at_the_byte_limit() -> None:
    bomb = gzip.compress(b"<" + b" " * (10 * MIB))
    with pytest.raises(TooLargeError, match="decompresses"):
        parse_sitemap(bomb, "http://example.com/sitemap.xml.gz", max_bytes=64 * 1024)


def test_a_gzip_encoded_response_stops_at_the_byte_limit(site: LocalSite) -> None:
    body = gzip.compress(b"<p>" + b"a" * (50 * MIB) + b"</p>")
    site.static(
        "/bomb.html",
        Reply(body=body, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}),
    )
    policy = FetchPolicy(allow_hosts=("127.0.0.1",), timeout_seconds=5.0, max_bytes=MIB)
    started = time.monotonic()
    with guarded_client(policy) as client, pytest.raises(TooLargeError):
        fetch(client, site.url("/bomb.html"), policy)
    assert time.monotonic() - started < 10
