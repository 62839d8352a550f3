"""Markdown to Slack mrkdwn, and answers cut to Slack's block limits."""

from __future__ import annotations

import json

from assistant.chat.events import Citation, Source
from assistant.slack.mrkdwn import (
    MAX_BLOCKS,
    MAX_SECTION_CHARS,
    answer_blocks,
    sources_block,
    split_text,
    to_mrkdwn,
)


def test_markdown_becomes_mrkdwn() -> None:
    markdown = (
        "# Refunds\n"
        "**Annual** plans are *refunded* within [14 days](https://ex.com/r?a=1&b=2).\n"
        "- first\n"
        "* second with `a<b>` code\n"
        "1. numbered\n"
        "~~old~~ & <tag>\n"
        "```python\nif a < b:\n    pass\n```"
    )
    assert to_mrkdwn(markdown).split("\n") == [
        "*Refunds*",
        "*Annual* plans are _refunded_ within <https://ex.com/r?a=1&amp;b=2|14 days>.",
        "• first",
        "• second with `a&lt;b&gt;` code",
        "1. numbered",
        "~old~ &amp; &lt;tag&gt;",
        "```",
        "if a &lt; b:",
        "    pass",
        "```",
    ]


def test_stars_inside_code_and_words_are_left_alone() -> None:
    assert to_mrkdwn("run `a**b**c` and 2*3*4") == "run `a**b**c` and 2*3*4"


def test_long_text_is_split_under_the_section_limit_with_fences_balanced() -> None:
    prose = ("word " * 700 + "\n\n") * 3
    pieces = split_text(prose)
    assert len(pieces) == 4 and all(len(p) <= MAX_SECTION_CHARS for p in pieces)
    code = "```\n" + "x = 1\n" * 1000 + "```"
    pieces = split_text(code)
    assert len(pieces) == 3
    assert all(len(p) <= MAX_SECTION_CHARS and p.count("```") == 2 for p in pieces)


def test_a_very_long_answer_spreads_over_messages_of_at_most_50_blocks() -> None:
    text = "\n\n".join("paragraph " * 290 for _ in range(60))
    messages = answer_blocks(text, button_value='{"assistant":"a","turn":1}', handoff=True)
    assert len(messages) == 2
    assert all(len(blocks) <= MAX_BLOCKS for blocks in messages)
    assert messages[-1][-1]["type"] == "actions"
    sections = [b for blocks in messages for b in blocks if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= MAX_SECTION_CHARS for b in sections)


def test_sources_are_numbered_links_to_cited_pages_once_each() -> None:
    citations = [
        Citation(1, "Billing | Harbor", "https://ex.com/billing", "q"),
        Citation(2, "Billing again", "https://ex.com/billing", "q"),
        Citation(3, "Local", "/docs/local.md", "q"),
    ]
    block = sources_block(citations, [])
    assert block is not None
    assert [e["text"] for e in block["elements"]] == [
        "*Sources*",
        "[1] <https://ex.com/billing|Billing ¦ Harbor>",
        "[3] Local",
    ]
    source = Source(1, "c1", "Page", "https://ex.com/p", (), "text", 0.9)
    fallback = sources_block([], [source])
    assert fallback is not None and fallback["elements"][1]["text"] == "[1] <https://ex.com/p|Page>"
    assert sources_block([], []) is None


def test_buttons_carry_the_assistant_and_the_turn() -> None:
    (blocks,) = answer_blocks("Yes.", button_value='{"assistant":"docs","turn":7}')
    actions = blocks[-1]
    assert [e["action_id"] for e in actions["elements"]] == [
        "assistant_feedback_up",
        "assistant_feedback_down",
    ]
    assert json.loads(actions["elements"][0]["value"]) == {"assistant": "docs", "turn": 7}
