"""PDF files as documents: page text with ligatures and hyphenated line breaks repaired,
grouped under the PDF's bookmarks (outline) as headings."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pypdf

from connectors.document import Document, Section
from connectors.errors import ConnectorError, DocumentTooLargeError, ParseError
from connectors.limits import DEFAULT_LIMITS, ExtractionLimits
from connectors.text import clean_title, first_line, normalise_text

__all__ = ["pdf_document"]

logger = logging.getLogger(__name__)

_MAX_OUTLINE_ENTRIES = 10_000
_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
)
_HYPHENATED_BREAK = re.compile(r"(\w)-[ \t]*\n[ \t]*([^\W\d_])")


def pdf_document(
    data: bytes, source: str, stem: str, limits: ExtractionLimits = DEFAULT_LIMITS
) -> Document:
    """A PDF as a document, one section per page under its bookmark's heading path.

    Raises:
        ParseError: the PDF is corrupt, encrypted, or has no extractable text.
        DocumentTooLargeError: it has more than ``limits.max_pages`` pages, or a stream
            that inflates past pypdf's decompression bound.
    """
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError(source, "the PDF is encrypted with a password; save a copy without it")
        # Counting pages reads only the page tree; extracting them is what costs.
        pages = len(reader.pages)
        if pages > limits.max_pages:
            raise DocumentTooLargeError(
                source,
                f"the PDF has {pages:,} pages, over the {limits.max_pages:,}-page limit for one "
                "document; split it into parts",
                limit="max_pages",
            )
        page_texts = [_clean_pdf_text(page.extract_text() or "") for page in reader.pages]
    except ConnectorError:
        raise
    except pypdf.errors.LimitReachedError as exc:
        # A stream that inflates past pypdf's own bound: a decompression bomb, not damage.
        raise DocumentTooLargeError(
            source,
            f"a stream of the PDF inflates past the size pypdf reads ({exc}); split the PDF or "
            "export it again",
            limit="max_inflated_bytes",
        ) from exc
    except pypdf.errors.DependencyError as exc:
        raise ParseError(source, f"the PDF needs an optional package to decrypt: {exc}") from exc
    except pypdf.errors.FileNotDecryptedError as exc:
        raise ParseError(
            source, "the PDF is encrypted with a password; save a copy without it"
        ) from exc
    except Exception as exc:
        # pypdf raises many exception types on damaged files; all of them mean "corrupt".
        raise ParseError(source, f"corrupt PDF: {exc or type(exc).__name__}") from exc
    if not any(page_texts):
        raise ParseError(
            source, "the PDF has no extractable text (scanned pages?); OCR is not supported"
        )
    outline = _pdf_outline_starts(reader, source)
    sections: list[Section] = []
    next_start = 0
    heading_path: tuple[str, ...] = ()
    for page_number, page_text in enumerate(page_texts):
        # A page belongs to the last outline entry that starts on it or before it.
        while next_start < len(outline) and outline[next_start][0] <= page_number:
            heading_path = outline[next_start][1]
            next_start += 1
        if page_text:
            sections.append(Section(heading_path, page_text))
    title = _pdf_metadata_title(reader) or clean_title(first_line(sections[0].text)) or stem
    return Document(source=source, title=title, sections=tuple(sections), content_type="pdf")


def _pdf_metadata_title(reader: pypdf.PdfReader) -> str:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:
        # Damaged metadata only costs the title; the text is what matters.
        return ""
    return clean_title(str(title)) if title else ""


def _pdf_outline_starts(reader: pypdf.PdfReader, source: str) -> list[tuple[int, tuple[str, ...]]]:
    """Return (first page index, heading path) of every bookmark, ordered by page."""
    starts: list[tuple[int, tuple[str, ...]]] = []
    try:
        # pypdf gives an entry's children as a list right after it. Walk in document order
        # with an explicit stack: outlines of damaged files can nest absurdly deep.
        frames: list[tuple[Iterator[object], tuple[str, ...]]] = [(iter(reader.outline), ())]
        last_paths: list[tuple[str, ...]] = [()]
        while frames and len(starts) < _MAX_OUTLINE_ENTRIES:
            items, parent_path = frames[-1]
            item = next(items, None)
            if item is None:
                frames.pop()
                last_paths.pop()
            elif isinstance(item, list):
                frames.append((iter(item), last_paths[-1]))
                last_paths.append(last_paths[-1])
            else:
                title = clean_title(str(getattr(item, "title", "") or ""))
                page_number = reader.get_destination_page_number(item)  # type: ignore[arg-type]
                if title and page_number is not None and page_number >= 0:
                    last_paths[-1] = (*parent_path, title)
                    starts.append((page_number, last_paths[-1]))
    except Exception as exc:
        # A damaged outline only costs the headings.
        logger.info("ignoring the unreadable outline of %s: %s", source, exc)
        return []
    starts.sort(key=lambda start: start[0])
    return starts


def _clean_pdf_text(text: str) -> str:
    text = normalise_text(text.translate(_LIGATURES))

    def join_hyphenated(match: re.Match[str]) -> str:
        before, after = match.group(1), match.group(2)
        # "exam-\nple" is one word; "well-\nKnown" and "COVID-\n19" keep their hyphen.
        return before + after if after.islower() else f"{before}-{after}"

    text = _HYPHENATED_BREAK.sub(join_hyphenated, text)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
