"""Ingestion end to end on real files, the real encoder and embedded Chroma.

Asserts on Chroma's own contents: re-ingesting is idempotent, a changed file replaces exactly
its chunks, a deleted file's chunks are removed, failures are reported and leave nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.knowledge.encoder import EncodedText, TransformerEncoder
from assistant.knowledge.token_cache import cache_key, token_space
from assistant.knowledge.vector_store import ChunkRecord
from connectors.document import EXTRACTION_VERSION
from tests.connectors.site import LocalSite, site_fixture  # noqa: F401 - pytest fixture

PAGES = {
    "billing.md": "# Billing\n\n## Refunds\n\nAnnual plans are refunded in full within 14 days.\n\n"
    "## Invoices\n\nInvoices are emailed on the first day of every month.\n",
    "security.md": "# Security\n\n## Single sign-on\n\nSSO works with Okta, Google Workspace and "
    "Microsoft Entra ID on the Business plan.\n",
    "limits.txt": "Error E-4021 means the workspace storage quota of 100 GB is exceeded. "
    "Delete old attachments or upgrade the plan.\n",
}


def _write_site(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in PAGES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _contents(assistant: Assistant, kb: str = "default") -> dict[str, tuple[str, ...]]:
    return {state.url: state.chunk_ids for state in assistant.documents(kb=kb)}


def test_reingesting_unchanged_sources_changes_nothing(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = _write_site(tmp_path / "docs")
    assistant = make_assistant()
    first = assistant.ingest([str(folder)])
    assert first.count("added") == 3 and not first.failures
    before = _contents(assistant)
    assert set(before) == {str(folder / name) for name in PAGES}
    second = assistant.ingest([str(folder)])
    assert second.count("unchanged") == 3 and second.chunks_embedded == 0
    assert _contents(assistant) == before


def test_a_changed_file_replaces_exactly_its_chunks(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = _write_site(tmp_path / "docs")
    assistant = make_assistant()
    assistant.ingest([str(folder)])
    before = _contents(assistant)
    billing = folder / "billing.md"
    billing.write_text(PAGES["billing.md"].replace("14 days", "30 days"), encoding="utf-8")
    report = assistant.ingest([str(folder)])
    assert report.count("updated") == 1 and report.count("unchanged") == 2
    after = _contents(assistant)
    assert after[str(folder / "security.md")] == before[str(folder / "security.md")]
    assert after[str(billing)] != before[str(billing)]
    store = assistant._kb("default").store
    assert store.count() == sum(len(ids) for ids in after.values())
    texts = [chunk.text for chunk in store.get(list(after[str(billing)]))]
    assert any("30 days" in text for text in texts)
    assert not store.get([cid for cid in before[str(billing)] if cid not in after[str(billing)]])


GUIDE = (
    "# Guide\n\n## Install\n\nRun the installer and choose a folder for the files.\n\n"
    "## Configure\n\nSet the region and the language in the settings page.\n\n"
    "## Upgrade\n\nUpgrades keep your settings and take about five minutes.\n"
)


def test_a_changed_page_encodes_only_its_new_chunks(
    make_assistant: Callable[..., Assistant],
    encoder: TransformerEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A re-crawled page with one section edited and one added above the rest: the unchanged
    chunks keep their vectors (not encoded again) and take their new positions."""
    guide = tmp_path / "guide.md"
    guide.write_text(GUIDE, encoding="utf-8")
    assistant = make_assistant()
    assistant.ingest([str(guide)])
    store = assistant._kb("default").store
    before = {c.text: c for c in store.get(list(_contents(assistant)[str(guide)]))}
    encoded: list[str] = []
    original = encoder.encode_documents

    def counting(texts: Sequence[str]) -> list[EncodedText]:
        encoded.extend(texts)
        return original(texts)

    monkeypatch.setattr(encoder, "encode_documents", counting)
    changed = GUIDE.replace("about five minutes", "about ten minutes").replace(
        "## Install", "## Requirements\n\nA 64-bit system with 2 GB of memory.\n\n## Install"
    )
    guide.write_text(changed, encoding="utf-8")
    report = assistant.ingest([str(guide)])

    assert report.count("updated") == 1 and not report.failures
    assert len(encoded) == report.chunks_embedded == 2  # the new section and the edited one
    assert any("64-bit" in text for text in encoded) and any("ten minutes" in t for t in encoded)
    after = store.get(list(_contents(assistant)[str(guide)]))
    assert [c.position for c in after] == list(range(len(after)))
    kept = [c for c in after if c.text in before]
    assert {c.chunk_id for c in kept} == {before[c.text].chunk_id for c in kept}
    assert [c.text.split()[0] for c in kept] == ["Run", "Set"]
    assert all(c.position == before[c.text].position + 1 for c in kept)  # one section above
    assert not any("five minutes" in c.text for c in after)
    again = assistant.ingest([str(guide)])
    assert again.count("unchanged") == 1 and again.chunks_embedded == 0
    hits = assistant.search("how long does an upgrade take?", k=1).hits
    assert "ten minutes" in hits[0].text


