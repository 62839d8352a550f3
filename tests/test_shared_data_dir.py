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
