"""Names a question asks about that no chunk contains: what counts as a name, and the lookup."""

from __future__ import annotations

import pytest

from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.unknown_names import name_candidates, unknown_names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("How do I write an extension module in Rust with PyO3?", ["Rust", "PyO3"]),
        ("What does the PYTHONFASTMODE environment variable do?", ["PYTHONFASTMODE"]),
        ("How do I cancel the tasks of an asyncio.TaskGroup?", ["TaskGroup"]),
        ("What does the commit.autoPush setting do?", ["autoPush"]),
        ("Can I deploy to Heroku? Heroku says no.", ["Heroku"]),  # each once
        # Command-line options count with their dashes, in order with the other names.
        ("Does git clone --turbo work with --depth in Git?", ["--turbo", "--depth", "Git"]),
        ("What does --enable-experimental-jit do?", ["--enable-experimental-jit"]),
        # Dashes inside or between words, a bullet and one-letter flags are no options.
        ("single sign-on, e-mail - and python -Z or -X dev", []),
        # A capital that starts a sentence or a quotation is not a name.
        ('I\'m on it. Python says "Permission denied" when I run it', []),
        # Ordinary words, numbers and lowercase identifiers never count.
        ("my do_stuff() call returns 19.999999999 in maths, 0xff and 1_000_000", []),
        # Shouting and Title Case say nothing about names.
        ("HOW DO I RESET MY PASSWORD", []),
        ("How Do I Reset My Password On The App", []),
        ("What if I'd rather not?", []),
    ],
)
def test_names_are_the_words_written_as_names(text: str, names: list[str]) -> None:
    assert name_candidates(text) == names


def test_a_name_is_unknown_when_no_chunk_holds_it() -> None:
    index = LexicalIndex.build(
        [("c1", "Single sign-on works with Okta."), ("c2", "Extension modules in C.")]
    )

    assert index.known(["Okta", "Zendesk", "the", "sign-on"]) == [True, False, True, True]
    assert unknown_names("Does Okta or Zendesk work with Single sign-on?", index.known) == (
        "Zendesk",
    )
    assert unknown_names("Do modules work with okta?", index.known) == ()


def test_an_option_is_unknown_when_one_of_its_words_is_in_no_chunk() -> None:
    index = LexicalIndex.build([("c1", "git clone --depth 1 makes a shallow clone.")])

    assert unknown_names("How does --depth work, and what is --turbo?", index.known) == ("--turbo",)
    assert unknown_names("Does --shallow-clone exist?", index.known) == ()  # both words known


def test_an_empty_index_knows_nothing_but_words_without_terms() -> None:
    index = LexicalIndex.build([])

    assert index.known(["Okta", "the"]) == [False, True]
