"""Dotted names, one-letter options and releases a question asks about that no chunk writes.

"How do I mark a method with the typing.override decorator?" on documentation that predates it
scores like an answerable question: "typing", "override" and "decorator" are all on its pages,
just never together as the name asked for. The words-based check (``unknown_names``) reads
such a name part by part, so it finds nothing missing; the same holds for a one-letter option
("python -Z"), whose letter is a word of every page. What does tell is the name as written:
the documentation writes the names of its interface exactly, and ``typing.override`` is in no
chunk, while other members of ``typing`` are.

So the knowledge base's chunks are read once, when its lexical index is built, for the dotted
names they write (``typing.overload``, ``django.db.models``) and the one-letter options
(``-X``, ``-n``), case kept. A question's dotted name counts as unknown when no chunk writes it
but chunks do write other names under its first part (a namespace the documentation
documents): a visitor's own ``my_app.views`` names nothing the site should know. File names
(``settings.py``) and web addresses never count, nor do names of one-letter parts ("e.g").
A one-letter option counts as unknown when no chunk writes it, and so does a release, a
version number after a name or "version" ("in Git 4.2", "version 7.1"), that no chunk writes:
documentation says nothing of a release it never mentions. A capitalised word that starts a
sentence names nothing ("Adding 0.1 and 0.2 gives...").

>>> names = CodeNames.count(["Use typing.overload or typing.cast; run python -X dev. New in 3.11."])
>>> names.unknown("Does typing.override exist? What does -X or -Z do in my_app.views?")
('typing.override', '-Z')
>>> names.unknown("Is it in Python 3.11 or Python 3.14?")
('3.14',)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CodeNames"]

_FILE = "code_names.json"
# Identifier parts joined by dots, not inside a longer word, path or address; each part starts
# with a letter or an underscore, so versions ("3.11") and sentence ends ("it. The") are not.
_DOTTED = re.compile(r"(?<![\w.\-/@])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
# A dash and one letter, alone: "-Z", "-n", not "-Werror", "e-mail" or "--x".
_SHORT_OPTION = re.compile(r"(?<![\w-])-[A-Za-z](?![\w-])")
# A version number: two or three numbers joined by dots, not part of a longer number.
_NUMBER = r"\d+\.\d+(?:\.\d+)?(?![\w.]*\d)"
_VERSION = re.compile(r"(?<![\w.])" + _NUMBER)
# A release: a version number right after a capitalised word, "version" or "v".
_RELEASE = re.compile(r"\b([A-Z][A-Za-z]+|[Vv]ersion|v) ?(" + _NUMBER + ")")
# What ends the gap before the first word of a sentence, whose capital names nothing.
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\"“(])\s*$")
# What ends the names of files and web addresses rather than of an interface.
_NOT_INTERFACE = re.compile(
    r"py[ciw]?|html?|txt|json|cfg|toml|md|rst|ya?ml|ini|xml|csv|log|[jt]sx?|css|sh|bat|exe|dll"
    r"|so|zip|gz|tar|com|org|net|io|dev",
    re.IGNORECASE,
)


def _is_interface_name(name: str) -> bool:
    parts = name.split(".")
    return len(parts[0]) > 1 and len(parts[-1]) > 1 and not _NOT_INTERFACE.fullmatch(parts[-1])


def _names_a_release(text: str, match: re.Match[str]) -> bool:
    """Whether the word before a version number names something: "version", or a capitalised
    word that does not start a sentence ("Adding 0.1 and 0.2" starts one)."""
    word = match.group(1)
    if word.lower() in ("version", "v"):
        return True
    return not _SENTENCE_END.search(text[: match.start()])


@dataclass(frozen=True, slots=True)
class CodeNames:
    """The dotted names and one-letter options the chunks of a knowledge base write."""

    names: frozenset[str]
    options: frozenset[str]
    versions: frozenset[str]
    namespaces: frozenset[str]
    """The first parts of ``names``."""

    @classmethod
    def of(cls, names: Iterable[str], options: Iterable[str], versions: Iterable[str]) -> CodeNames:
        """Names, options and version numbers as given, with the names' namespaces."""
        known = frozenset(names)
        namespaces = frozenset(name.split(".", 1)[0] for name in known)
        return cls(known, frozenset(options), frozenset(versions), namespaces)

    @classmethod
    def count(cls, texts: Iterable[str]) -> CodeNames:
        """Read ``texts`` (the chunks' embedding texts) for names and options."""
        names: set[str] = set()
        options: set[str] = set()
        versions: set[str] = set()
        for text in texts:
            names.update(m.group() for m in _DOTTED.finditer(text) if _is_interface_name(m.group()))
            options.update(_SHORT_OPTION.findall(text))
            versions.update(_VERSION.findall(text))
        return cls.of(names, options, versions)

    def unknown(self, text: str) -> tuple[str, ...]:
        """The dotted names, one-letter options and releases of ``text`` no chunk writes, in
        order, each once (a dotted name only under a namespace some chunk writes; a release as
        its version number)."""
        found = [
            (match.start(), match.group())
            for match in _DOTTED.finditer(text)
            if _is_interface_name(match.group())
            and match.group() not in self.names
            and match.group().split(".", 1)[0] in self.namespaces
        ]
        found.extend(
            (match.start(), match.group())
            for match in _SHORT_OPTION.finditer(text)
            if match.group() not in self.options
        )
        found.extend(
            (match.start(2), match.group(2))
            for match in _RELEASE.finditer(text)
            if match.group(2) not in self.versions and _names_a_release(text, match)
        )
        return tuple(dict.fromkeys(name for _, name in sorted(found)))

    def save(self, directory: Path) -> None:
        """Write the names into ``directory`` (which must exist)."""
        data = {
            "names": sorted(self.names),
            "options": sorted(self.options),
            "versions": sorted(self.versions),
        }
        (directory / _FILE).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> CodeNames | None:
        """The names saved in ``directory``; ``None`` for an index saved before they were
        read (its knowledge base checks words only until its next ingestion)."""
        path = directory / _FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(saved, dict) or not {"names", "options", "versions"} <= saved.keys():
            return None  # written before all were read: read again at the next ingestion
        return cls.of(
            (str(name) for name in saved["names"]),
            (str(option) for option in saved["options"]),
            (str(version) for version in saved["versions"]),
        )
