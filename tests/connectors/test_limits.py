"""Extraction limits: generated bombs are refused fast, with a typed error naming the limit."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pypdf
import pytest

from assistant.core import Assistant
from assistant.errors import DocumentTooLargeError, TooLargeError
from connectors.document import SourceFailure
from connectors.files import FileConnector, parse_bytes
from connectors.limits import ExtractionLimits

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


def test_a_huge_markdown_upload_is_refused_by_the_text_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
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
