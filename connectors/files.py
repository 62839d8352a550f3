"""Files as documents: PDF, Word (.docx), Markdown, HTML and plain text.

The kind of a file is decided by its content first and its name second: a PDF named
``notes.txt`` is read as a PDF, and a PNG named ``index.html`` is refused as binary.

Usage::

    for result in FileConnector("~/handbook").load():
        match result:
            case Document():
                index(result)
            case SourceFailure():
                logger.warning("skipped %s: %s", result.source, result.reason)
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
import zipfile
from collections.abc import Generator, Iterator
from pathlib import Path, PurePosixPath

import docx
import pypdf
from docx.table import Table
from markdown_it import MarkdownIt
from markdown_it.token import Token

from connectors.document import Document, LoadResult, Section, SourceFailure
from connectors.errors import ConnectorError, ParseError, TooLargeError, UnsupportedContentError
from connectors.html import SectionBuilder, extract_html, html_fragment_text
from connectors.sniff import file_name, parse_content_type, sniff, sniff_kind

__all__ = ["FileConnector", "parse_bytes", "sniff_kind"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_MAX_TITLE_CHARACTERS = 300
_MAX_OUTLINE_ENTRIES = 10_000
# A .docx is a zip: refuse archives that inflate far beyond any real document (zip bombs).
_MAX_DOCX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024

_LIGATURES = str.maketrans(
    {"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"}
)
_HYPHENATED_BREAK = re.compile(r"(\w)-[ \t]*\n[ \t]*([^\W\d_])")
_UNREADABLE_CHARACTERS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
_DOCX_HEADING_STYLE = re.compile(r"^heading ([1-9])$", re.IGNORECASE)

_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def parse_bytes(
    data: bytes,
    source: str,
    *,
    name_hint: str | None = None,
    content_type_hint: str | None = None,
) -> Document:
    """Turn the bytes of one file or response into a ``Document`` of the right kind.

    ``source`` is stored on the document and names it in errors; ``name_hint`` (a file name)
    and ``content_type_hint`` (a MIME type, with an optional charset) help choose the kind.

    Raises:
        ParseError: the file is empty, corrupt, encrypted or has no extractable text.
        UnsupportedContentError: the content is not a kind of document we read.
        TooLargeError: a .docx that would inflate beyond any real document.

    >>> parse_bytes(b"Opening hours: 9 to 5.", "/srv/docs/hours.txt").title
    'hours'
    """
    if not data.strip():
        raise ParseError(source, "empty file")
    kind, text = sniff(data, source, name_hint, content_type_hint)
    stem = _stem(name_hint or source)
    if kind == "pdf":
        return _pdf_document(data, source, stem)
    if kind == "docx":
        return _docx_document(data, source, stem)
    if text is None or not text.strip():
        raise ParseError(source, "empty file")
    if kind == "html":
        # extract_html decodes again from the bytes: it also reads the page's <meta charset>.
        return _html_document(data, source, stem, parse_content_type(content_type_hint)[1])
    if kind == "markdown":
        return _markdown_document(text, source, stem)
    return _text_document(text, source, stem)


class FileConnector:
    """Reads one file, or every file under a directory, as documents.

    A directory is walked recursively in sorted order, skipping hidden entries (names that
    start with a dot) and symbolic links that lead outside it. Each file yields a ``Document``
    or a ``SourceFailure`` saying why it could not be read; nothing is dropped silently.

    >>> connector = FileConnector("docs/")
    >>> results = list(connector.load())  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.source: str = str(Path(path).expanduser().resolve())
        self.complete: bool = False
        self.max_bytes = max_bytes

    def load(self) -> Iterator[LoadResult]:
        """Yield one result per file; ``complete`` is set once every directory was listed.

        Raises:
            ConnectorError: the path does not exist or is neither a file nor a directory.
        """
        self.complete = False
        root = Path(self.source)
        if not root.exists():
            raise ConnectorError(self.source, "no such file or directory; check the path")
        if root.is_file():
            yield self._load_file(root)
            self.complete = True
        elif root.is_dir():
            listed_everything = yield from self._walk(root)
            self.complete = listed_everything
        else:
            raise ConnectorError(self.source, "not a regular file or directory")

    def _walk(self, root: Path) -> Generator[LoadResult, None, bool]:
        """Yield the results under ``root``; return whether every directory could be listed."""
        listed_everything = True
        visited_directories = {root}
        loaded_files: set[Path] = set()
        # An explicit stack, not recursion: directory trees can be deeper than Python's stack.
        try:
            stack: list[Iterator[os.DirEntry[str]]] = [iter(_sorted_entries(root))]
        except OSError as exc:
            raise ConnectorError(str(root), f"cannot list the directory: {exc}") from exc
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            if entry.name.startswith("."):
                continue
            target = Path(entry.path).resolve()
            if not target.is_relative_to(root):
                logger.info("skipping %s: it links outside %s", entry.path, root)
                continue
            if entry.is_dir():
                if target in visited_directories:
                    continue
                visited_directories.add(target)
                try:
                    stack.append(iter(_sorted_entries(target)))
                except OSError as exc:
                    listed_everything = False
                    unlisted = ConnectorError(str(target), f"cannot list the directory: {exc}")
                    yield SourceFailure(str(target), unlisted.reason, unlisted)
            elif target not in loaded_files:
                loaded_files.add(target)
                yield self._load_file(target)
        return listed_everything

    def _load_file(self, path: Path) -> LoadResult:
        source = str(path)
        try:
            status = path.stat()
            if not stat.S_ISREG(status.st_mode):
                raise UnsupportedContentError(
                    source, "not a regular file (a device, FIFO or socket)"
                )
            if status.st_size > self.max_bytes:
                raise TooLargeError(source, _too_large_reason(status.st_size, self.max_bytes))
            with path.open("rb") as file:
                data = file.read(self.max_bytes + 1)
            if len(data) > self.max_bytes:
                raise TooLargeError(source, _too_large_reason(len(data), self.max_bytes))
            return parse_bytes(data, source, name_hint=path.name)
        except ConnectorError as failure:
            return SourceFailure(source, failure.reason, failure)
        except OSError as exc:
            unreadable = ConnectorError(
                source, f"the file could not be read: {exc.strerror or exc}"
            )
            return SourceFailure(source, unreadable.reason, unreadable)
        except Exception as exc:
            # One malformed file must not stop a batch of thousands; the traceback is logged.
            logger.exception("unexpected failure while parsing %s", source)
            unexpected = ParseError(source, f"unexpected parser failure: {exc!r}")
            return SourceFailure(source, unexpected.reason, unexpected)


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _too_large_reason(size: int, limit: int) -> str:
    return f"the file is {size} bytes, over the {limit}-byte limit; raise max_bytes to read it"


