"""Retrieval against real servers: Redis as the token cache, Chroma as a server.

Redis going away mid-run costs speed, never answers; a Chroma server behaves like the
embedded store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.knowledge.colbert import ColBERTEncoder
from assistant.knowledge.fusion import DEFAULT_WEIGHTS
from assistant.knowledge.redis_token_cache import RedisTokenCache
from assistant.knowledge.token_cache import TieredTokenCache, cache_key, token_space
from tests.support.checkpoints import write_pylate_checkpoint, write_stanford_checkpoint
from tests.support.docs import write_docs
from tests.support.servers import chroma_server, free_loopback_port, start_redis, stop

DOCS = {
    "refunds.md": "# Refunds\n\nAnnual plans are refunded in full within 14 days of purchase.\n",
    "sso.md": "# Single sign-on\n\nSSO works with Okta and Microsoft Entra ID.\n",
    "export.md": "# Export\n\nExport a workspace as Markdown or PDF from Settings > Export.\n",
}


def _folder(tmp_path: Path) -> Path:
    return write_docs(tmp_path, DOCS)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A Redis server this test may stop; yields its URL and a stop function."""
    port = free_loopback_port()
    process = start_redis(port, tmp_path / "redis.log")
    yield f"redis://127.0.0.1:{port}/0", lambda: stop(process)
    stop(process)


@pytest.mark.integration
def test_queries_answer_when_redis_stops_mid_run(
    make_assistant: Callable[..., Assistant],
    tmp_path: Path,
    own_redis: tuple[str, Callable[[], None]],
) -> None:
    url, stop_redis = own_redis
    assistant = make_assistant(redis_url=url, token_cache_bytes=0)
    assert isinstance(assistant.token_cache, RedisTokenCache)
    assistant.ingest([str(_folder(tmp_path))])
    warm = assistant.search("refund of an annual plan", k=2)
    assert warm.trace.cache_misses == 0 and warm.trace.cache_hits == warm.trace.candidates
    stop_redis()
    cold = assistant.search("refund of an annual plan", k=2)
    assert cold.trace.cache_misses == cold.trace.candidates  # recomputed, not failed
    assert [h.chunk_id for h in cold.hits] == [h.chunk_id for h in warm.hits]
    answer = assistant.ask("how do I export my workspace?")
    assert answer.error is None and Path(answer.citations[0].url).name == "export.md"


@pytest.mark.integration
def test_redis_holds_the_token_embeddings(
    make_assistant: Callable[..., Assistant], tmp_path: Path, redis_url: str
) -> None:
    assistant = make_assistant(redis_url=redis_url, token_cache_bytes=0)
    assistant.ingest([str(_folder(tmp_path))])
    result = assistant.search("single sign-on providers", k=1)
    assert Path(result.hits[0].url).name == "sso.md"
    assert result.trace.cache_hits == result.trace.candidates
    assert isinstance(assistant.token_cache, RedisTokenCache)
    tiered = make_assistant(redis_url=redis_url).token_cache
    assert isinstance(tiered, TieredTokenCache) and isinstance(tiered.second, RedisTokenCache)


@pytest.mark.integration
@pytest.mark.slow
def test_chroma_server_behaves_like_the_embedded_store(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    with chroma_server(tmp_path / "chroma-server", tmp_path / "chroma.log") as url:
        assistant = make_assistant(chroma_url=url)
        folder = _folder(tmp_path)
        assert assistant.ingest([str(folder)]).count("added") == 3
        assert assistant.ingest([str(folder)]).count("unchanged") == 3
        hit = assistant.search("export as PDF", k=1).hits[0]
        assert Path(hit.url).name == "export.md"
        assert assistant.knowledge_bases() == ["default"]


@pytest.mark.parametrize("layout", ["pylate", "stanford"])
def test_a_colbert_checkpoint_reranks_what_dense_recall_found(
    make_assistant: Callable[..., Assistant], tmp_path: Path, layout: str
) -> None:
    writer = write_pylate_checkpoint if layout == "pylate" else write_stanford_checkpoint
    checkpoint = writer(tmp_path / f"colbert-{layout}")
    assistant = make_assistant(late_interaction_model=str(checkpoint))
    late = assistant.late_encoder
    assert isinstance(late, ColBERTEncoder) and late is not assistant.encoder
    folder = _folder(tmp_path)
    assert assistant.ingest([str(folder)]).count("added") == 3
    result = assistant.search("single sign-on providers", k=3)
    assert len(result.hits) == 3 and result.trace.cache_misses == 0
    # Token vectors are the checkpoint's (its projection's width), cached under its model id.
    chunk = assistant._kb("default").store.get([result.hits[0].chunk_id])[0]
    (cached,) = assistant.token_cache.get_many(
        [cache_key(token_space(late), "base", chunk.chunk_hash)]
    )
    assert cached is not None and cached.shape[1] == late.token_dimension != 384
    assert result.query_tokens is not None and result.query_tokens.shape[1] == late.token_dimension
    # Dense recall still comes from the embedding model: the same chunks are candidates.
    baseline = make_assistant(data_dir=tmp_path / "baseline")
    baseline.ingest([str(folder)])
    dense_pool = {h.chunk_id for h in baseline.search("single sign-on providers", k=10).candidates}
    assert {h.chunk_id for h in result.candidates} == dense_pool


def test_fusion_weights_are_recorded_with_the_knowledge_base(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    assistant = make_assistant()
    assistant.ingest([str(_folder(tmp_path))])
    store = assistant._kb("default").store
    assert json.loads(str(store.kb_metadata()["fusion_weights"])) == DEFAULT_WEIGHTS.as_dict()
    # Another process opening the knowledge base ranks with what is recorded there.
    store.update_kb_metadata(
        {"fusion_weights": json.dumps({"dense": 1.0, "late_interaction": 0.0, "lexical": 0.0})}
    )
    reopened = make_assistant()
    result = reopened.search("export a workspace", k=10)
    assert result.trace.weights == {"dense": 1.0, "late_interaction": 0.0, "lexical": 0.0}
    assert [h.rank for h in result.candidates] == [h.dense_rank for h in result.candidates]
