"""The LangChain adapters: LangChain's own standard retriever tests over the in-process and the
remote assistant, the same documents either way, async use, and MaxSim reranking of documents.

The core never imports LangChain; a subprocess checks that importing it leaves
``langchain_core`` unloaded.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import RetrieversIntegrationTests

from assistant.client import AsyncClient, Client
from assistant.integrations.langchain import (
    AssistantRetriever,
    LateInteractionCompressor,
    document_from_hit,
)
from assistant.knowledge.encoder import TransformerEncoder
from assistant.knowledge.maxsim import maxsim_scores_ragged
from assistant.knowledge.retriever import SearchHit
from tests.api.conftest import ApiServer
from tests.sdk.conftest import Remote

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Can I get my money back if I cancel an annual plan?"


def test_the_core_and_the_client_do_not_import_langchain() -> None:
    code = (
        "import sys, assistant, assistant.core, assistant.client, assistant.integrations;"
        "print(sorted(m for m in sys.modules if m.startswith('langchain')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.integration
class TestInProcessRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's retriever contract over ``Assistant``."""

    @pytest.fixture(autouse=True)
    def _serve(self, api_server: ApiServer, harbor: str) -> None:
        self.searcher: object = api_server.core
        self.kb = harbor

    @property
    def retriever_constructor(self) -> type[AssistantRetriever]:
        """The retriever under test."""
        return AssistantRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, object]:
        """The in-process assistant and its knowledge base."""
        return {"searcher": self.searcher, "kb": self.kb}

    @property
    def retriever_query_example(self) -> str:
        """A question the help centre answers."""
        return QUESTION


@pytest.mark.integration
class TestRemoteRetrieverStandard(TestInProcessRetrieverStandard):
    """LangChain's retriever contract over ``Client``."""

    @pytest.fixture(autouse=True)
    def _serve(self, remote: Remote) -> Iterator[None]:
        with Client(remote.url, remote.secret_key) as client:
            self.searcher = client
            self.kb = "harbor"
            yield


@pytest.mark.integration
async def test_remote_and_in_process_retrievers_return_the_same_documents(
    remote: Remote,
) -> None:
    local = AssistantRetriever(searcher=remote.server.core, kb="harbor", k=3)
    expected = local.invoke(QUESTION)
    assert expected[0].metadata["url"].endswith("billing.html")
    assert {"chunk_id", "title", "score", "dense_score", "late_interaction_score"} <= set(
        expected[0].metadata
    )
    with Client(remote.url, remote.secret_key) as client:
        assert AssistantRetriever(searcher=client, kb="harbor", k=3).invoke(QUESTION) == expected
    async with AsyncClient(remote.url, remote.secret_key) as async_client:
        retriever = AssistantRetriever(searcher=async_client, kb="harbor", k=3)
        assert retriever.is_async
        assert await retriever.ainvoke(QUESTION) == expected
        assert len(await retriever.ainvoke(QUESTION, k=1)) == 1
        with pytest.raises(TypeError, match="ainvoke"):
            retriever.invoke(QUESTION)
    assert await local.ainvoke(QUESTION) == expected


def test_a_searcher_must_have_a_search_method() -> None:
    with pytest.raises(ValueError, match="search"):
        AssistantRetriever(searcher=object())  # type: ignore[arg-type]


def test_hit_metadata_leaves_out_signals_that_did_not_find_it() -> None:
    hit = SearchHit(
        chunk_id="c1",
        url="https://example.com/a",
        title="A",
        heading_path=("Guide", "Refunds"),
        text="Refunds take 14 days.",
        dense_rank=2,
        dense_score=0.5,
        late_interaction_rank=1,
        late_interaction_score=0.7,
        lexical_rank=None,
        lexical_score=None,
        rank=1,
        score=0.9,
    )
    document = document_from_hit(hit, kb="docs")
    assert document.id == "c1" and document.page_content == hit.text
    assert document.metadata["headings"] == ["Guide", "Refunds"]
    assert "lexical_rank" not in document.metadata
    assert None not in document.metadata.values()


async def test_the_compressor_keeps_the_best_documents_by_maxsim(
    encoder: TransformerEncoder,
) -> None:
    texts = [
        "Our office dog is called Biscuit and likes long walks.",
        "Annual plans are refunded in full if you cancel within 14 days of payment.",
        "Keyboard shortcuts: press Cmd+K to open quick search.",
        "Monthly plans can be cancelled at any time; no refund is given for the current month.",
    ]
    documents = [Document(page_content=text, metadata={"n": n}) for n, text in enumerate(texts)]
    compressor = LateInteractionCompressor(encoder=encoder, top_n=2)
    kept = compressor.compress_documents(documents, QUESTION)

    expected = maxsim_scores_ragged(
        encoder.encode_query_tokens(QUESTION), encoder.encode_document_tokens(texts)
    ).tolist()
    best = sorted(range(len(texts)), key=lambda index: -expected[index])[:2]
    assert [document.metadata["n"] for document in kept] == best
    assert kept[0].metadata["n"] == 1
    assert [document.metadata["relevance_score"] for document in kept] == pytest.approx(
        [expected[index] for index in best]
    )
    assert "relevance_score" not in documents[1].metadata  # the given documents are not changed
    assert await compressor.acompress_documents(documents, QUESTION) == kept
    assert compressor.compress_documents([], QUESTION) == []