def _stem(name: str) -> str:
    return PurePosixPath(file_name(name)).stem or name


def _clean_title(text: str) -> str:
    return " ".join(text.split())[:_MAX_TITLE_CHARACTERS]


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _normalise_text(text: str) -> str:
    """Normalise line endings, drop control characters and trailing spaces, trim blank ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = _UNREADABLE_CHARACTERS.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def _text_document(text: str, source: str, stem: str) -> Document:
    normalised = _normalise_text(text)
    if not normalised.strip():
        raise ParseError(source, "empty file")
    return Document(
        source=source, title=stem, sections=(Section((), normalised),), content_type="text"
    )


def _html_document(data: bytes, source: str, stem: str, charset: str | None) -> Document:
    url = source if source.startswith(("http://", "https://")) else None
    try:
        page = extract_html(data, url=url, encoding=charset)
    except ConnectorError as error:
        raise type(error)(source, error.reason) from error
    return Document(
        source=source, title=page.title or stem, sections=page.sections, content_type="html"
    )


def _pdf_document(data: bytes, source: str, stem: str) -> Document:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError(source, "the PDF is encrypted with a password; save a copy without it")
        page_texts = [_clean_pdf_text(page.extract_text() or "") for page in reader.pages]
    except ConnectorError:
        raise
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
    title = _pdf_metadata_title(reader) or _clean_title(_first_line(sections[0].text)) or stem
    return Document(source=source, title=title, sections=tuple(sections), content_type="pdf")


def _pdf_metadata_title(reader: pypdf.PdfReader) -> str:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:
        # Damaged metadata only costs the title; the text is what matters.
        return ""
    return _clean_title(str(title)) if title else ""


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
                title = _clean_title(str(getattr(item, "title", "") or ""))
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
    text = _normalise_text(text.translate(_LIGATURES))

    def join_hyphenated(match: re.Match[str]) -> str:
        before, after = match.group(1), match.group(2)
        # "exam-\nple" is one word; "well-\nKnown" and "COVID-\n19" keep their hyphen.
        return before + after if after.islower() else f"{before}-{after}"

    text = _HYPHENATED_BREAK.sub(join_hyphenated, text)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _docx_document(data: bytes, source: str, stem: str) -> Document:
    _check_docx_size(data, source)
    builder = SectionBuilder()
    title_paragraph = first_heading = ""
    try:
        word_document = docx.Document(io.BytesIO(data))
        core_title = _clean_title(word_document.core_properties.title or "")
        for block in word_document.iter_inner_content():
            if isinstance(block, Table):
                _add_docx_table(block, builder)
                continue
            text = _normalise_text(block.text).strip()
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
    title = core_title or _clean_title(title_paragraph) or _clean_title(first_heading) or stem
    return Document(source=source, title=title, sections=sections, content_type="docx")


def _check_docx_size(data: bytes, source: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ParseError(source, f"corrupt Word document: {exc}") from exc
    if inflated > _MAX_DOCX_UNCOMPRESSED_BYTES:
        raise TooLargeError(
            source, f"the Word document inflates to {inflated} bytes, which no real document does"
        )


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


def _markdown_document(text: str, source: str, stem: str) -> Document:
    front_matter_title = ""
    front_matter = _FRONT_MATTER.match(text)
    if front_matter:
        title_match = _FRONT_MATTER_TITLE.search(front_matter.group(1))
        if title_match:
            front_matter_title = _clean_title(title_match.group(1).strip("\"'"))
        text = text[front_matter.end() :]
    builder = SectionBuilder()
    first_heading = _MarkdownReader(builder).read(_MARKDOWN.parse(text))
    sections = builder.sections()
    if not sections:
        raise ParseError(source, "the Markdown file has no readable text")
    title = front_matter_title or _clean_title(first_heading) or stem
    return Document(source=source, title=title, sections=sections, content_type="markdown")


class _MarkdownReader:
    """Turns markdown-it's flat token stream into headings and blocks."""

    def __init__(self, builder: SectionBuilder) -> None:
        self.builder = builder
        self.ordered_lists: list[bool] = []
        self.item_prefix: str | None = None
        self.row_cells: list[str] | None = None
        self.heading_level: int | None = None

    def read(self, tokens: list[Token]) -> str:
        """Feed every token to the builder; return the first level-1 heading's text."""
        first_heading = ""
        for token in tokens:
            kind = token.type
            if kind == "heading_open":
                self.heading_level = int(token.tag[1])
            elif kind == "heading_close":
                self.heading_level = None
            elif kind in ("bullet_list_open", "ordered_list_open"):
                self.ordered_lists.append(kind == "ordered_list_open")
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.ordered_lists.pop()
            elif kind == "list_item_open":
                indent = "  " * (len(self.ordered_lists) - 1)
                marker = f"{token.info}." if self.ordered_lists[-1] and token.info else "-"
                self.item_prefix = f"{indent}{marker} "
            elif kind == "list_item_close":
                self.item_prefix = None
            elif kind == "tr_open":
                self.row_cells = []
            elif kind == "tr_close" and self.row_cells is not None:
                self.builder.block(" | ".join(self.row_cells), "row")
                self.row_cells = None
            elif kind in ("fence", "code_block"):
                self._flush_item_marker()
                self.builder.block(token.content.strip("\n"), "code")
            elif kind == "html_block":
                self.builder.block(html_fragment_text(token.content))
            elif kind == "inline":
                heading = self._inline(token)
                if heading and not first_heading:
                    first_heading = heading
        return first_heading

    def _inline(self, token: Token) -> str:
        """Route one inline run; return its text when it is a level-1 heading."""
        text = _inline_text(token)
        if self.heading_level is not None:
            self.builder.heading(self.heading_level, text)
            return text if self.heading_level == 1 else ""
        if self.row_cells is not None:
            self.row_cells.append(text.replace("\n", " "))
        elif self.item_prefix is not None:
            self.builder.block(self.item_prefix + text, "item")
            # Later paragraphs of the same item are indented under its marker.
            self.item_prefix = " " * len(self.item_prefix)
        elif self.ordered_lists:
            self.builder.block(text, "item")
        else:
            self.builder.block(text)
        return ""

    def _flush_item_marker(self) -> None:
        if self.item_prefix is not None and self.item_prefix.strip():
            self.builder.block(self.item_prefix.rstrip(), "item")
            self.item_prefix = " " * len(self.item_prefix)


def _inline_text(token: Token) -> str:
    """Readable text of an inline run: link text without URLs, image alt text, no HTML tags."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "text_special", "code_inline") or child.type == "image":
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)
