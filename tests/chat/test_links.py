"""``LinkFilter``: every link the widget's renderer would make to an address other than a
source is removed, whole or streamed in pieces, and links to sources are kept as written."""

from __future__ import annotations

import pytest

from assistant.chat.links import REMOVED, LinkFilter

SOURCE = "https://help.example.com/refunds"
PARENTHESISED = "https://en.wikipedia.org/wiki/Refund_(finance)"


def streamed(text: str, size: int) -> str:
    """``text`` through a new filter in deltas of ``size`` characters."""
    links = LinkFilter({SOURCE, PARENTHESISED})
    deltas = [text[i : i + size] for i in range(0, len(text), size)]
    return "".join(links.feed(delta) for delta in deltas) + links.flush()


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        # Browsers read these as https://evil.example/…, though the "//" is missing.
        ("Fill [the form](https:evil.example/>x) in.", "Fill the form in."),
        ("[click\nhere](https:/evil.example/y) now", "click\nhere now"),
        ("[a](https:/\\evil.example/x)", "a"),
        ("[a](https://evil.example/>x)", "a"),
        ('[a](<https:evil.example/x> "title")', "a"),
        # Balanced parentheses belong to the address: nothing is left behind.
        ("[open](javascript:alert('x')) it", "open it"),
        ("See [x](https:evil.example/(a)) now.", "See x now."),
        ("![pixel](https:evil.example/p.png) done", " done"),
        ("Go to https://evil.example/x.", f"Go to {REMOVED}."),
        # Links to sources stay as written, in each form Markdown allows.
        (f"[policy]({SOURCE}) [1]", f"[policy]({SOURCE}) [1]"),
        (f"[policy](<{SOURCE}>)", f"[policy](<{SOURCE}>)"),
        (f'[policy]({SOURCE} "Refunds")', f'[policy]({SOURCE} "Refunds")'),
        (f"[wiki]({PARENTHESISED}) ok", f"[wiki]({PARENTHESISED}) ok"),
        ("Refunds [1] take [2] days.\n\nNext [", "Refunds [1] take [2] days.\n\nNext ["),
    ],
)
@pytest.mark.parametrize("size", [1, 3, 1000])
def test_links_to_other_addresses_are_removed_in_any_stream_split(
    text: str, cleaned: str, size: int
) -> None:
    assert streamed(text, size) == cleaned


def test_a_paragraph_break_lets_an_unclosed_bracket_go() -> None:
    links = LinkFilter({SOURCE})
    assert links.feed("Note [this") == "Note "
    assert links.feed(" too\n\nNext") == "[this too\n\nNext"
