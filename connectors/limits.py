"""Bounds on what one document may cost to extract: text, chunks, pages, inflated archive size.

A 25 MB Markdown file, a PDF of 100,000 blank pages or a Word file whose ``document.xml``
inflates to gigabytes would each hold a worker for minutes and fill the store with noise. Each
reader checks the bound that applies to it before doing the expensive part, and refuses the
document with a ``DocumentTooLargeError`` that names the setting to raise.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

from connectors.errors import DocumentTooLargeError

__all__ = ["DEFAULT_LIMITS", "ExtractionLimits", "check_chars", "check_html_elements", "check_zip"]

_MEGABYTE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    """The most one document may hold; ``Settings.extraction_limits()`` builds them."""

    max_chars: int = 2_000_000
    """Characters of extracted text (``ASSISTANT_MAX_DOCUMENT_CHARS``)."""
    max_chunks: int = 5_000
    """Chunks after splitting (``ASSISTANT_MAX_DOCUMENT_CHUNKS``)."""
    max_pages: int = 2_000
    """Pages of a PDF."""
    max_inflated_bytes: int = 100 * 1024 * 1024
    """Bytes a Word document's archive may inflate to, all members together."""
    max_compression_ratio: int = 200
    """Inflated to compressed size of one archive member larger than a megabyte; text and
    XML compress about 5-20 times, bombs thousands of times."""
    max_html_elements: int = 60_000
    """Start tags of one HTML page. Main-content extraction costs about a millisecond per
    element on a busy core; large real pages hold a few thousand, generated floods millions."""


DEFAULT_LIMITS = ExtractionLimits()


def check_chars(text_length: int, source: str, limits: ExtractionLimits) -> None:
    """Refuse a document whose text is over ``limits.max_chars``.

    Raises:
        DocumentTooLargeError: it is.
    """
    if text_length > limits.max_chars:
        raise DocumentTooLargeError(
            source,
            f"the document holds {text_length:,} characters of text, over the "
            f"{limits.max_chars:,} limit; raise ASSISTANT_MAX_DOCUMENT_CHARS to read it",
            limit="ASSISTANT_MAX_DOCUMENT_CHARS",
        )


def check_html_elements(count: int, source: str, limits: ExtractionLimits) -> None:
    """Refuse an HTML page of more than ``limits.max_html_elements`` elements (counted on
    the parsed tree, which lxml builds fast; extracting its main content is what costs).

    Raises:
        DocumentTooLargeError: it has more.
    """
    if count > limits.max_html_elements:
        raise DocumentTooLargeError(
            source,
            f"the page holds {count:,} HTML elements, over the {limits.max_html_elements:,} "
            "limit; a page that large is generated, not written: split it or link its parts",
            limit="max_html_elements",
        )


def check_zip(archive: zipfile.ZipFile, source: str, limits: ExtractionLimits) -> None:
    """Refuse an archive that would inflate beyond ``limits``, before anything else inflates it.

    Only the sizes the archive declares are read, nothing is inflated. They are a true bound:
    ``zipfile`` stops inflating a member at its declared size (a member that holds more fails
    its CRC check), and python-docx reads the parts through ``zipfile``.

    Raises:
        DocumentTooLargeError: the inflated size, or one member's compression ratio, is over
            the limit.
    """
    members = archive.infolist()
    declared = sum(member.file_size for member in members)
    if declared > limits.max_inflated_bytes:
        _too_inflated(source, declared, limits)
    for member in members:
        if member.file_size > _MEGABYTE and member.file_size > limits.max_compression_ratio * max(
            member.compress_size, 1
        ):
            raise DocumentTooLargeError(
                source,
                f"{member.filename} inflates {member.file_size // max(member.compress_size, 1):,}"
                f" times, as archive bombs do; a real document compresses far less",
                limit="max_compression_ratio",
            )


def _too_inflated(source: str, size: int, limits: ExtractionLimits) -> None:
    raise DocumentTooLargeError(
        source,
        f"the archive inflates to over {size:,} bytes, beyond the "
        f"{limits.max_inflated_bytes:,}-byte limit for one document",
        limit="max_inflated_bytes",
    )
