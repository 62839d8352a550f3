"""Files as documents: PDF, Word (.docx), Markdown, HTML and plain text.

This module finds the files, decides each one's kind and hands it to that kind's reader
(``pdf``, ``word``, ``markdown``, ``html``, ``text``).

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

import logging
import os
import stat
from collections.abc import Generator, Iterator
from pathlib import Path, PurePosixPath

from connectors.document import Document, LoadResult, SourceFailure
from connectors.errors import (
    ConnectorError,
    DocumentTooLargeError,
    ParseError,
    TooLargeError,
    UnsupportedContentError,
)
from connectors.html import extract_html
from connectors.limits import DEFAULT_LIMITS, ExtractionLimits, check_chars
from connectors.markdown import markdown_document
from connectors.pdf import pdf_document
from connectors.sniff import file_name, parse_content_type, sniff, sniff_kind
from connectors.text import text_document
from connectors.word import word_document

__all__ = ["FileConnector", "parse_bytes", "sniff_kind"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def parse_bytes(
    data: bytes,
    source: str,
    *,
    name_hint: str | None = None,
    content_type_hint: str | None = None,
    limits: ExtractionLimits = DEFAULT_LIMITS,
) -> Document:
    """Turn the bytes of one file or response into a ``Document`` of the right kind.

    ``source`` is stored on the document and names it in errors; ``name_hint`` (a file name)
    and ``content_type_hint`` (a MIME type, with an optional charset) help choose the kind.

    Raises:
        ParseError: the file is empty, corrupt, encrypted or has no extractable text.
        UnsupportedContentError: the content is not a kind of document we read.
        DocumentTooLargeError: the document is over one of ``limits`` (its text, its pages,
            the size its archive inflates to).

    >>> parse_bytes(b"Opening hours: 9 to 5.", "/srv/docs/hours.txt").title
    'hours'
    """
    if not data.strip():
        raise ParseError(source, "empty file")
    kind, text = sniff(data, source, name_hint, content_type_hint)
    stem = _stem(name_hint or source)
    if kind == "pdf":
        document = pdf_document(data, source, stem, limits)
    elif kind == "docx":
        document = word_document(data, source, stem, limits)
    elif text is None or not text.strip():
        raise ParseError(source, "empty file")
    elif kind == "html":
        # extract_html decodes again from the bytes: it also reads the page's <meta charset>.
        document = _html_document(
            data, source, stem, parse_content_type(content_type_hint)[1], limits
        )
    else:
        # Plain text and Markdown are refused before parsing: their text is at least this long.
        check_chars(len(text), source, limits)
        if kind == "markdown":
            document = markdown_document(text, source, stem)
        else:
            document = text_document(text, source, stem)
    check_chars(sum(len(section.text) for section in document.sections), source, limits)
    return document


class FileConnector:
    """Reads one file, or every file under a directory, as documents.

    A directory is walked recursively in sorted order, skipping hidden entries (names that
    start with a dot) and symbolic links that lead outside it. Each file yields a ``Document``
    or a ``SourceFailure`` saying why it could not be read; nothing is dropped silently.

    >>> connector = FileConnector("docs/")
    >>> results = list(connector.load())  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        limits: ExtractionLimits = DEFAULT_LIMITS,
    ) -> None:
        self.source: str = str(Path(path).expanduser().resolve())
        self.complete: bool = False
        self.max_bytes = max_bytes
        self.limits = limits

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
            return parse_bytes(data, source, name_hint=path.name, limits=self.limits)
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


def _html_document(
    data: bytes, source: str, stem: str, charset: str | None, limits: ExtractionLimits
) -> Document:
    url = source if source.startswith(("http://", "https://")) else None
    try:
        page = extract_html(data, url=url, encoding=charset, limits=limits)
    except DocumentTooLargeError as error:
        raise DocumentTooLargeError(source, error.reason, limit=error.limit) from error
    except ConnectorError as error:
        raise type(error)(source, error.reason) from error
    return Document(
        source=source, title=page.title or stem, sections=page.sections, content_type="html"
    )
