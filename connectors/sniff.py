"""What a run of bytes is: its document kind, and its text when it is text.

Content decides first (PDF and zip signatures, HTML markup, binary bytes); a file name or a
content type only chooses between the text kinds. Nothing here parses a document, so it
imports no PDF, Word or HTML library: the HTTP client checks files with it before uploading
them, and the file and HTML connectors build on it.

>>> sniff_kind(b"# Opening hours", name_hint="hours.md")
'markdown'
>>> decode_text("Größe".encode("cp1252"))
'Größe'
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from connectors.decoding import codec_name, decode_text
from connectors.errors import UnsupportedContentError

__all__ = [
    "codec_name",
    "decode_text",
    "file_name",
    "parse_content_type",
    "sniff",
    "sniff_kind",
]

logger = logging.getLogger(__name__)

_HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_MARKDOWN_MEDIA_TYPES = frozenset({"text/markdown", "text/x-markdown"})
_MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdx"})
_HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
_HTML_START = re.compile(
    # A comment body may not contain "-->", so a run of comments has only one way to match.
    r"\A\s*(?:<\?xml[^>]{0,200}>\s*)?(?:<!--(?:(?!-->).)*-->\s*)*"
    r"<(?:!doctype\s+html|html|head|body)[\s>/]",
    re.IGNORECASE | re.DOTALL,
)
_XML_START = re.compile(r"\A\s*<\?xml\s", re.IGNORECASE)
_BINARY_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0": "a legacy Office file (save it as .docx or PDF)",
}


def sniff_kind(
    data: bytes,
    *,
    name_hint: str | None = None,
    content_type_hint: str | None = None,
    source: str | None = None,
) -> str:
    """Return the document kind of ``data``: "pdf", "docx", "html", "markdown" or "text".

    Content decides first (PDF and zip signatures, HTML markup, binary bytes); the name and
    the content type only choose between the text kinds.

    Raises:
        UnsupportedContentError: the bytes are binary or an archive that is not a .docx.
    """
    kind, _ = sniff(data, source or name_hint or "<bytes>", name_hint, content_type_hint)
    return kind


def sniff(
    data: bytes, source: str, name_hint: str | None, content_type_hint: str | None
) -> tuple[str, str | None]:
    """Return the kind of ``data`` and, for the text kinds, its decoded text.

    Raises:
        UnsupportedContentError: the bytes are binary or an archive that is not a .docx.
    """
    if b"%PDF-" in data[:1024]:
        return "pdf", None
    if data.startswith(b"PK\x03\x04"):
        return _sniff_zip(data, source, name_hint), None
    for signature, description in _BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise UnsupportedContentError(source, f"the content is {description}, not a document")
    media_type, charset = parse_content_type(content_type_hint)
    text = decode_text(data, charset)
    if text is None:
        raise UnsupportedContentError(
            source, "binary content; the files read are PDF, Word (.docx), Markdown, HTML and text"
        )
    suffix = PurePosixPath(file_name(name_hint or source)).suffix.lower()
    if _HTML_START.match(text[:4096]) or media_type in _HTML_MEDIA_TYPES:
        return "html", text
    if suffix in _MARKDOWN_SUFFIXES or media_type in _MARKDOWN_MEDIA_TYPES:
        return "markdown", text
    if suffix in _HTML_SUFFIXES:
        return "html", text
    if _XML_START.match(text[:1024]):
        raise UnsupportedContentError(source, "an XML document that is not HTML; it is not read")
    return "text", text


def _sniff_zip(data: bytes, source: str, name_hint: str | None) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        if (name_hint or source).lower().endswith(".docx"):
            return "docx"  # the Word parser reports the corruption
        raise UnsupportedContentError(source, f"a damaged zip archive ({exc})") from exc
    if "word/document.xml" in names:
        return "docx"
    raise UnsupportedContentError(source, "a zip archive that is not a Word (.docx) document")


def parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    """The media type (lower case) and charset of a ``Content-Type`` value."""
    if not content_type:
        return "", None
    media_type, _, parameters = content_type.partition(";")
    charset = None
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


def file_name(name: str) -> str:
    """The last part of a path or URL path (``a/b.md`` and ``https://x/b.md`` → ``b.md``)."""
    if "://" in name:
        name = urlsplit(name).path
    return PurePosixPath(name.replace("\\", "/")).name
