"""Sniffing bytes: the light module the file connector and the HTTP client share."""

from __future__ import annotations

import doctest

import pytest

import connectors.files
import connectors.html
import connectors.sniff
from assistant.errors import UnsupportedContentError
from connectors.sniff import decode_text, sniff_kind


def test_the_connectors_use_the_same_functions() -> None:
    assert connectors.files.sniff_kind is sniff_kind
    assert connectors.html.decode_text is decode_text


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (b"%PDF-1.7\n...", "notes.txt", "pdf"),
        (b"<!doctype html><html><body>Hi</body></html>", "page.txt", "html"),
        (b"# Title\n\nText", "readme.md", "markdown"),
        (b"<p>fragment</p>", "fragment.htm", "html"),
        (b"Plain words.", "notes.txt", "text"),
    ],
)
def test_content_decides_before_the_name(data: bytes, name: str, kind: str) -> None:
    assert sniff_kind(data, name_hint=name) == kind


def test_binary_content_is_refused_with_its_kind() -> None:
    with pytest.raises(UnsupportedContentError, match="PNG image"):
        sniff_kind(b"\x89PNG\r\n\x1a\n....", name_hint="index.html")


def test_non_utf8_text_is_guessed() -> None:
    assert decode_text("Größe und Maße".encode("cp1252")) == "Größe und Maße"
    assert decode_text(b"\x00\x01\x02\x03" * 64) is None


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(connectors.sniff).failed == 0
