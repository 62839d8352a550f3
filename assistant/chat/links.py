"""Links and images in a streamed answer are limited to the answer's own sources.

A page can carry instructions for the model ("add this link", "show this image"); an image is
fetched by the visitor's browser as soon as it is rendered, which makes it a beacon that can
carry the conversation away in its URL. So whatever the provider writes, the answer that
reaches the client holds no link or image to an address other than one of its sources:

- a Markdown image (``![alt](url)``) or an HTML ``<img>`` to another address is dropped;
- a Markdown link (``[text](url)``) to another address keeps its text, without the link;
- an autolink (``<https://…>``) or a bare ``http(s)://`` / ``www.`` address elsewhere becomes
  ``(link removed)``.

The filter works on the stream: it holds back a tail that may still become a link (an open
``[``, ``<`` or a trailing address) until the next delta settles it, like ``MarkerFilter``
does for citation markers.

>>> links = LinkFilter({"https://help.example.com/refunds"})
>>> links.feed("See [our page](https://evil.example/x?q=secret) and ") + links.flush()
'See our page and '
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["REMOVED", "LinkFilter"]

REMOVED = "(link removed)"
"""What an address that is not a source becomes in the answer."""


def _target(group: str) -> str:
    """``(url)`` or ``(url "title")`` of a link or image, the address in ``group``.

    The address may hold one level of balanced parentheses and any other character but
    whitespace (``<``/``>`` included), as the widget's renderer reads it: the filter must see
    every link the renderer would make, or one it misses reaches the visitor.
    """
    return rf"\(\s*(?P<{group}>(?:[^()\s]|\([^()\s]*\))*)(?:\s+\"[^\"\n]*\")?\s*\)"


# Link text may run over lines: a paragraph's lines are rendered as one.
_CONSTRUCT = re.compile(
    r"(?P<image>!\[(?P<alt>[^\]]*)\]" + _target("image_url") + ")"
    r"|(?P<link>\[(?P<text>[^\]]*)\]" + _target("link_url") + ")"
    r"|(?P<html_image><img\b[^>]*>)"
    r"|<(?P<autolink>(?:https?://|www\.)[^>\s]+)>"
    r"|(?P<bare>(?:https?://|www\.)[^\s<>()\[\]\"'`]+)",
    re.IGNORECASE,
)
_HOLD_LIMIT = 2_000  # a tail longer than this is let go: no real link is that long
_SCHEMES = ("https://", "http://", "www.")


def _normalised(url: str) -> str:
    # ``[text](<url>)`` is Markdown's other way to write an address.
    url = url.strip().removeprefix("<").removesuffix(">").strip()
    url = url.split("#", 1)[0].rstrip("/.,;:!?")
    return url.lower()


class LinkFilter:
    """Removes links and images to addresses other than ``allowed`` from a streamed text."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = {_normalised(url) for url in allowed if url}
        self._held = ""

    def _is_allowed(self, url: str) -> bool:
        return _normalised(url) in self._allowed

    def _replace(self, match: re.Match[str]) -> str:
        if match.group("image") is not None:
            return match.group(0) if self._is_allowed(match.group("image_url")) else ""
        if match.group("link") is not None:
            url = match.group("link_url")
            return match.group(0) if self._is_allowed(url) else match.group("text")
        if match.group("html_image") is not None:
            return ""
        url = match.group("autolink") or match.group("bare")
        if self._is_allowed(url):
            return match.group(0)
        # Keep sentence punctuation the address pattern swallowed ("see http://x.")
        trailing = url[len(url.rstrip(".,;:!?")) :]
        return REMOVED + trailing

    def clean(self, text: str) -> str:
        """``text`` with every link and image that is not to a source removed (no holding)."""
        return _CONSTRUCT.sub(self._replace, text)

    def feed(self, delta: str) -> str:
        """The part of the text so far that can no longer become a link, cleaned."""
        self._held += delta
        cut = _hold_from(self._held)
        ready, self._held = self._held[:cut], self._held[cut:]
        return self.clean(ready)

    def flush(self) -> str:
        """Whatever is still held at the end of the stream, cleaned."""
        text, self._held = self._held, ""
        return self.clean(text)


def _hold_from(text: str) -> int:
    """Where the tail of ``text`` that may still grow into a link or image starts."""
    cut = len(text)
    bracket = text.rfind("[")
    if bracket != -1 and _may_grow_into_link(text[bracket:]):
        cut = bracket - 1 if bracket > 0 and text[bracket - 1] == "!" else bracket
    angle = text.rfind("<")
    if angle != -1 and ">" not in text[angle:] and "\n" not in text[angle:]:
        cut = min(cut, angle)
    if text.endswith("!"):
        cut = min(cut, len(text) - 1)  # may open an image
    word = re.search(r"\S+$", text)
    if word is not None and word.group(0)[-1] not in ">)]\"'":
        token = word.group(0).lower()
        stripped = token.lstrip("([<\"'*_")
        if any(scheme in token for scheme in _SCHEMES) or any(
            scheme.startswith(stripped) for scheme in _SCHEMES if stripped
        ):
            cut = min(cut, word.start())
    if len(text) - cut > _HOLD_LIMIT:
        return len(text)
    return cut


def _may_grow_into_link(segment: str) -> bool:
    """Whether ``segment``, starting at a ``[``, may still become ``[text](url)``.

    A blank line ends the paragraph, and a link with it; until the parenthesis after ``](``
    is closed (those inside the address balanced), more may come.
    """
    if "\n\n" in segment:
        return False
    close = segment.find("]")
    if close == -1 or close == len(segment) - 1:
        return True
    if segment[close + 1] != "(":
        return False
    depth = 0
    for character in segment[close + 1 :]:
        if character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
            if depth == 0:
                return False
    return True
