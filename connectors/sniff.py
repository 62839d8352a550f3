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

import codecs
import io
import logging
import re
import zipfile
from pathlib import PurePosixPath
from urllib.parse import urlsplit

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
_BYTE_ORDER_MARKS = (
    # UTF-32 first: its little-endian mark starts with the UTF-16 one.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHAOS_TIE = 0.01
_READABILITY_SAMPLE = 65536
_BINARY_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0e-\x1f]")
_MAX_CONTROL_CHARACTER_RATIO = 0.02


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


def decode_text(data: bytes, declared_encoding: str | None = None) -> str | None:
    """Decode bytes that should be text; None when they look binary.

    Order: a byte-order mark (UTF-8, UTF-16, UTF-32); the ``declared_encoding`` if the bytes
    decode with it; strict UTF-8; else charset-normalizer's guess. Among guesses that fit
    equally well, windows-1252 wins: short Western texts fit many code pages equally, and it
    is the commonest legacy encoding (and reads every printable Latin-1 letter).
    """
    for mark, marked_codec in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            return data[len(mark) :].decode(marked_codec, errors="replace")
    declared = codec_name(declared_encoding)
    if declared is not None:
        try:
            return _readable_or_none(data.decode(declared))
        except UnicodeDecodeError:
            logger.debug("content does not decode as its declared %s; guessing", declared)
    if b"\x00" in data:
        return None
    try:
        return _readable_or_none(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    return _guess_decoding(data)


def codec_name(encoding: str | None) -> str | None:
    """Python's name for ``encoding``; ``None`` when unknown (``latin-1`` reads as cp1252)."""
    if not encoding:
        return None
    try:
        name = codecs.lookup(encoding.strip()).name
    except LookupError:
        return None
    # windows-1252 is what "latin-1" means on the web, and it reads every Latin-1 letter.
    return "cp1252" if name == "iso8859-1" else name


def _readable_or_none(text: str) -> str | None:
    if not text:
        return text
    sample = text[:_READABILITY_SAMPLE]
    control_characters = len(_BINARY_CONTROL_CHARACTERS.findall(sample))
    return None if control_characters / len(sample) > _MAX_CONTROL_CHARACTER_RATIO else text


def _guess_decoding(data: bytes) -> str | None:
    # Imported here: only bytes that are not UTF-8 need it, and importing it costs more than
    # the rest of this module (the HTTP client imports this module to check its uploads).
    import charset_normalizer

    best = charset_normalizer.from_bytes(data).best()
    # Short Western texts fit many code pages equally well (charset-normalizer may even pick
    # EBCDIC for "Größe"), so windows-1252 wins whenever it reads the bytes as cleanly.
    western = charset_normalizer.from_bytes(data, cp_isolation=["cp1252"]).best()
    if western is not None and (best is None or western.chaos <= best.chaos + _CHAOS_TIE):
        western_text = _decode_cp1252(data)
        if western_text is not None:
            return western_text
    return None if best is None else _readable_or_none(str(best))


def _decode_cp1252(data: bytes) -> str | None:
    try:
        return _readable_or_none(data.decode("cp1252"))
    except UnicodeDecodeError:
        return None
