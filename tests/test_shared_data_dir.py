"""Two processes on one data dir (an API and an ingestion worker) see each other's changes."""

from __future__ import annotations

from pathlib import Path

from assistant.core import Assistant
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings


def test_a_search_sees_the_lexical_index_another_instance_rebuilt(
    tmp_path: Path, encoder: TransformerEncoder
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    first = tmp_path / "first.md"
    first.write_text("# Refunds\n\nAnnual plans are refunded within 14 days.\n", "utf-8")
    second = tmp_path / "second.md"
    second.write_text("# Codes\n\nError QX-7781 means the webhook secret is wrong.\n", "utf-8")
    api = Assistant(settings, encoder=encoder)
    worker = Assistant(settings, encoder=encoder)
    try:
        api.ingest([str(first)])
        assert api.search("refunds").hits
        worker.ingest([str(second)])
        hits = api.search("QX-7781", k=3).hits
        assert hits[0].url.endswith("second.md")
        # Found by its rare code through BM25, which only the rebuilt index knows.
        assert hits[0].lexical_rank == 1
    finally:
        api.close()
        worker.close()


def test_a_search_forgets_chunks_it_read_once_another_instance_changed_the_page(
    tmp_path: Path, encoder: TransformerEncoder
) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", chunk_tokens=32, chunk_overlap_tokens=8
    )  # type: ignore[call-arg]
    page = tmp_path / "page.md"
    refunds = "## Refunds\n\nAnnual plans are refunded within 14 days of purchase.\n"
    page.write_text("# Billing\n\n" + refunds, "utf-8")
    api = Assistant(settings, encoder=encoder)
    worker = Assistant(settings, encoder=encoder)
    try:
        api.ingest([str(page)])
        (before,) = [
            hit for hit in api.search("refunded within 14 days").hits if "14 days" in hit.text
        ]
        # A section added above it: the refunds chunk keeps its id (its text is unchanged)
        # but moves down the page.
        page.write_text(
            "# Billing\n\n## Plans\n\nThere are monthly and annual plans to choose from.\n\n"
            + refunds,
            "utf-8",
        )
        worker.ingest([str(page)])
        (after,) = [
            hit for hit in api.search("refunded within 14 days").hits if "14 days" in hit.text
        ]
        assert after.chunk_id == before.chunk_id
        assert after.position > before.position
    finally:
        api.close()
        worker.close()
