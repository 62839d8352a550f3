"""Retrieval evaluation: the BEIR reader, the runs built from one candidate pool, and a real run.

The real run uses the ADI collection (82 documents, 35 judged queries) from the shared evaluation
data beside the repository, and checks that the numbers are sane against the dense baseline
measured in the same run rather than against fixed values.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.errors import ConfigError, NotFoundError
from assistant.evaluation import (
    METRIC_NAMES,
    RUN_NAMES,
    default_kb_name,
    evaluate,
    rerank,
    run_rankings,
)
from assistant.evaluation.beir import load_beir
from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.retriever import SearchHit
from connectors.beir import BeirConnector
from connectors.document import Document

ROOT = Path(__file__).resolve().parents[1]
ADI = ROOT.parent / "shared" / "eval" / "adi"


def _adi() -> Path:
    if not (ADI / "corpus.jsonl").is_file():
        pytest.fail(
            f"the ADI test collection is missing at {ADI}; the shared evaluation data must sit "
            "beside the repository (../shared/eval/adi in BEIR layout)"
        )
    return ADI


def _write_dataset(
    folder: Path, corpus: list[str], queries: list[str], qrels: list[str] | None
) -> Path:
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(corpus) + "\n", encoding="utf-8")
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n", encoding="utf-8")
    if qrels is not None:
        (folder / "qrels").mkdir()
        (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return folder


def _hit(
    name: str,
    scores: tuple[float, float, float | None],
    ranks: tuple[int, int, int | None, int],
) -> SearchHit:
    """A hit with (dense, MaxSim, BM25) scores and (dense, MaxSim, BM25, final) ranks."""
    dense, late, lexical = scores
    dense_rank, late_rank, lexical_rank, rank = ranks
    return SearchHit(
        chunk_id=name,
        url=f"beir://toy/{name}",
        title=name,
        heading_path=(),
        text=name,
        dense_rank=dense_rank,
        dense_score=dense,
        late_interaction_rank=late_rank,
        late_interaction_score=late,
        lexical_rank=lexical_rank,
        lexical_score=lexical,
        rank=rank,
        score=0.0,
    )


def test_reader_skips_unjudged_queries_and_indexes_title_only_documents(tmp_path: Path) -> None:
    folder = _write_dataset(
        tmp_path / "toy",
        [
            '{"_id": "1", "title": "Boundary layers", "text": "Flow near a wall."}',
            '{"_id": "2", "title": "Only a title", "text": ""}',
            '{"_id": "3", "title": "", "text": ""}',
        ],
        ['{"_id": "10", "text": "wall flow"}', '{"_id": "11", "text": "unjudged"}'],
        ["query-id\tcorpus-id\tscore", "10\t1\t2", "10\t2\t1"],
    )
    dataset = load_beir(folder)
    assert dataset.name == "toy"
    assert dataset.judged_queries() == [("10", "wall flow")]
    assert dataset.qrels == {"10": {"1": 2, "2": 1}}
    connector = BeirConnector(dataset)
    documents = [d for d in connector.load() if isinstance(d, Document)]
    assert [d.source for d in documents] == ["beir://toy/1", "beir://toy/2"]
    assert documents[1].text == "Only a title"
    assert connector.skipped == 1 and connector.complete


def test_reader_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no dataset folder"):
        load_beir(tmp_path / "absent")
    no_qrels = _write_dataset(tmp_path / "a", ['{"_id": "1", "text": "x"}'], [], None)
    with pytest.raises(NotFoundError, match=r"test\.tsv is missing"):
        load_beir(no_qrels)
    broken = _write_dataset(
        tmp_path / "b", ['{"_id": "1", "text": "x"}', '{"_id": "2", "text": '], [], []
    )
    with pytest.raises(ConfigError, match=r"corpus\.jsonl:2: malformed JSON"):
        load_beir(broken)
    bad_row = _write_dataset(tmp_path / "c", ['{"_id": "1"}'], ['{"_id": "9"}'], ["9\t1"])
    with pytest.raises(ConfigError, match=r"test\.tsv:1: expected"):
        load_beir(bad_row)
    no_id = _write_dataset(tmp_path / "d", ['{"title": "t"}'], [], [])
    with pytest.raises(ConfigError, match="'_id' must be a non-empty string"):
        load_beir(no_id)


def test_runs_order_one_pool_by_each_signal() -> None:
    hits = [
        _hit("a", (0.9, 0.1, 3.0), (1, 3, 2, 2)),
        _hit("b", (0.5, 0.9, 9.0), (2, 1, 1, 1)),
        _hit("c", (0.1, 0.5, 0.0), (3, 2, 3, 3)),
    ]
    runs = run_rankings(hits, FusionWeights(1.0, 1.0, 1.0))
    order = {run: [hit.chunk_id for hit in ranked] for run, ranked in runs.items()}
    assert set(order) == set(RUN_NAMES)
    assert order["dense"] == ["a", "b", "c"]
    assert order["lexical"] == ["b", "a", "c"]
    assert order["maxsim_only"] == ["b", "c", "a"]
    assert order["late_interaction"] == ["b", "a", "c"]
    # Without MaxSim, z(dense) + z(lexical): a = 1 - 0.22, b = 0 + 1.09, c = -1 - 0.87 (the
    # two agree, correlation 0.33, so BM25 keeps its whole weight).
    assert order["without_late_interaction"] == ["b", "a", "c"]
    assert [h.chunk_id for h in rerank(hits, FusionWeights(1.0, 0.0, 0.0))] == ["a", "b", "c"]


def test_hits_without_lexical_scores_are_fused_on_dense_and_maxsim_only() -> None:
    hits = [
        _hit("a", (0.9, 0.1, None), (1, 2, None, 1)),
        _hit("b", (0.5, 0.9, None), (2, 1, None, 2)),
    ]
    assert [h.chunk_id for h in rerank(hits, FusionWeights(0.3, 0.7, 1.0))] == ["b", "a"]
    assert rerank([], FusionWeights()) == []


def test_default_knowledge_base_name_is_a_valid_name() -> None:
    assert default_kb_name("scifact") == "eval-scifact"
    assert default_kb_name("My Set (v2)") == "eval-my-set-v2"


@pytest.mark.slow
def test_adi_numbers_are_sane_and_a_second_run_reuses_the_knowledge_base(
    make_assistant: Callable[..., Assistant],
) -> None:
    assistant = make_assistant()
    report = evaluate(assistant, _adi())
    assert report.dataset == "adi" and report.kb == "eval-adi"
    assert report.queries == 35 and report.documents == 82 and report.chunks >= 82
    assert report.ingest.count("added") == 82 and report.ingest.chunks_embedded == report.chunks
    assert set(report.runs) == set(RUN_NAMES)
    for run, metrics in report.runs.items():
        values = metrics.as_dict()
        assert all(0.0 <= values[name] <= 1.0 for name in METRIC_NAMES), (run, values)
        assert values["recall@100"] >= values["recall@10"], run
    dense = report.runs["dense"]
    assert dense.ndcg_at_10 > 0.2, "the dense baseline should find relevant ADI documents"
    assert report.runs["late_interaction"].ndcg_at_10 >= dense.ndcg_at_10 - 0.05
    assert report.weights == FusionWeights(1.0, 1.0, 1.0).as_dict()
    assert report.candidate_pool >= 82 and {"encode", "maxsim", "total"} <= set(report.timings_ms)
    for first, second in itertools.combinations(RUN_NAMES, 2):
        assert any(q.rankings[first] != q.rankings[second] for q in report.per_query), (
            f"{first} and {second} ranked every query alike"
        )

    # Re-fusing the returned pool with the shipped weights reproduces the shipped order.
    result = assistant.search("computer information retrieval", kb="eval-adi", k=1000)
    assert len(result.hits) == result.trace.candidates
    assert rerank(result.hits, FusionWeights(**result.trace.weights)) == result.hits

    again = evaluate(assistant, _adi(), max_queries=5)
    assert again.ingest.count("unchanged") == 82
    assert again.ingest.chunks_embedded == 0 and again.queries == 5
    assert again.per_query == report.per_query[:5]


@pytest.mark.slow
def test_eval_command_writes_the_contract_json(tmp_path: Path) -> None:
    output = tmp_path / "out.json"
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "160"}
    command = [sys.executable, "-m", "assistant", "eval", str(_adi()), "--json", str(output)]
    result = subprocess.run(
        [*command, "--max-queries", "5"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "late_interaction" in result.stdout and "nothing was tuned" in result.stdout
    payload = json.loads(output.read_text(encoding="utf-8"))
    assert payload["dataset"] == "adi" and payload["queries"] == 5
    assert set(payload["runs"]) == set(RUN_NAMES)
    for metrics in payload["runs"].values():
        assert set(metrics) == {"ndcg@10", "mrr@10", "recall@10", "recall@100"}
    assert payload["tuning"] == "none: fixed fusion weights"
    assert set(payload["weights"]) == {"dense", "late_interaction", "lexical"}
    assert payload["documents"] == 82 and payload["chunks"] >= 82
    assert "total" in payload["timings_ms"]

    missing = subprocess.run(
        [sys.executable, "-m", "assistant", "eval", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert missing.returncode == 1
    assert "no dataset folder" in missing.stderr and "Traceback" not in missing.stderr