def test_a_page_written_part_way_is_not_taken_as_unchanged(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    """Chunks whose document hashes disagree (a write that stopped part way) make the page
    read as changed, so the next ingest writes it whole again."""
    guide = tmp_path / "guide.md"
    guide.write_text(GUIDE, encoding="utf-8")
    assistant = make_assistant()
    assistant.ingest([str(guide)])
    store = assistant._kb("default").store
    ids = _contents(assistant)[str(guide)]
    store._collection.update(ids=[ids[-1]], metadatas=[{"document_hash": "from-an-older-page"}])
    assert store.document_state(str(guide)).document_hash == ""
    report = assistant.ingest([str(guide)])
    assert report.count("updated") == 1 and report.chunks_embedded == 0
    state = store.document_state(str(guide))
    assert state is not None and state.document_hash not in ("", "from-an-older-page")
    assert assistant.ingest([str(guide)]).count("unchanged") == 1


def test_pages_read_by_an_earlier_extraction_are_fetched_again_in_full(
    make_assistant: Callable[..., Assistant], site: LocalSite
) -> None:
    """A page stored by an earlier ``EXTRACTION_VERSION`` is fetched without its validators,
    so the server cannot answer "not modified" and the page is read again. Read the same, it
    keeps its vectors and takes the current version; the next sync is conditional again."""
    assistant = make_assistant(fetch_allow_hosts=("127.0.0.1",))
    url = site.url("/etag")
    assert assistant.ingest([url]).count("added") == 1
    store = assistant._kb("default").store
    state = store.document_state(url)
    assert state is not None and state.extraction_version == EXTRACTION_VERSION
    # Mark the page as read by the previous version, as a knowledge base built before it is.
    stored = store.get(list(state.chunk_ids))
    store.update_records(
        [
            ChunkRecord(
                chunk=chunk.chunk,
                source=state.source,
                document_hash=state.document_hash,
                content_type=state.content_type,
                fetched_at=state.fetched_at,
                etag=state.etag,
                last_modified=state.last_modified,
                extraction_version=EXTRACTION_VERSION - 1,
            )
            for chunk in stored
        ]
    )

    report = assistant.ingest([url])
    assert report.count("unchanged") == 1 and report.chunks_embedded == 0
    assert "if-none-match" not in site.requested("/etag")[-1].headers
    assert "if-modified-since" not in site.requested("/etag")[-1].headers
    state = store.document_state(url)
    assert state is not None and state.extraction_version == EXTRACTION_VERSION
    assert state.chunk_ids == tuple(chunk.chunk_id for chunk in stored)

    assert assistant.ingest([url]).count("unchanged") == 1
    assert site.requested("/etag")[-1].headers.get("if-none-match") == '"v1"'


def test_a_deleted_file_is_removed_and_forget_removes_a_source(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = _write_site(tmp_path / "docs")
    extra = tmp_path / "extra.md"
    extra.write_text("# Extra\n\nThe mobile app supports offline mode.\n", encoding="utf-8")
    assistant = make_assistant()
    assistant.ingest([str(folder), str(extra)])
    (folder / "limits.txt").unlink()
    report = assistant.ingest([str(folder)])
    assert [o.url for o in report.outcomes if o.status == "removed"] == [str(folder / "limits.txt")]
    assert str(folder / "limits.txt") not in _contents(assistant)
    assert str(extra) in _contents(assistant)  # another source is untouched
    removed = assistant.forget(str(extra))
    assert removed >= 1 and str(extra) not in _contents(assistant)
    assert [s.source for s in assistant.sources()] == [str(folder)]


def test_failures_are_reported_and_the_rest_is_ingested(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = _write_site(tmp_path / "docs")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    (folder / "image.html").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assistant = make_assistant()
    report = assistant.ingest([str(folder), str(tmp_path / "missing-folder")])
    assert report.count("added") == 3
    failed = {Path(o.url).name: o for o in report.failures}
    assert set(failed) == {"broken.pdf", "image.html", "missing-folder"}
    assert failed["broken.pdf"].error_type == "ParseError"
    assert failed["image.html"].error_type == "UnsupportedContentError"
    assert all(o.reason for o in failed.values())
    stored = _contents(assistant)
    assert not any(url.endswith(("broken.pdf", "image.html")) for url in stored)


def test_token_embeddings_are_cached_at_ingest_by_model_and_content(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = _write_site(tmp_path / "docs")
    assistant = make_assistant()
    assistant.ingest([str(folder)])
    chunks = list(assistant._kb("default").store.iter_chunks())
    keys = [cache_key(token_space(assistant.encoder), "base", c.chunk_hash) for c in chunks]
    cached = assistant.token_cache.get_many(keys)
    assert all(matrix is not None for matrix in cached)
    for chunk, matrix in zip(chunks, cached, strict=True):
        assert matrix is not None
        # One row per token the encoder keeps: the same count its offsets give.
        (offsets,) = assistant.encoder.document_token_offsets([chunk.chunk.embedding_text])
        assert matrix.shape == (len(offsets), assistant.encoder.token_dimension)
        assert len(offsets) < assistant.encoder.count_tokens(chunk.chunk.embedding_text) + 2


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how long do I have to get a refund on an annual plan?", "billing.md"),
        ("which identity providers work for single sign-on", "security.md"),
        ("what does error E-4021 mean", "limits.txt"),
    ],
)
def test_search_ranks_the_right_file_first(
    make_assistant: Callable[..., Assistant], tmp_path: Path, question: str, expected: str
) -> None:
    assistant = make_assistant()
    assistant.ingest([str(_write_site(tmp_path / "docs"))])
    result = assistant.search(question, k=3)
    assert Path(result.hits[0].url).name == expected
    hit = result.hits[0]
    assert hit.rank == 1 and hit.dense_rank >= 1 and hit.late_interaction_rank >= 1
    assert result.trace.candidates == len({c for ids in _contents(assistant).values() for c in ids})
    assert set(result.trace.timings_ms) >= {"encode", "recall", "cache", "maxsim"}
