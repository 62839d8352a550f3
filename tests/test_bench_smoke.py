"""The chat and no-answer benchmarks: their threshold rule, and a run of each at minimal sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from assistant.knowledge.encoder import TransformerEncoder
from bench import chat, no_answer


def test_recommend_declines_the_most_while_keeping_95_percent() -> None:
    # 20 answerable: one at 0.50, nineteen from 0.60 to 0.78. Keeping 19 of 20 allows any
    # threshold up to 0.60, which declines 0.30 and 0.54 but not 0.65.
    answerable: list[float | None] = [0.50, *(0.60 + 0.01 * i for i in range(19))]
    unanswerable: list[float | None] = [0.30, 0.54, 0.65]
    threshold = no_answer.recommend(answerable, unanswerable)
    assert threshold == 0.57  # the middle of the gap (0.54, 0.60]
    result = no_answer.outcome(threshold, answerable, {"other": unanswerable})
    assert (result.kept, result.declined) == (0.95, 2 / 3)


def test_recommend_keeps_every_answerable_question_when_that_declines_as_many() -> None:
    answerable: list[float | None] = [0.60 + 0.01 * i for i in range(20)]
    unanswerable: list[float | None] = [0.30, 0.40, None]
    threshold = no_answer.recommend(answerable, unanswerable)
    assert threshold == 0.5
    result = no_answer.outcome(threshold, answerable, {"other": unanswerable})
    assert (result.kept, result.declined) == (1.0, 1.0)


def test_a_question_without_hits_is_never_kept() -> None:
    result = no_answer.outcome(-1.0, [None, 0.5], {"other": [None]})
    assert (result.kept, result.declined) == (0.5, 1.0)


def test_read_questions_groups_by_section(tmp_path: Path) -> None:
    path = tmp_path / "questions.txt"
    path.write_text("# a comment\n# section: one\nA?\n\nB?\n# section: two\nC?\n")
    assert no_answer.read_questions(path) == {"one": ["A?", "B?"], "two": ["C?"]}


def test_unanswerable_examples_are_half_off_topic_half_near_domain() -> None:
    groups = no_answer.read_questions(no_answer.UNANSWERABLE)
    assert {group: len(questions) for group, questions in groups.items()} == {
        "off-topic": 20,
        "near-domain": 20,
    }
    answerable = no_answer.read_questions(no_answer.ANSWERABLE)["questions"]
    assert not set(answerable) & {q for qs in groups.values() for q in qs}


def test_chat_bench_times_first_and_follow_up_turns(
    tmp_path: Path, encoder: TransformerEncoder
) -> None:
    output = tmp_path / "chat.json"
    chat.main(["--chunks", "200", "--queries", "3", "--json", str(output)], encoder=encoder)
    (scale,) = json.loads(output.read_text())["scales"]
    assert scale["chunks"] == 200
    for turn in ("first", "follow-up"):
        result = scale["caches"]["in-process int8"][turn]
        assert result["first_text"]["count"] == 3
        assert 0 < result["first_text"]["p50_ms"] <= result["turn_total"]["p50_ms"]
        assert result["outcomes"] == {"answered": 3}
        assert result["cache_misses"] == 0
        assert set(chat.STAGES) <= set(result["stages"])


@pytest.mark.integration
def test_chat_bench_measures_redis_and_removes_its_keys(
    tmp_path: Path, encoder: TransformerEncoder, redis_url: str
) -> None:
    output = tmp_path / "chat.json"
    argv = ["--chunks", "150", "--queries", "2", "--redis-url", redis_url, "--json", str(output)]
    chat.main(argv, encoder=encoder)
    (scale,) = json.loads(output.read_text())["scales"]
    result = scale["caches"]["Redis int8"]["follow-up"]
    assert result["cache_misses"] == 0
    assert scale["cache_errors"]["Redis int8"] == 0
    client = redis.Redis.from_url(redis_url)
    try:
        assert not list(client.scan_iter(match=chat.REDIS_PREFIX + "*"))
    finally:
        client.close()


@pytest.mark.slow  # ingests the sample help centre: about 10 s
def test_no_answer_bench_recommends_a_threshold_on_the_sample(
    tmp_path: Path, encoder: TransformerEncoder
) -> None:
    output = tmp_path / "no_answer.json"
    no_answer.main(["--json", str(output)], encoder=encoder)
    (sample,) = json.loads(output.read_text())["calibrations"]
    assert sample["answerable_questions"] == 20
    assert sample["unanswerable_questions"] == {"off-topic": 20, "near-domain": 20}
    recommended = sample["recommended"]
    assert recommended["kept"] >= no_answer.KEEP_GOAL
    # Nothing in the sweep keeps as many answerable questions and declines more.
    assert not [
        row
        for row in sample["sweep"]
        if row["kept"] >= no_answer.KEEP_GOAL and row["declined"] > recommended["declined"]
    ]
    # Off-topic questions share little with the help centre's text.
    assert recommended["declined_by_group"]["off-topic"] >= 0.8
    kept = [row["kept"] for row in sample["sweep"]]
    assert kept == sorted(kept, reverse=True)
