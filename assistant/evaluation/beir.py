"""Test collections in BEIR layout: the reader and the dataset it gives.

A BEIR folder holds ``corpus.jsonl`` (``{"_id", "title", "text"}`` per line), ``queries.jsonl``
(``{"_id", "text"}``) and ``qrels/test.tsv`` (``query-id<TAB>corpus-id<TAB>score`` after a
header). Ids are strings; titles and texts may be empty; a listed pair with score ≥ 1 is relevant.

>>> dataset = load_beir(Path("../shared/eval/adi"))  # doctest: +SKIP
>>> len(dataset.judged_queries())  # doctest: +SKIP
35
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ConfigError, NotFoundError

__all__ = ["BeirDataset", "CorpusDocument", "load_beir"]

_LAYOUT = "a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv"


@dataclass(frozen=True, slots=True)
class CorpusDocument:
    """One row of ``corpus.jsonl``."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """A test collection: corpus, queries (id → text) and judgements (query → doc → grade)."""

    name: str
    corpus: list[CorpusDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def judged_queries(self) -> list[tuple[str, str]]:
        """``(query id, text)`` of the queries with a relevant document, in file order."""
        return [
            (query_id, text)
            for query_id, text in self.queries.items()
            if any(grade >= 1 for grade in self.qrels.get(query_id, {}).values())
        ]


def _read_jsonl(path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    """Yield ``("file:line", object)`` for each non-blank line of a JSON Lines file."""
    if not path.is_file():
        raise NotFoundError(f"{path} is missing; {_LAYOUT}")
    with path.open(encoding="utf-8") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(
                        f"{where}: malformed JSON ({exc.msg}); each line must be one object "
                        'such as {"_id": "1", "title": "", "text": "..."}'
                    ) from exc
                if not isinstance(row, dict):
                    raise ConfigError(f"{where}: expected a JSON object, got {type(row).__name__}")
                yield where, row
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{path} is not UTF-8 text ({exc.reason}); re-save it as UTF-8"
            ) from exc


def _field(row: dict[str, object], name: str, where: str, *, required: bool = False) -> str:
    value = row.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and name == "_id":
        return str(value)
    if not isinstance(value, str) or (required and not value):
        raise ConfigError(f"{where}: field {name!r} must be a non-empty string, got {value!r}")
    return value


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise NotFoundError(f"{path} is missing; {_LAYOUT}")
    qrels: dict[str, dict[str, int]] = {}
    lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    for number, line in enumerate(lines, start=1):
        fields = line.rstrip("\r").split("\t")
        if not line.strip() or (number == 1 and fields[0] == "query-id"):
            continue
        try:
            query_id, doc_id, score = fields
            qrels.setdefault(query_id, {})[doc_id] = int(float(score))
        except ValueError as exc:
            raise ConfigError(
                f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score' with a numeric "
                f"score, got {line!r}"
            ) from exc
    return qrels


def load_beir(dataset_dir: Path) -> BeirDataset:
    """Read a BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv``.

    Raises:
        NotFoundError: the folder or one of its files is missing.
        ConfigError: a line is malformed (the message names the file and line).
    """
    if not dataset_dir.is_dir():
        raise NotFoundError(f"no dataset folder at {dataset_dir}; {_LAYOUT}")
    corpus: list[CorpusDocument] = []
    seen: set[str] = set()
    for where, row in _read_jsonl(dataset_dir / "corpus.jsonl"):
        doc_id = _field(row, "_id", where, required=True)
        if doc_id in seen:
            raise ConfigError(f"{where}: document id {doc_id!r} appears twice; ids must be unique")
        seen.add(doc_id)
        corpus.append(
            CorpusDocument(doc_id, _field(row, "title", where), _field(row, "text", where))
        )
    queries = {
        _field(row, "_id", where, required=True): _field(row, "text", where)
        for where, row in _read_jsonl(dataset_dir / "queries.jsonl")
    }
    try:
        qrels = _read_qrels(dataset_dir / "qrels" / "test.tsv")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"qrels/test.tsv in {dataset_dir} is not UTF-8 text") from exc
    return BeirDataset(dataset_dir.resolve().name, corpus, queries, qrels)
