"""Tuning the late-interaction head: pseudo-pairs, hard negatives, and the whole run on a real KB."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from assistant.core import Assistant
from assistant.errors import ConfigError
from assistant.knowledge.colbert import ColBERTEncoder
from assistant.knowledge.encoder import TransformerEncoder
from assistant.knowledge.maxsim import maxsim_scores, pad_token_matrices
from assistant.knowledge.training.head import (
    BASE_HEAD_VERSION,
    ProjectedTokenEncoder,
    ProjectionHead,
    head_path,
)
from assistant.knowledge.training.head_training import (
    TrainingSchedule,
    TrainingSet,
    batch_loss,
    maxsim_matrix,
    train_projection_head,
)
from assistant.knowledge.training.held_out import HeldOutGain
from assistant.knowledge.training.pseudo_pairs import (
    PairOptions,
    held_out_index_texts,
    make_pseudo_pairs,
    mine_hard_negatives,
)
from assistant.knowledge.training.tuning import TuneOptions, TuneStep
from assistant.knowledge.vector_store import StoredChunk
from assistant.settings import Settings
from tests.support.checkpoints import write_pylate_checkpoint

TOPICS = {
    "gardening": (
        ["tomato seedlings", "compost heaps", "raised beds", "rose bushes", "herb pots"],
        ["need", "welcome", "tolerate", "suffer from", "benefit from"],
        ["morning sun", "clay soil", "late frost", "weekly watering", "aphid attacks"],
    ),
    "astronomy": (
        ["red dwarfs", "the Andromeda galaxy", "Jupiter's moons", "comet tails", "neutron stars"],
        ["emit", "reflect", "orbit through", "collapse into", "scatter"],
        ["x-ray bursts", "interstellar dust", "tidal forces", "solar wind", "dark matter halos"],
    ),
    "cooking": (
        ["sourdough loaves", "braised short ribs", "risotto", "pancake batter", "miso soup"],
        ["require", "improve with", "burn without", "thicken after", "taste better with"],
        ["a long proof", "fresh thyme", "brown butter", "constant stirring", "toasted sesame"],
    ),
    "networking": (
        ["TCP handshakes", "DNS resolvers", "BGP sessions", "Wi-Fi access points", "VPN tunnels"],
        ["drop", "retransmit", "cache", "encrypt", "time out on"],
        ["stale records", "lost packets", "route flaps", "channel interference", "MTU limits"],
    ),
    "finance": (
        ["index funds", "mortgage rates", "bond ladders", "dividend stocks", "credit scores"],
        ["track", "react to", "depend on", "fall with", "reward"],
        [
            "inflation reports",
            "central bank decisions",
            "late payments",
            "market swings",
            "tax rules",
        ],
    ),
    "medicine": (
        ["vaccines", "beta blockers", "antibiotic courses", "insulin pumps", "physical therapy"],
        ["reduce", "prevent", "trigger", "manage", "speed up recovery from"],
        [
            "measles outbreaks",
            "high blood pressure",
            "bacterial infections",
            "type 1 diabetes",
            "knee injuries",
        ],
    ),
    "sailing": (
        ["catamarans", "spinnakers", "tiller steering", "anchor chains", "bilge pumps"],
        ["handle", "struggle in", "drag during", "flood after", "excel in"],
        ["gusty crosswinds", "rocky harbours", "heavy swell", "night passages", "tidal races"],
    ),
    "music": (
        [
            "jazz quartets",
            "string sections",
            "drum machines",
            "choir rehearsals",
            "vinyl pressings",
        ],
        ["swing through", "rehearse", "sample", "warm up with", "crackle during"],
        [
            "modal scales",
            "syncopated rhythms",
            "vocal harmonies",
            "analog synths",
            "quiet passages",
        ],
    ),
    "geology": (
        ["basalt columns", "limestone caves", "glacial moraines", "fault lines", "volcanic ash"],
        ["form from", "erode under", "shift along", "settle over", "record"],
        ["cooling lava", "acidic rainwater", "plate motion", "ancient rivers", "ice ages"],
    ),
    "software": (
        ["unit tests", "database migrations", "memory leaks", "feature flags", "code reviews"],
        ["catch", "break", "slow down", "hide", "document"],
        [
            "race conditions",
            "schema changes",
            "garbage collection",
            "gradual rollouts",
            "naming mistakes",
        ],
    ),
    "birds": (
        ["barn owls", "hummingbirds", "arctic terns", "woodpeckers", "emperor penguins"],
        ["hunt", "migrate across", "nest near", "drum on", "huddle against"],
        ["field mice", "the equator", "hollow oaks", "dead pine trunks", "polar blizzards"],
    ),
    "architecture": (
        ["flying buttresses", "concrete domes", "timber frames", "glass facades", "brick arches"],
        ["support", "crack under", "frame", "overheat in", "carry"],
        [
            "vaulted ceilings",
            "seismic loads",
            "open floor plans",
            "summer afternoons",
            "heavy roofs",
        ],
    ),
}
LINKS = ["In practice,", "Experts note that", "Most guides say", "Over time,", "Surprisingly,"]


def _corpus(seed: int = 7) -> dict[str, str]:
    """120 short Markdown documents: 12 topics x 10, each a title and five sentences."""
    rng = random.Random(seed)
    documents = {}
    for topic, (subjects, verbs, objects) in TOPICS.items():
        for number in range(10):
            subject = subjects[number % len(subjects)]
            title = f"{topic.title()} note {number}: {subject}"
            sentences = []
            for _ in range(5):
                link = rng.choice(LINKS)
                sentences.append(
                    f"{link} {rng.choice(subjects)} {rng.choice(verbs)} "
                    f"{rng.choice(objects)} and {rng.choice(objects)}."
                )
            documents[f"{topic}-{number:02d}.md"] = f"# {title}\n\n" + " ".join(sentences) + "\n"
    return documents


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, encoder: TransformerEncoder) -> Path:
    """A data dir holding knowledge base ``notes`` (120 documents), ingested once."""
    root = tmp_path_factory.mktemp("tuning")
    folder = root / "notes"
    folder.mkdir()
    for name, text in _corpus().items():
        (folder / name).write_text(text, encoding="utf-8")
    data_dir = root / "data"
    with Assistant(Settings(_env_file=None, data_dir=data_dir), encoder=encoder) as assistant:  # type: ignore[call-arg]
        report = assistant.ingest([str(folder)], kb="notes")
    assert report.count("added") == 120
    return data_dir


@pytest.fixture
def data_dir(ingested: Path, tmp_path: Path) -> Path:
    """A private copy of the ingested data dir, so each test tunes from the same start."""
    copy = tmp_path / "data"
    shutil.copytree(ingested, copy)
    return copy


def _chunks(documents: int = 60, chunks_per_document: int = 2) -> list[StoredChunk]:
    chunks = []
    for document in range(documents):
        for position in range(chunks_per_document):
            text = " ".join(
                f"Sentence {sentence} of part {position} in document {document} says something."
                for sentence in range(4)
            )
            chunks.append(
                StoredChunk(
                    chunk_id=f"d{document}-c{position}",
                    text=text,
                    url=f"file:///docs/{document}.md",
                    source="file:///docs",
                    title=f"Document {document}",
                    heading_path=("Part",) if position else (),
                    position=position,
                    chunk_hash=f"hash-{document}-{position}",
                )
            )
    return chunks


def _small_options(**overrides: object) -> TuneOptions:
    values: dict[str, object] = {"pairs": PairOptions(max_pairs=64), "max_steps": 4}
    values.update(overrides)
    return TuneOptions(**values)  # type: ignore[arg-type]


def test_pseudo_pairs_are_deterministic_and_split_by_document() -> None:
    chunks = _chunks()
    options = PairOptions(max_pairs=500)
    first = make_pseudo_pairs(chunks, options)
    assert first == make_pseudo_pairs(list(reversed(chunks)), options)
    assert first != make_pseudo_pairs(chunks, PairOptions(max_pairs=500, seed=1))

    assert first.train and first.held_out
    assert not first.train_chunk_ids & first.held_out_chunk_ids
    assert {p.chunk_id for p in first.train} <= first.train_chunk_ids
    assert {p.chunk_id for p in first.held_out} <= first.held_out_chunk_ids
    assert not {p.document for p in first.train} & {p.document for p in first.held_out}
    assert len(first.held_out) == 30  # a quarter of 120 chunks, under the 300 cap
    kinds = [pair.kind for pair in first.train]
    assert 0.1 < kinds.count("title") / len(kinds) < 0.3
    for pair in first.train:
        if pair.kind == "sentence":
            assert 4 <= len(pair.query.split()) <= 40
            assert pair.query not in pair.positive
            assert pair.positive.startswith("Document ")  # the title stays with the passage
        else:
            assert pair.query.startswith("Document ") and pair.query not in pair.positive


def test_a_site_of_few_long_pages_keeps_pages_to_train_on() -> None:
    # 12 pages of 40 chunks: three held-out queries a page would need every page.
    chunks = _chunks(documents=12, chunks_per_document=40)
    pairs = make_pseudo_pairs(chunks, PairOptions(max_pairs=500))
    held_documents = {pair.document for pair in pairs.held_out}
    train_documents = {pair.document for pair in pairs.train}
    assert len(held_documents) <= 6 and len(train_documents) >= 6
    assert not held_documents & train_documents
    # The target (50: a tenth of 480 chunks, at least 50), spread over the pages still
    # allowed; a page held out by its title gives that one query.
    assert 45 <= len(pairs.held_out) <= 50
    # A shallower cap holds out fewer pages, each giving more queries.
    fewer = make_pseudo_pairs(chunks, PairOptions(max_pairs=500, max_held_out_document_share=0.25))
    assert len({pair.document for pair in fewer.held_out}) <= 3


def test_a_head_is_kept_only_for_a_gain_beyond_noise() -> None:
    generator = np.random.default_rng(0)
    before = generator.choice([0.0, 0.2, 0.5, 1.0], size=300)
    # Half the queries up a rank, half down: the mean barely moves, the spread is wide.
    noisy = np.clip(before + generator.choice([-0.3, 0.31], size=300), 0.0, 1.0)
    gain = HeldOutGain.paired(before, noisy)
    assert abs(gain.after - gain.before) < 0.03 and gain.standard_error > 0.01
    assert not gain.beyond_noise(0.005, 2.0)
    # Every query a little better: a small gain, but far beyond its noise.
    steady = np.minimum(before + 0.02, 1.0)
    better = HeldOutGain.paired(before, steady)
    assert better.beyond_noise(0.005, 2.0)
    assert not better.beyond_noise(0.05, 2.0)  # but not the minimum asked for
    assert not HeldOutGain.paired(before, before).beyond_noise(0.0, 2.0)
    with pytest.raises(ValueError, match="differ in shape"):
        HeldOutGain.paired(before, before[:10])


def test_pair_count_is_capped() -> None:
    pairs = make_pseudo_pairs(_chunks(), PairOptions(max_pairs=25, pairs_per_chunk=3))
    assert len(pairs.train) == 25
    more = make_pseudo_pairs(_chunks(), PairOptions(max_pairs=10_000, pairs_per_chunk=2))
    assert len(pairs.train) < len(more.train) <= 2 * len(more.train_chunk_ids)


def test_held_out_queries_are_missing_from_the_index_copy() -> None:
    chunks = _chunks()
    # Overlap: the last sentence of part 0 repeated at the start of part 1 of every document.
    overlapped = []
    for chunk in chunks:
        if chunk.position == 1:
            shared = f"Sentence 3 of part 0 in document {chunk.chunk_id[1:].split('-')[0]} says something."
            chunk = StoredChunk(
                chunk.chunk_id,
                shared + " " + chunk.text,
                chunk.url,
                chunk.source,
                chunk.title,
                chunk.heading_path,
                chunk.position,
                chunk.chunk_hash,
            )
        overlapped.append(chunk)
    pairs = make_pseudo_pairs(overlapped, PairOptions(max_pairs=50))
    texts = held_out_index_texts(overlapped, pairs.held_out)
    by_id = {chunk.chunk_id: index for index, chunk in enumerate(overlapped)}
    for pair in pairs.held_out:
        document_rows = [i for i, chunk in enumerate(overlapped) if chunk.url == pair.document]
        index_copy = [texts.get(i, overlapped[i].chunk.embedding_text) for i in document_rows]
        assert all(pair.query not in text for text in index_copy), pair
        if pair.kind == "sentence":
            assert texts[by_id[pair.chunk_id]] == pair.positive


def test_hard_negatives_come_from_ranks_4_to_30_of_other_documents() -> None:
    generator = torch.Generator().manual_seed(0)
    chunk_vectors = torch.nn.functional.normalize(torch.randn(200, 16, generator=generator), dim=-1)
    chunk_documents = [f"doc{index // 4}" for index in range(200)]
    query_vectors = chunk_vectors[::10] + 0.01  # each query sits on a chunk of its document
    query_documents = chunk_documents[::10]
    chosen = mine_hard_negatives(
        query_vectors, chunk_vectors, query_documents, chunk_documents, ranks=(4, 30), seed=3
    )
    assert len(chosen) == 20 and all(index is not None for index in chosen)
    for query, index in enumerate(chosen):
        assert index is not None
        assert chunk_documents[index] != query_documents[query]
        ranking = (chunk_vectors @ query_vectors[query]).argsort(descending=True).tolist()
        assert 4 <= ranking.index(index) + 1 <= 30
    assert chosen == mine_hard_negatives(
        query_vectors, chunk_vectors, query_documents, chunk_documents, ranks=(4, 30), seed=3
    )
    # Only chunks of the query's own document are near enough: no negative at all.
    same = mine_hard_negatives(
        query_vectors[:1], chunk_vectors[:4], ["doc0"], ["doc0"] * 4, ranks=(1, 30)
    )
    assert same == [None]


def test_batched_maxsim_matches_the_retrieval_maxsim() -> None:
    generator = torch.Generator().manual_seed(4)

    def unit(rows: int) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.randn(rows, 8, generator=generator), dim=-1)

    queries = [unit(3), unit(5)]
    documents = [unit(4), unit(7), unit(1)]
    padded_queries, queries_mask = pad_token_matrices(queries)
    padded_documents, documents_mask = pad_token_matrices(documents)
    scores = maxsim_matrix(padded_queries, queries_mask, padded_documents, documents_mask)
    assert scores.shape == (2, 3)
    for row, query in enumerate(queries):
        expected = maxsim_scores(query, padded_documents, documents_mask)
        assert torch.allclose(scores[row], expected, atol=1e-6)


def test_training_lowers_the_loss_and_leaves_the_head_in_eval_mode() -> None:
    generator = torch.Generator().manual_seed(5)
    # Each positive repeats its query's tokens with noise; the head must learn to keep the
    # dimensions that tell the pairs apart.
    queries = [torch.randn(6, 16, generator=generator) for _ in range(64)]
    positives = [q + 0.8 * torch.randn(6, 16, generator=generator) for q in queries]
    data = TrainingSet(
        queries=[torch.nn.functional.normalize(q, dim=-1) for q in queries],
        positives=[torch.nn.functional.normalize(p, dim=-1) for p in positives],
        negatives=[None] * 64,
        query_documents=[f"doc{index}" for index in range(64)],
        negative_documents=[None] * 64,
    )
    head = ProjectionHead(torch.randn(8, 16, generator=generator))
    batch = list(range(32))
    with torch.no_grad():
        before = float(batch_loss(head, data, batch, 0.05))
    steps = train_projection_head(
        head, data, TrainingSchedule(steps=60, batch_size=32, learning_rate=0.05, warmup_steps=5)
    )
    with torch.no_grad():
        after = float(batch_loss(head, data, batch, 0.05))
    assert steps == 60 and not head.training
    assert after < 0.5 * before


def test_columns_of_the_query_document_are_not_negatives() -> None:
    same = torch.nn.functional.normalize(torch.ones(2, 4), dim=-1)
    data = TrainingSet(
        queries=[same, same],
        positives=[same, same],
        negatives=[None, None],
        query_documents=["doc", "doc"],
        negative_documents=[None, None],
    )
    head = ProjectionHead(torch.eye(4))
    # Both positives match both queries exactly; only the other document's would compete.
    assert float(batch_loss(head, data, [0, 1], 0.05).detach()) == pytest.approx(0.0, abs=1e-6)
    other = dataclasses.replace(data, query_documents=["doc", "another"])
    # Now each query has two equally good columns: log 2.
    assert float(batch_loss(head, other, [0, 1], 0.05).detach()) == pytest.approx(0.6931, abs=1e-3)


def test_too_few_chunks_is_a_config_error(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = tmp_path / "few"
    folder.mkdir()
    for number in range(3):
        (folder / f"{number}.md").write_text(f"# Page {number}\n\nShort page number {number}.\n")
    assistant = make_assistant()
    assistant.ingest([str(folder)], kb="few")
    with pytest.raises(ConfigError, match="has 3 chunks; tuning needs at least 50"):
        assistant.tune("few")


@pytest.mark.slow
def test_tune_reports_and_keeps_the_head_only_if_it_ranks_better(
    make_assistant: Callable[..., Assistant], data_dir: Path
) -> None:
    assistant = make_assistant(data_dir=data_dir)
    steps: list[TuneStep] = []
    report = assistant.tune("notes", progress=steps.append, options=_small_options())
    assert report.knowledge_base == "notes"
    assert report.pairs == 64 and report.steps == 4
    assert report.held_out_queries == 30
    assert 0.0 <= report.mrr_before <= 1.0 and 0.0 <= report.mrr_after <= 1.0
    gain = HeldOutGain(report.mrr_before, report.mrr_after, report.gain_standard_error)
    assert report.kept == gain.beyond_noise(0.005, 2.0)
    assert (report.bytes_per_token_before, report.bytes_per_token_after) == (386, 130)
    tasks = {step.task for step in steps}
    assert {"encoding", "training", "evaluation"} <= tasks
    assert ("cache" in tasks) == report.kept
    trained = sum(step.advance for step in steps if step.task == "training")
    assert trained == report.steps

    reopened = make_assistant(data_dir=data_dir)
    knowledge_base = reopened._kb("notes")
    expected = report.head_version if report.kept else BASE_HEAD_VERSION
    assert knowledge_base.head_version == expected
    assert head_path(data_dir / "heads" / "notes", report.head_version).exists() == report.kept
    assert reopened.search("barn owls hunt field mice", kb="notes", k=3).hits


@pytest.mark.slow
def test_a_kept_head_is_used_by_every_new_assistant(
    make_assistant: Callable[..., Assistant], data_dir: Path, tmp_path: Path
) -> None:
    assistant = make_assistant(data_dir=data_dir)
    before = assistant.search("raised beds tolerate late frost", kb="notes", k=5)
    report = assistant.tune("notes", options=_small_options(require_improvement=False, max_steps=4))
    assert report.kept

    # The same assistant switched to the head, and every chunk is cached under it already.
    after = assistant.search("raised beds tolerate late frost", kb="notes", k=5)
    assert after.query_tokens is not None and after.query_tokens.shape[1] == 128
    assert after.trace.cache_misses == 0 and after.trace.cache_hits == after.trace.candidates
    assert before.query_tokens is not None and before.query_tokens.shape[1] == 384

    reopened = make_assistant(data_dir=data_dir)
    knowledge_base = reopened._kb("notes")
    assert isinstance(knowledge_base.late_encoder, ProjectedTokenEncoder)
    assert knowledge_base.late_encoder.head_version == report.head_version
    result = reopened.search("raised beds tolerate late frost", kb="notes", k=5)
    assert result.hits and result.hits[0].title.startswith("Gardening")
    assert result.trace.cache_misses == 0

    # The head's best match is reported on the base vectors' scale, through the scale it was
    # kept with (what the no-answer threshold reads).
    scale = knowledge_base.late_encoder.head.match_scale
    assert scale is not None
    knowledge_base.late_encoder.head.match_scale = None
    raw = reopened.search("raised beds tolerate late frost", kb="notes", k=5).best_match
    assert raw is not None and result.best_match is not None
    assert result.best_match == pytest.approx(scale.to_base(raw), abs=1e-6)
    # Projected vectors match more closely than the base ones here: the map moves the score.
    assert abs(result.best_match - raw) > 0.005

    # New content is ingested with the head: its chunks are cached under the head's key.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "kiln.md").write_text(
        "# Pottery: kilns\n\nStoneware kilns fire glazed mugs at very high temperatures.\n"
    )
    reopened.ingest([str(extra)], kb="notes")
    found = reopened.search("stoneware kilns fire glazed mugs", kb="notes", k=3)
    assert found.hits[0].title == "Pottery: kilns"
    assert found.trace.cache_misses == 0


@pytest.mark.slow
def test_a_head_over_a_colbert_checkpoint_reads_its_token_vectors(
    make_assistant: Callable[..., Assistant], data_dir: Path, tmp_path: Path
) -> None:
    checkpoint = write_pylate_checkpoint(tmp_path / "colbert", token_dimension=16)
    assistant = make_assistant(data_dir=data_dir, late_interaction_model=str(checkpoint))
    colbert = assistant.late_encoder
    assert isinstance(colbert, ColBERTEncoder)
    report = assistant.tune(
        "notes", options=_small_options(out_dimension=8, require_improvement=False)
    )
    assert report.kept
    assert (report.bytes_per_token_before, report.bytes_per_token_after) == (18, 10)

    reopened = make_assistant(data_dir=data_dir, late_interaction_model=str(checkpoint))
    late = reopened._kb("notes").late_encoder
    assert isinstance(late, ProjectedTokenEncoder) and isinstance(late.base, ColBERTEncoder)
    assert late.model_id == colbert.model_id and late.token_dimension == 8
    result = reopened.search("comet tails scatter solar wind", kb="notes", k=3)
    assert result.hits and result.trace.cache_misses == 0
    assert result.query_tokens is not None and result.query_tokens.shape[1] == 8


@pytest.mark.slow
def test_tune_command_prints_the_report_as_json(data_dir: Path) -> None:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "assistant", "tune", "--kb", "notes", "--max-pairs", "64", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=data_dir.parent,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["kb"] == "notes" and payload["pairs"] == 64
    gain = HeldOutGain(payload["mrr_before"], payload["mrr_after"], payload["gain_standard_error"])
    assert payload["kept"] == gain.beyond_noise(0.005, 2.0)
    missing = subprocess.run(
        [sys.executable, "-m", "assistant", "tune", "--kb", "nothing-here"],
        capture_output=True,
        text=True,
        env=env,
        cwd=data_dir.parent,
        timeout=300,
    )
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
