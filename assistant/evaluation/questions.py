"""Question sets for evaluating a knowledge base built from a website, read from TSV files.

A set is a folder holding up to three UTF-8, tab-separated files (``#`` starts a comment line,
blank lines are ignored):

- ``questions.tsv``: ``kind<TAB>question<TAB>acceptable paths``; ``kind`` is ``direct`` or
  ``paraphrased``; the paths (space-separated, relative to the site's root, e.g.
  ``topics/db/queries.html``) are every page that answers the question;
- ``unanswerable.tsv``: ``kind<TAB>question``; ``kind`` is ``off-topic`` or ``near-domain``;
- ``conversations.tsv``: ``first question<TAB>follow-up<TAB>standalone follow-up<TAB>acceptable
  paths for the follow-up``.

``questions.tsv`` is required; the other two are optional. A malformed line raises
``QuestionFileError`` naming the file and the line.

>>> question_set = load_question_set(Path("bench/sites/django"))  # doctest: +SKIP
>>> question_set.questions[0].acceptable  # doctest: +SKIP
('topics/db/queries.html',)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ConfigError, NotFoundError

__all__ = [
    "ANSWERABLE_KINDS",
    "QUESTIONS_FILE",
    "UNANSWERABLE_KINDS",
    "Conversation",
    "Question",
    "QuestionFileError",
    "QuestionSet",
    "Unanswerable",
    "load_question_set",
]

QUESTIONS_FILE = "questions.tsv"
UNANSWERABLE_FILE = "unanswerable.tsv"
CONVERSATIONS_FILE = "conversations.tsv"
ANSWERABLE_KINDS = ("direct", "paraphrased")
UNANSWERABLE_KINDS = ("off-topic", "near-domain")


class QuestionFileError(ConfigError):
    """A question file has a malformed line; ``path`` and ``line`` (1-based) say where."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Question:
    """An answerable question and every page (path relative to the site root) that answers it."""

    kind: str
    text: str
    acceptable: tuple[str, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class Unanswerable:
    """A question no page of the site answers."""

    kind: str
    text: str
    line: int = 0


@dataclass(frozen=True, slots=True)
class Conversation:
    """A first question, a follow-up that needs it, the follow-up written to stand alone, and
    the pages that answer the follow-up."""

    first: str
    follow_up: str
    standalone: str
    acceptable: tuple[str, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class QuestionSet:
    """The questions of one site (empty tuples for the optional files that are absent)."""

    name: str
    questions: tuple[Question, ...]
    unanswerable: tuple[Unanswerable, ...] = ()
    conversations: tuple[Conversation, ...] = ()


def _rows(path: Path, columns: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, ``columns`` stripped fields) of each non-blank, non-comment line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise QuestionFileError(path, _text_line(path, exc.start), "not UTF-8") from None
    except OSError as exc:
        raise NotFoundError(f"cannot read {path}: {exc.strerror}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != columns:
            raise QuestionFileError(
                path,
                number,
                f"expected {columns} tab-separated columns, found {len(fields)} "
                "(columns are separated by one tab character)",
            )
        for position, field in enumerate(fields, start=1):
            if not field:
                raise QuestionFileError(path, number, f"column {position} is empty")
        yield number, fields


def _text_line(path: Path, offset: int) -> int:
    """The 1-based line of byte ``offset`` in ``path``."""
    return path.read_bytes()[:offset].count(b"\n") + 1


def _kind(path: Path, number: int, kind: str, allowed: tuple[str, ...]) -> str:
    if kind not in allowed:
        raise QuestionFileError(
            path, number, f"unknown kind {kind!r}; use one of: {', '.join(allowed)}"
        )
    return kind


def _paths(path: Path, number: int, field: str) -> tuple[str, ...]:
    paths = tuple(field.split())
    for page in paths:
        if "://" in page or page.startswith("/") or ".." in page.split("/"):
            raise QuestionFileError(
                path,
                number,
                f"acceptable path {page!r} must be relative to the site root "
                "(e.g. topics/db/queries.html)",
            )
    return paths


def _questions(path: Path) -> tuple[Question, ...]:
    return tuple(
        Question(
            _kind(path, number, kind, ANSWERABLE_KINDS), text, _paths(path, number, pages), number
        )
        for number, (kind, text, pages) in _rows(path, 3)
    )


def _unanswerable(path: Path) -> tuple[Unanswerable, ...]:
    return tuple(
        Unanswerable(_kind(path, number, kind, UNANSWERABLE_KINDS), text, number)
        for number, (kind, text) in _rows(path, 2)
    )


def _conversations(path: Path) -> tuple[Conversation, ...]:
    return tuple(
        Conversation(first, follow_up, standalone, _paths(path, number, pages), number)
        for number, (first, follow_up, standalone, pages) in _rows(path, 4)
    )


def load_question_set(location: Path) -> QuestionSet:
    """Read a question set: a folder (see the module docstring) or one ``questions.tsv``-shaped
    file (answerable questions only).

    Raises:
        NotFoundError: ``location`` or the folder's ``questions.tsv`` does not exist.
        QuestionFileError: a line is malformed (the message names the file and the line).
        ConfigError: the set has no answerable question.
    """
    if location.is_file():
        questions = _questions(location)
        name = location.parent.name if location.name == QUESTIONS_FILE else location.stem
        if not questions:
            raise ConfigError(f"{location} holds no question")
        return QuestionSet(name, questions)
    if not location.is_dir():
        raise NotFoundError(f"no question set at {location}: give a folder or a .tsv file")
    questions_path = location / QUESTIONS_FILE
    if not questions_path.is_file():
        raise NotFoundError(
            f"{location} has no {QUESTIONS_FILE} (kind<TAB>question<TAB>acceptable paths)"
        )
    questions = _questions(questions_path)
    if not questions:
        raise ConfigError(f"{questions_path} holds no question")
    unanswerable_path = location / UNANSWERABLE_FILE
    conversations_path = location / CONVERSATIONS_FILE
    return QuestionSet(
        name=location.resolve().name,
        questions=questions,
        unanswerable=_unanswerable(unanswerable_path) if unanswerable_path.is_file() else (),
        conversations=(_conversations(conversations_path) if conversations_path.is_file() else ()),
    )
