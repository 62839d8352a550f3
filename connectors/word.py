"""Word (.docx) files as documents: headings from paragraph styles, lists and tables kept."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.table import Table

from connectors.document import Document
from connectors.errors import ParseError
from connectors.html_structure import SectionBuilder
from connectors.limits import DEFAULT_LIMITS, ExtractionLimits, check_zip
from connectors.text import clean_title, normalise_text

__all__ = ["word_document"]

_DOCX_HEADING_STYLE = re.compile(r"^heading ([1-9])$", re.IGNORECASE)


def word_document(
    data: bytes, source: str, stem: str, limits: ExtractionLimits = DEFAULT_LIMITS
) -> Document:
    """A Word document as sections under its headings; its title from the document's
    properties, its Title paragraph, its first heading or else ``stem``.

    Raises:
        ParseError: the file is corrupt or holds no text.
        DocumentTooLargeError: the archive would inflate beyond ``limits`` (a zip bomb).
    """
    _check_docx_size(data, source, limits)
    builder = SectionBuilder()
    title_paragraph = first_heading = ""
    try:
        word_document = docx.Document(io.BytesIO(data))
        core_title = clean_title(word_document.core_properties.title or "")
        for block in word_document.iter_inner_content():
            if isinstance(block, Table):
                _add_docx_table(block, builder)
                continue
            text = normalise_text(block.text).strip()
            style_name = block.style.name if block.style is not None else ""
            level = _docx_heading_level(style_name or "")
            if level is None:
                is_list = (style_name or "").lower().startswith("list")
                builder.block(
                    f"- {text}" if is_list and text else text, "item" if is_list else "paragraph"
                )
                continue
            builder.heading(level, text)
            if level == 0:
                title_paragraph = title_paragraph or text
            else:
                first_heading = first_heading or text
    except Exception as exc:
        # python-docx raises many exception types on damaged files; all of them mean "corrupt".
        raise ParseError(source, f"corrupt Word document: {exc or type(exc).__name__}") from exc
    sections = builder.sections()
    if not sections:
        raise ParseError(source, "the Word document has no text")
    title = core_title or clean_title(title_paragraph) or clean_title(first_heading) or stem
    return Document(source=source, title=title, sections=sections, content_type="docx")


def _check_docx_size(data: bytes, source: str, limits: ExtractionLimits) -> None:
    # A .docx is a zip: refuse archives that inflate far beyond any real document (zip bombs)
    # before python-docx inflates its parts whole.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_zip(archive, source, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ParseError(source, f"corrupt Word document: {exc}") from exc


def _docx_heading_level(style_name: str) -> int | None:
    """Heading level of a paragraph style: "Title" is 0, "Heading N" is N, others None."""
    if style_name.lower() == "title":
        return 0
    match = _DOCX_HEADING_STYLE.match(style_name.strip())
    return int(match.group(1)) if match else None


def _add_docx_table(table: Table, builder: SectionBuilder) -> None:
    for row in table.rows:
        cells: list[str] = []
        previous_cell = None
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans.
            if previous_cell is not None and cell._tc is previous_cell._tc:
                continue
            previous_cell = cell
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            builder.block(" | ".join(cells), "row")
