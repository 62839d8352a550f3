"""Website evaluation: question files, page matching and metrics, and a real run on a small site.

The real run serves five pages of Python's tutorial (Debian's python3.11-doc) on loopback with a
sitemap, ingests them, and evaluates the knowledge base on ``tests/fixtures/site_questions``.
Numbers are checked against the live search of the same knowledge base, not against fixed values.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.core import Assistant
from assistant.errors import NotFoundError
from assistant.evaluation import (
    STAGES,
    QuestionFileError,
    SiteReport,
    evaluate_site,
    load_pools,
    load_question_set,
    rescore,
)
from assistant.evaluation.pools import (
    Candidate,
    Pool,
    first_acceptable_rank,
    fused_order,
    is_acceptable,
    page_path,
    page_ranking,
    stage_orderings,
)
from assistant.evaluation.site import KINDS, StageMetrics
from assistant.knowledge.encoder import TransformerEncoder
from assistant.knowledge.fusion import FusionWeights
from assistant.settings import Settings
from tests.support.servers import StaticSite

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "tests" / "fixtures" / "site_questions"
DOCS = Path("/usr/share/doc/python3.11/html")
PAGES = ("venv", "errors", "floatingpoint", "inputoutput", "modules")
KB = "tutorial"


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- question files -------------------------------------------------------------------------


def test_the_fixture_set_loads_with_comments_and_blank_lines_ignored() -> None:
    question_set = load_question_set(QUESTIONS)
    assert question_set.name == "site_questions"
    assert [q.kind for q in question_set.questions].count("paraphrased") == 4
    assert question_set.questions[0].acceptable == ("tutorial/venv.html",)
    assert question_set.questions[0].line == 2  # line 1 is a comment
    assert {q.kind for q in question_set.unanswerable} == {"off-topic", "near-domain"}
    assert question_set.conversations[0].standalone.startswith("How do I deactivate")


@pytest.mark.parametrize(
    ("name", "text", "line", "problem"),
    [
        ("questions.tsv", "direct\tOnly two columns\n", 1, "expected 3 tab-separated columns"),
        ("questions.tsv", "# c\n\nvague\tWhat?\ta.html\n", 3, "unknown kind 'vague'"),
        ("questions.tsv", "direct\tWhat?\t/abs/a.html\n", 1, "must be relative"),
        ("questions.tsv", "direct\tWhat?\thttp://x/a.html\n", 1, "must be relative"),
        ("questions.tsv", "direct\t \ta.html\n", 1, "column 2 is empty"),
        ("unanswerable.tsv", "silly\tWhat?\n", 1, "use one of: off-topic, near-domain"),
        ("conversations.tsv", "a\tb\tc\n", 1, "expected 4 tab-separated columns"),
    ],
)
def test_malformed_lines_raise_with_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, problem: str
) -> None:
    if name != "questions.tsv":
        _write(tmp_path, "questions.tsv", "direct\tWhat?\ta.html\n")
    path = _write(tmp_path, name, text)
    with pytest.raises(QuestionFileError) as raised:
        load_question_set(tmp_path)
    assert raised.value.path == path and raised.value.line == line
    assert str(raised.value).startswith(f"{path}:{line}: ") and problem in str(raised.value)


def test_a_missing_set_or_questions_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no question set"):
        load_question_set(tmp_path / "absent")
    with pytest.raises(NotFoundError, match=r"questions\.tsv"):
        load_question_set(tmp_path)
    single = _write(tmp_path, "mine.tsv", "paraphrased\tHow?\ta.html b/c.html\n")
    assert load_question_set(single).questions[0].acceptable == ("a.html", "b/c.html")


# --- pages and metrics ----------------------------------------------------------------------


def test_acceptable_paths_match_the_end_of_the_url_path() -> None:
    url = "http://127.0.0.1:8123/topics/db/queries.html#spanning-relationships"
    assert page_path(url) == "topics/db/queries.html"
    assert is_acceptable(url, ("topics/db/queries.html",))
    assert is_acceptable("http://h/docs/topics/db/queries.html", ("topics/db/queries.html",))
    assert not is_acceptable("http://h/topics/db/queries.html", ("db/other.html",))
    assert not is_acceptable("http://h/xtopics/db/queries.html", ("topics/db/queries.html",))
    assert is_acceptable("http://h/intro/", ("intro/index.html",))
    assert is_acceptable("http://h/a%20b.html", ("a b.html",))


def _candidate(
    name: str, page: str, scores: tuple[float, float, float], ranks: tuple[int, ...]
) -> Candidate:
    return Candidate(
        chunk_id=name,
        url=f"http://h/{page}#{name}",
        dense_score=scores[0],
        maxsim_score=scores[1],
        lexical_score=scores[2],
        dense_rank=ranks[0],
        maxsim_rank=ranks[1],
        lexical_rank=ranks[2],
        fused_rank=ranks[3],
    )


def _pool() -> Pool:
    # Three chunks of two pages: a.html has two chunks, b.html one.
    return Pool(
        (
            _candidate("a1", "a.html", (0.9, 0.5, 1.0), (1, 3, 3, 2)),
            _candidate("b1", "b.html", (0.8, 0.7, 9.0), (2, 1, 1, 1)),
            _candidate("a2", "a.html", (0.1, 0.6, 2.0), (3, 2, 2, 3)),
        ),
        FusionWeights(1.0, 1.0, 1.0),
    )


def test_a_page_ranks_where_its_best_chunk_ranks_in_every_stage() -> None:
    orderings = stage_orderings(_pool())
    assert set(orderings) == set(STAGES)
    pages = {stage: [page_path(u) for u in page_ranking(o)] for stage, o in orderings.items()}
    assert pages["dense"] == ["a.html", "b.html"]
    assert pages["lexical"] == ["b.html", "a.html"]
    assert pages["maxsim_only"] == ["b.html", "a.html"]
    assert pages["fused"] == ["b.html", "a.html"]
    # Dense and BM25 alone (MaxSim weighed 0): b1 leads on BM25 by far.
    assert orderings["without_late_interaction"][0].chunk_id == "b1"
    assert first_acceptable_rank(page_ranking(orderings["dense"]), ("b.html",)) == 2
    assert first_acceptable_rank(page_ranking(orderings["dense"]), ("c.html",)) is None
    dense_only = fused_order(_pool(), FusionWeights(1.0, 0.0, 0.0))
    assert [c.chunk_id for c in dense_only] == ["a1", "b1", "a2"]


def test_pools_survive_json_bit_for_bit() -> None:
    pool = _pool()
    assert Pool.from_json(json.loads(json.dumps(pool.to_json()))) == pool


def test_stage_metrics_of_ranks() -> None:
    metrics = StageMetrics.of([1, 2, 7, None, 12])
    assert metrics.questions == 5
    assert metrics.hit_at_1 == pytest.approx(1 / 5)
    assert metrics.hit_at_5 == pytest.approx(2 / 5)
    assert metrics.mrr_at_10 == pytest.approx((1 + 1 / 2 + 1 / 7) / 5)


# --- a real knowledge base ------------------------------------------------------------------


@pytest.fixture(scope="module")
def site_data(
    tmp_path_factory: pytest.TempPathFactory, encoder: TransformerEncoder
) -> Iterator[tuple[Path, Assistant]]:
    """The five tutorial pages served with a sitemap and ingested into ``KB``."""
    if not (DOCS / "tutorial" / "venv.html").exists():
        pytest.fail("Python's HTML docs are missing: apt-get install python3.11-doc")
    base = tmp_path_factory.mktemp("site")
    (base / "www" / "tutorial").mkdir(parents=True)
    for page in PAGES:
        shutil.copy(DOCS / "tutorial" / f"{page}.html", base / "www" / "tutorial")
    with StaticSite(base / "www") as site:
        urls = "".join(f"<url><loc>{site.url}tutorial/{page}.html</loc></url>" for page in PAGES)
        _write(
            base / "www",
            "sitemap.xml",
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">' + urls + "</urlset>",
        )
        settings = Settings(
            _env_file=None, data_dir=base / "data", fetch_allow_hosts=("127.0.0.1",)
        )  # type: ignore[call-arg]
        assistant = Assistant(settings, encoder=encoder)
        report = assistant.ingest([site.url + "sitemap.xml"], kb=KB)
        assert report.count("added") == len(PAGES) and not report.failures
    try:
        yield base / "data", assistant
    finally:
        assistant.close()


@pytest.fixture(scope="module")
def site_report(site_data: tuple[Path, Assistant]) -> SiteReport:
    return evaluate_site(site_data[1], load_question_set(QUESTIONS), kb=KB)


@pytest.mark.integration
def test_page_ranks_agree_with_the_live_search(
    site_data: tuple[Path, Assistant], site_report: SiteReport
) -> None:
    assistant = site_data[1]
    assert site_report.pages == len(PAGES) and site_report.chunks >= len(PAGES)
    for result in site_report.results:
        top = assistant.search(result.question.text, kb=KB, k=1).hits[0]
        assert (result.ranks["fused"] == 1) == is_acceptable(top.url, result.question.acceptable)
        assert result.top_pages[0] == page_path(top.url)
    fused = site_report.metrics["fused"]
    assert set(fused) == set(KINDS) and fused["all"].questions == 7
    ranks = [result.ranks["fused"] for result in site_report.results]
    assert fused["all"] == StageMetrics.of(ranks)
    # The direct questions use the pages' own words: the shipped ranking finds them first.
    assert fused["direct"].hit_at_1 == 1.0


@pytest.mark.integration
def test_saved_pools_rerank_exactly_as_the_live_search(
    site_data: tuple[Path, Assistant], site_report: SiteReport
) -> None:
    assistant = site_data[1]
    pools = load_pools(json.loads(json.dumps(site_report.to_json())))
    weights = FusionWeights(**site_report.weights)
    pool_k = 2 * assistant.settings.recall_k
    for question, pool in pools:
        live = assistant.search(question.text, kb=KB, k=pool_k).candidates
        assert [c.chunk_id for c in fused_order(pool, weights)] == [h.chunk_id for h in live]
    assert rescore(pools, weights) == site_report.metrics["fused"]
    dense = rescore(pools, FusionWeights(1.0, 0.0, 0.0))
    assert dense == site_report.metrics["dense"]


@pytest.mark.integration
def test_follow_ups_run_the_chat_path_and_leave_no_conversation(
    site_data: tuple[Path, Assistant], site_report: SiteReport
) -> None:
    assert site_report.follow_ups is not None
    conversations = load_question_set(QUESTIONS).conversations
    by_mode = site_report.follow_ups.results
    # The model mode searched exactly the standalone question the scripted provider wrote.
    assert [r.searched for r in by_mode["model"]] == [c.standalone for c in conversations]
    # The rules rewrite the follow-up with the first question's topic; alone, it is unchanged.
    assert [r.searched for r in by_mode["alone"]] == [c.follow_up for c in conversations]
    assert all(
        r.searched != c.follow_up for r, c in zip(by_mode["rules"], conversations, strict=True)
    )
    for results in by_mode.values():
        for result in results:
            assert result.cited_hit == any(
                is_acceptable(url, result.conversation.acceptable) for url in result.cited
            )
    assert site_report.follow_ups.rates()["model"]["cited"] == 1.0
    assert site_data[1].conversations(kb=KB) == []


@pytest.mark.integration
def test_unanswerable_questions_are_declined_by_the_threshold(site_report: SiteReport) -> None:
    no_answer = site_report.no_answer
    assert no_answer is not None and no_answer.threshold == 0.5
    off_topic = [q for q in no_answer.asked if q.kind == "off-topic"]
    assert off_topic and all(q.declined for q in off_topic)
    for question in no_answer.asked:
        assert question.declined == (question.top_score is None or question.top_score < 0.5)
    rates = no_answer.rates()
    assert rates["declined off-topic"] == 1.0 and 0.0 < rates["answered all answerable"] <= 1.0


@pytest.mark.integration
def test_eval_command_writes_the_site_json(
    site_data: tuple[Path, Assistant], tmp_path: Path
) -> None:
    output = tmp_path / "site.json"
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(site_data[0]), "COLUMNS": "160"}
    command = [sys.executable, "-m", "assistant", "eval", "--questions", str(QUESTIONS)]
    result = subprocess.run(
        [*command, "--kb", KB, "--retrieval-only", "--json", str(output)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "without_late_interaction" in result.stdout and "paraphrased" in result.stdout
    payload = json.loads(output.read_text(encoding="utf-8"))
    assert payload["kb"] == KB and payload["questions"] == 7
    assert set(payload["stages"]) == set(STAGES)
    for by_kind in payload["stages"].values():
        assert set(by_kind) == set(KINDS)
        assert set(by_kind["all"]) == {"questions", "hit@1", "hit@5", "mrr@10"}
    entry = payload["per_question"][0]
    assert set(entry["ranks"]) == set(STAGES) and entry["pool"]["candidates"]
    assert set(entry["pool"]["candidates"][0]) == {
        "chunk_id",
        "url",
        "dense",
        "maxsim",
        "bm25",
        "ranks",
        "breadth",
    }
    assert payload["follow_ups"] is None and payload["no_answer"] is None

    missing = subprocess.run(
        [*command, "--kb", "absent"], capture_output=True, text=True, env=env, timeout=120
    )
    assert missing.returncode == 1
    assert "no knowledge base 'absent'" in missing.stderr and "Traceback" not in missing.stderr


def test_the_sweep_keeps_a_question_declined_for_its_names_declined() -> None:
    from assistant.evaluation.no_answer import AskedQuestion, NoAnswerReport

    report = NoAnswerReport(
        0.5,
        [
            # Declined although 0.7 passes 0.5: it named something no page holds.
            AskedQuestion("near-domain", "Does it work with Zapier?", False, True, 0.7),
            AskedQuestion("off-topic", "Capital of Chad?", False, True, 0.3),
            AskedQuestion("direct", "How do refunds work?", True, False, 0.6),
            AskedQuestion("paraphrased", "money back?", True, True, 0.45),
        ],
    )

    rows = {row["threshold"]: row for row in report.sweep((0.4, 0.5, 0.65))}
    assert rows[0.4] == {
        "threshold": 0.4,
        "declined unanswerable": 1.0,
        "answered answerable": 1.0,
    }
    assert rows[0.5]["declined unanswerable"] == 1.0
    assert rows[0.5]["answered answerable"] == 0.5
    assert rows[0.65]["answered answerable"] == 0.0
