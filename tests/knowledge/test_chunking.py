"""Chunking: bounded by the encoder's tokens, heading-aware, overlapping, with stable ids."""

from __future__ import annotations

import itertools

from assistant.knowledge.chunking import Chunker
from assistant.knowledge.encoder import TransformerEncoder
from connectors.document import Document, Section


def _document(sections: tuple[Section, ...], source: str = "https://help.example/page") -> Document:
    return Document(source=source, title="Billing", sections=sections, content_type="html")


def _long_text(sentences: int) -> str:
    return " ".join(
        f"Sentence number {i} explains how invoice {i} is paid by card or bank transfer."
        for i in range(sentences)
    )


def test_every_chunk_fits_the_token_budget_title_and_headings_included(
    encoder: TransformerEncoder,
) -> None:
    chunker = Chunker(encoder, max_tokens=64, overlap_tokens=16)
    document = _document(
        (
            Section(("Invoices",), _long_text(30)),
            Section(("Invoices", "Refunds"), "Refunds take 5 days.\n\n" + _long_text(8)),
        )
    )
    chunks = chunker.split(document)
    assert len(chunks) > 4
    for chunk in chunks:
        assert encoder.count_tokens(chunk.embedding_text) <= 64
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_chunks_never_cross_sections_and_keep_heading_paths(encoder: TransformerEncoder) -> None:
    chunker = Chunker(encoder, max_tokens=64, overlap_tokens=16)
    document = _document(
        (
            Section(("Invoices",), "Invoices are emailed monthly."),
            Section(("Invoices", "Refunds"), "Refunds take 5 days."),
        )
    )
    chunks = chunker.split(document)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Invoices",), "Invoices are emailed monthly."),
        (("Invoices", "Refunds"), "Refunds take 5 days."),
    ]
    assert chunks[1].embedding_text.startswith("Billing > Invoices > Refunds\n")
    assert all(c.document_source == document.source and c.title == "Billing" for c in chunks)


def test_consecutive_windows_overlap(encoder: TransformerEncoder) -> None:
    chunker = Chunker(encoder, max_tokens=80, overlap_tokens=30)
    chunks = chunker.split(_document((Section((), _long_text(20)),)))
    assert len(chunks) >= 3
    for previous, following in itertools.pairwise(chunks):
        last_sentence = previous.text.splitlines()[-1]
        assert following.text.startswith(last_sentence)


def test_over_long_sentences_are_cut_to_fit(encoder: TransformerEncoder) -> None:
    chunker = Chunker(encoder, max_tokens=48, overlap_tokens=8)
    run_on = " ".join(f"word{i}" for i in range(400))
    chunks = chunker.split(_document((Section((), run_on),)))
    assert len(chunks) > 3
    assert all(encoder.count_tokens(c.embedding_text) <= 48 for c in chunks)
    assert "word0" in chunks[0].text and "word399" in chunks[-1].text


def test_ids_are_stable_and_derived_from_source_and_content(encoder: TransformerEncoder) -> None:
    chunker = Chunker(encoder, max_tokens=64, overlap_tokens=16)
    sections = (Section(("A",), "Same text."), Section(("A",), "Same text."))
    first = chunker.split(_document(sections))
    again = chunker.split(_document(sections))
    elsewhere = chunker.split(_document(sections, source="https://help.example/other"))
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert len({c.chunk_id for c in first}) == 2  # identical passages still get distinct ids
    assert {c.chunk_id for c in first}.isdisjoint(c.chunk_id for c in elsewhere)
    assert first[0].content_hash == first[1].content_hash  # the cache may share their vectors


def test_empty_sections_give_no_chunks(encoder: TransformerEncoder) -> None:
    chunker = Chunker(encoder)
    assert chunker.split(_document((Section(("Empty",), "  \n\n "),))) == []
