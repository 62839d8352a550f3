"""Names a question asks about that the knowledge base never mentions.

A question about "PyO3", "GraphQL" or "Dependabot" on a site that never names them scores like
an answerable question: the rest of its words (extension modules, models, pull requests) are
all there, so the best passage is close but says nothing about the name. No score threshold
separates these from questions visitors ask in their own words. What does is that the name
itself is in no chunk: it is absent from the knowledge base's lexical vocabulary.

Only words written as names count, so a visitor's ordinary words the pages happen not to use
("maths", "clickable") never do:

- a capital after the first letter: ``PyO3``, ``GraphQL``, ``PYTHONFASTMODE``, ``commit.autoPush``;
- a capital first letter anywhere but the start of a sentence: ``Poetry``, ``Heroku``;
- a command-line option written with its dashes: ``--turbo``, ``--enable-experimental-jit``.
  An option names the software's own interface; it is known when each of its words is in
  some chunk. A one-letter flag (``-Z``) names too little to count here; ``code_names`` checks
  it, and dotted names (``typing.override``), as written.

Numbers, lowercase identifiers (``do_stuff``, likely the visitor's own code) and messages
written mostly in capitals (shouting, Title Case) never count.

>>> name_candidates("How do I write an extension module in Rust with PyO3?")
['Rust', 'PyO3']
>>> name_candidates("What does the --turbo option of git clone do?")
['--turbo']
>>> name_candidates("my do_stuff() call returns 19.99 in maths")
[]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

__all__ = ["is_name", "name_candidates", "unknown_names"]

# A word; dotted names are read part by part ("commit.autoPush": "commit", "autoPush").
_WORD = re.compile(r"[^\W_](?:[\w'’]*[^\W_])?")
# What ends the gap before the first word of a sentence or of a quotation.
_SENTENCE_START = re.compile(r"(?:[.!?:;]\s+|[\"“”'‘(]\s*)$")
# A command-line option: one or two dashes right after a blank, quote or bracket (not inside a
# word such as "sign-on"), then a word that starts with a letter.
_OPTION = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*\w")
# "I", "I'm", "I’d": a capital that is never a name.
_FIRST_PERSON = re.compile(r"^I(?:['’]\w+)?$")
# Above this share of capitalised words (shouting, Title Case), capitals say nothing.
_CAPITALISED_SHARE = 0.5


def is_name(word: str, starts_sentence: bool) -> bool:
    """Whether ``word`` is written as a name: a capital after its first letter, or a capital
    first letter where no sentence starts ("I" and "I'm" never are)."""
    if len(word) < 2 or not any(char.isalpha() for char in word) or _FIRST_PERSON.match(word):
        return False
    if any(char.isupper() for char in word[1:]):
        return True
    return word[0].isupper() and not starts_sentence


def name_candidates(text: str) -> list[str]:
    """The words of ``text`` written as names, and its command-line options, in order, each
    once."""
    options = [(match.start(), match.end(), match.group()) for match in _OPTION.finditer(text)]
    words: list[tuple[str, bool]] = []
    found: list[tuple[int, str]] = []
    previous_end = 0
    for match in _WORD.finditer(text):
        # Only the gap since the previous word is read, so a long message costs one pass.
        gap = text[previous_end : match.start()]
        starts_sentence = (not words and not gap.strip()) or bool(_SENTENCE_START.search(gap))
        words.append((match.group(), starts_sentence))
        previous_end = match.end()
        # A word of an option is read as part of the option, never as a name of its own.
        inside_option = any(start <= match.start() < end for start, end, _ in options)
        if not inside_option and is_name(match.group(), starts_sentence):
            found.append((match.start(), match.group()))
    if not words or len(found) / len(words) > _CAPITALISED_SHARE:
        return []
    found.extend((start, option) for start, _, option in options)
    return list(dict.fromkeys(name for _, name in sorted(found)))


def unknown_names(text: str, known: Callable[[Sequence[str]], list[bool]]) -> tuple[str, ...]:
    """The names of ``text`` (``name_candidates``) that ``known`` says no chunk contains.

    ``known(words)`` answers, for each word, whether the knowledge base's vocabulary holds it
    (``LexicalIndex.known``).
    """
    names = name_candidates(text)
    if not names:
        return ()
    return tuple(name for name, present in zip(names, known(names), strict=True) if not present)
