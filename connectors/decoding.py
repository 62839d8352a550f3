"""Bytes that should be text, decoded: byte-order marks, declared charsets, then a guess.

Shared by the HTML reader (pages declare their charset in ``<meta>``) and the plain-text and
Markdown readers (files declare nothing).
"""

from __future__ import annotations

import codecs
import logging
import re

from connectors.errors import UnsupportedContentError

__all__ = ["codec_name", "decode_html", "decode_text"]

logger = logging.getLogger(__name__)

_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,512}?charset\s*=\s*["']?\s*([a-z0-9._:\-]{1,40})""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([a-z0-9._:\-]{1,40})""")
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


def decode_html(content: bytes, encoding: str | None, source: str) -> str:
    """Decode an HTML page's bytes: the transport's ``encoding``, else the page's own
    declaration (``<?xml encoding>``, ``<meta charset>``), else a guess.

    Raises:
        UnsupportedContentError: the bytes are binary, not text.
    """
    declared = encoding if codec_name(encoding) is not None else None
    if declared is None:
        head = content[:4096]
        match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
        declared = match.group(1).decode("ascii", errors="replace") if match else None
        # As browsers do: a page cannot declare UTF-16 from inside ASCII-compatible markup,
        # and "us-ascii" pages are in practice UTF-8 or windows-1252, which guessing handles.
        codec = codec_name(declared)
        if codec is not None and (codec.startswith("utf-16") or codec == "ascii"):
            declared = "utf-8" if codec.startswith("utf-16") else None
    text = decode_text(content, declared)
    if text is None and content.count(b"\x00") <= len(content) // 1000:
        # A stray NUL byte is common in real pages; a binary file is full of them.
        text = decode_text(content.replace(b"\x00", b""), declared)
    if text is None:
        raise UnsupportedContentError(source, "the content is binary, not an HTML page")
    return text


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
