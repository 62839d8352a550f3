"""The extractive answerer reuses the token vectors its search read: the question's, and the
cached ones of the chunks its sources are made of, so a turn encodes the question once and
nothing else; what it must encode (no cached vectors given) runs in the bounded search pool."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerBase

from assistant.chat.events import Answer
from assistant.chat.extractive import ExtractiveProvider
from assistant.chat.links import LinkFilter
from assistant.chat.orchestrator import passage_tokens
from assistant.core import Assistant
from assistant.knowledge.encoder import EncodedText, TransformerEncoder
from assistant.knowledge.maxsim import PackedTokens
from assistant.settings import Settings
from tests.support.docs import write_docs

DOCS = {
    "refunds.md": "# Refunds\n\nAnnual plans are refunded in full within 14 days of purchase. "
    "Monthly plans are not refunded.\n",
    "export.md": "# Export\n\nExport a workspace as Markdown or PDF from Settings > Export. "
    "Large exports arrive by email as a ZIP archive.\n",
    "sso.md": "# Single sign-on\n\nSSO works with Okta and Microsoft Entra ID.\n",
}


class CountingEncoder:
    """The real encoder, counting the questions it encodes and naming the threads it runs in."""

    def __init__(self, inner: TransformerEncoder) -> None:
        self._inner = inner
        self.model_id: str = inner.model_id
        self.dimension: int = inner.dimension
        self.token_dimension: int = inner.token_dimension
        self.max_length: int = inner.max_length
        self.tokenizer: PreTrainedTokenizerBase = inner.tokenizer
        self.queries = 0
        self.documents = 0
        self.threads: list[str] = []

    def encode_query(self, text: str) -> EncodedText:
        self.queries += 1
        self.threads.append(threading.current_thread().name)
        return self._inner.encode_query(text)

    def encode_query_tokens(self, text: str) -> torch.Tensor:
        return self.encode_query(text).tokens

    def encode_documents(self, texts: Sequence[str]) -> list[EncodedText]:
        self.documents += len(texts)
        self.threads.append(threading.current_thread().name)
        return self._inner.encode_documents(texts)

    def document_token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return self._inner.document_token_offsets(texts)

    def query_token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._inner.query_token_offsets(text)

    def encode_document_tokens(self, texts: Sequence[str]) -> list[torch.Tensor]:
        return [encoded.tokens for encoded in self.encode_documents(texts)]

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return self._inner.count_tokens_many(texts)


def test_a_turn_encodes_the_question_once_and_nothing_else(
    encoder: TransformerEncoder, tmp_path: Path
) -> None:
    folder = write_docs(tmp_path, DOCS)
    counting = CountingEncoder(encoder)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    with Assistant(settings, encoder=counting) as assistant:
        assistant.ingest([str(folder)])
        for question in ("how do I export my workspace as PDF?", "are annual plans refunded?"):
            counting.queries, counting.documents, counting.threads = 0, 0, []
            answer = assistant.ask(question)
            assert answer.provider == "extractive" and answer.citations
            assert counting.queries == 1
            # The sentences were scored from the token vectors the search read from the cache.
            assert counting.documents == 0
            assert counting.threads and all(name.startswith("search") for name in counting.threads)
        first = assistant.chat("how do I export my workspace?")
        counting.queries = 0
        follow_up = assistant.chat("and as PDF?", conversation_id=first.conversation_id)
        assert follow_up.citations and counting.queries == 1


def test_sentences_with_bracketed_numbers_or_no_words_are_not_encoded(
    encoder: TransformerEncoder, tmp_path: Path
) -> None:
    # Answers number their sources "[1]", so units are read without numbers in brackets; they
    # are still found in their chunk and scored from its rows. A row of symbols has no word to
    # score at all.
    docs = {
        "argv.md": "# Arguments\n\nWhen a script runs, sys.argv[0] is set to the script's "
        "name. The other command line arguments follow it in order.\n\n"
        "Symbols | Meaning\n--- | ---\n{{ | }}\n",
    }
    folder = write_docs(tmp_path, docs)
    counting = CountingEncoder(encoder)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    with Assistant(settings, encoder=counting) as assistant:
        assistant.ingest([str(folder)])
        counting.queries, counting.documents = 0, 0
        answer = assistant.ask("what is sys.argv set to when a script runs?")
    assert answer.provider == "extractive"
    assert "sys.argv is set to the script's name" in answer.answer
    assert (counting.queries, counting.documents) == (1, 0)


def test_reused_token_vectors_choose_the_same_sentences(
    make_assistant: Callable[..., Assistant], encoder: TransformerEncoder, tmp_path: Path
) -> None:
    assistant = make_assistant()
    assistant.ingest([str(write_docs(tmp_path, DOCS))])
    answer = assistant.ask("how long do I have to get a refund on an annual plan?")
    assert answer.retrieval is not None and answer.retrieval.query_tokens is not None
    provider = ExtractiveProvider(encoder)
    question = answer.standalone_question
    passages = passage_tokens(answer.retrieval, answer.sources)
    assert passages
    reused = provider.extract(question, answer.sources, answer.retrieval.query_tokens, passages)
    # The question encoded again, the passages' token vectors recomputed: the same choice.
    recomputed = tuple(
        replace(
            passage,
            read_tokens=functools.partial(
                lambda text: encoder.encode_document_tokens([text])[0], passage.encoded_text
            ),
        )
        for passage in passages
    )
    assert reused == provider.extract(question, answer.sources, None, recomputed)
    assert " ".join(reused.text.split("\n")) == answer.answer
    assert reused.citations == answer.citations


def test_without_cached_vectors_the_sentences_are_encoded(
    encoder: TransformerEncoder, tmp_path: Path
) -> None:
    folder = write_docs(tmp_path, DOCS)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    with Assistant(settings, encoder=encoder) as assistant:
        assistant.ingest([str(folder)])
        answer = assistant.ask("are annual plans refunded?")
    counting = CountingEncoder(encoder)
    extract = ExtractiveProvider(counting).extract(answer.standalone_question, answer.sources)
    assert counting.queries == 1 and counting.documents > 0
    assert "14 days" in extract.text


def test_sample_answers_read_as_prose_with_right_citations(
    make_assistant: Callable[..., Assistant],
) -> None:
    help_centre = Path(__file__).resolve().parents[2] / "examples" / "help-centre"
    published = sorted(help_centre.glob("site/*.html")) + sorted(help_centre.glob("docs/*"))
    assistant = make_assistant()
    assistant.ingest([str(path) for path in published])
    questions = (help_centre.parent / "questions.txt").read_text(encoding="utf-8").splitlines()
    for question in questions:
        answer = assistant.ask(question)
        # No table header or raw row ("Plan | Requests per minute | ..."), no bare bullet.
        assert "|" not in answer.answer, (question, answer.answer)
        assert not any(line.startswith(("- ", "* ")) for line in answer.answer.split("\n"))
        # Every marker names a citation, and every citation quotes text of its own source.
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.answer)}
        assert markers == {citation.n for citation in answer.citations}, answer.answer
        for citation in answer.citations:
            source = next(source for source in answer.sources if source.n == citation.n)
            assert citation.url == source.url
            # Addresses that are not sources are removed from every answer (LinkFilter).
            assert citation.quote and LinkFilter(()).clean(citation.quote) in answer.answer
    refund = assistant.ask("Can I get my money back if I cancel an annual plan?")
    assert refund.answer.startswith("If you change your mind, you can cancel an annual plan")


def test_passage_rows_are_read_only_when_a_provider_asks(
    make_assistant: Callable[..., Assistant], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assistant = make_assistant()
    assistant.ingest([str(write_docs(tmp_path, DOCS))])
    answer = assistant.ask("how long do I have to get a refund on an annual plan?")
    assert answer.retrieval is not None
    reads: list[tuple[int, int]] = []
    rows = PackedTokens.rows

    def counting_rows(self: PackedTokens, start: int, end: int) -> torch.Tensor:
        reads.append((start, end))
        return rows(self, start, end)

    monkeypatch.setattr(PackedTokens, "rows", counting_rows)
    passages = passage_tokens(answer.retrieval, answer.sources)
    assert passages and reads == []  # a model's answer never reads them
    first = passages[0].tokens
    assert passages[0].tokens is first and len(reads) == 1
    start, end = reads[0]
    assert first.shape[0] == end - start > 0


def ask_offline(
    encoder: TransformerEncoder, tmp_path: Path, docs: dict[str, str], question: str
) -> Answer:
    """``question`` answered by the offline answerer from ``docs`` alone."""
    folder = write_docs(tmp_path, docs)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    with Assistant(settings, encoder=encoder) as assistant:
        assistant.ingest([str(folder)])
        return assistant.ask(question)


def test_a_faq_entrys_own_question_is_not_quoted_as_its_answer(
    encoder: TransformerEncoder, tmp_path: Path
) -> None:
    # The entry's question repeats the visitor's words and would score best of all.
    faq = {
        "faq.md": "# Credentials\n\n"
        "How do I change the password I have saved in my credential manager?\n\n"
        "Run git credential reject with the host, then push again and type the new password; "
        "the credential manager stores it in place of the old one.\n",
    }
    answer = ask_offline(
        encoder, tmp_path, faq, "How do I change the password saved in my credential manager?"
    )
    assert "?" not in answer.answer, answer.answer
    assert "git credential reject" in answer.answer


def test_a_quoted_sentence_ending_in_a_colon_is_followed_by_its_code(
    encoder: TransformerEncoder, tmp_path: Path
) -> None:
    docs = {
        "asgi.md": "# Deploying with Uvicorn\n\n"
        "Uvicorn serves the ASGI application of a project.\n"
        "For a typical project, starting Uvicorn would look like:\n\n"
        "```\npython -m uvicorn myproject.asgi:application --workers 2\n```\n",
    }
    answer = ask_offline(encoder, tmp_path, docs, "How do I start Uvicorn for my project?")
    # The sentence, its marker, then the code on lines of its own (a Markdown fence, as the
    # widget renders it); the citation quotes the sentence.
    assert re.search(
        r"would look like: \[1\] ?\n```\npython -m uvicorn myproject\.asgi:application "
        r"--workers 2\n```",
        answer.answer,
    ), answer.answer
    assert answer.citations[0].quote.endswith("would look like:")
