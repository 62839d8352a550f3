"""The Slack bot against the real app over HTTP, with Slack's Web API played by a local server.

Each test speaks in its own channel, so the module's app and fake Slack are shared safely.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select

from assistant.database import FeedbackRow, SlackThreadRow
from assistant.handoff import HandoffStore
from assistant.slack.responder import APOLOGY, UNFINISHED
from assistant.slack.store import ThreadKey, ThreadStore
from tests.chat.fake_openai import Drop
from tests.slack.conftest import SlackBed, new_event_id, new_ts
from tests.slack.fake_slack import BOT_ID, BOT_USER, TEAM, Call, FakeSlackServer

QUESTION = "Which plans include the Slack integration?"


def _mention(channel: str, text: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": "U0ASKER",
        "text": f"<@{BOT_USER}> {text}",
        "ts": new_ts(),
        "channel": channel,
        **extra,
    }


def _finished(slack: FakeSlackServer, channel: str) -> list[Call]:
    """The calls that carry a finished answer (with blocks) in ``channel``."""
    return [
        call
        for call in slack.calls(channel=channel)
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral") and call.blocks
    ]


def _wait_answer(bed: SlackBed, channel: str, count: int = 1) -> list[Call]:
    bed.slack.wait_for(lambda slack: len(_finished(slack, channel)) >= count)
    return _finished(bed.slack, channel)


def _text(call: Call) -> str:
    return json.dumps(call.blocks, ensure_ascii=False)


def _sources(call: Call) -> dict[str, Any]:
    return next(block for block in call.blocks if block["type"] == "context")


def _buttons(call: Call) -> dict[str, Any]:
    return next(block for block in call.blocks if block["type"] == "actions")


def test_a_mention_is_acknowledged_and_answered_in_its_thread_with_sources(bed: SlackBed) -> None:
    event = _mention("C1MENTION")
    started = time.monotonic()
    response = bed.event(event)
    assert response.status_code == 200
    assert time.monotonic() - started < 3.0
    (answer,) = _wait_answer(bed, "C1MENTION")
    reaction = bed.slack.calls("reactions.add", channel="C1MENTION")
    assert [(r.params["name"], r.params["timestamp"]) for r in reaction] == [("eyes", event["ts"])]
    posted = bed.slack.calls("chat.postMessage", channel="C1MENTION")
    assert posted[0].params["thread_ts"] == event["ts"]
    assert posted[0].headers["Authorization"] == "Bearer xoxb-test-token"
    sources = _sources(answer)
    assert sources["elements"][0]["text"] == "*Sources*"
    # Ingested from files here, so sources are titles; web pages become <url|title> links.
    assert any("integrations" in element["text"].lower() for element in sources["elements"][1:])
    assert answer.blocks[0]["type"] == "section"
    assert "Slack" in answer.blocks[0]["text"]["text"]
    actions = [button["action_id"] for button in _buttons(answer)["elements"]]
    assert actions == ["assistant_feedback_up", "assistant_feedback_down", "assistant_handoff"]


def test_a_follow_up_in_the_thread_continues_the_conversation(bed: SlackBed) -> None:
    root = _mention("C2FOLLOW")
    bed.event(root)
    _wait_answer(bed, "C2FOLLOW")
    follow_up = {
        "type": "message",
        "channel_type": "channel",
        "user": "U0ASKER",
        "text": "and how much does it cost?",
        "ts": new_ts(),
        "thread_ts": root["ts"],
        "channel": "C2FOLLOW",
    }
    assert bed.event(follow_up).status_code == 200
    second = _wait_answer(bed, "C2FOLLOW", count=2)[-1]
    assert (
        bed.slack.calls("chat.postMessage", channel="C2FOLLOW")[-1].params["thread_ts"]
        == root["ts"]
    )
    conversation_id = ThreadStore(bed.core.database).conversation(
        ThreadKey(TEAM, "C2FOLLOW", root["ts"])
    )
    assert conversation_id is not None
    turns = bed.core.conversation(conversation_id, kb="harbor").turns
    assert [turn.question for turn in turns] == [QUESTION, "and how much does it cost?"]
    standalone = turns[1].standalone_question
    assert standalone != turns[1].question and "slack" in standalone.lower()
    assert second.blocks


def test_a_message_outside_the_bots_threads_is_not_answered(bed: SlackBed) -> None:
    channel = "C3QUIET"
    bed.event(
        {
            "type": "message",
            "channel_type": "channel",
            "user": "U0ASKER",
            "text": "How do refunds work?",
            "ts": new_ts(),
            "thread_ts": "1.000001",
            "channel": channel,
        }
    )
    bed.event(
        {
            "type": "message",
            "channel_type": "channel",
            "user": "U0ASKER",
            "text": "How do refunds work?",
            "ts": new_ts(),
            "channel": channel,
        }
    )
    time.sleep(1.5)
    assert bed.slack.calls(channel=channel) == []


def test_a_channel_answering_questions_answers_a_root_question_without_a_mention(
    bed: SlackBed,
) -> None:
    bed.event(
        {
            "type": "message",
            "channel_type": "channel",
            "user": "U0ASKER",
            "text": "lunch is at noon today",
            "ts": new_ts(),
            "channel": "CASK",
        }
    )
    question = {
        "type": "message",
        "channel_type": "channel",
        "user": "U0ASKER",
        "text": QUESTION,
        "ts": new_ts(),
        "channel": "CASK",
    }
    bed.event(question)
    (answer,) = _wait_answer(bed, "CASK")
    assert "Slack" in answer.blocks[0]["text"]["text"]
    assert {
        call.params.get("thread_ts") for call in bed.slack.calls("chat.postMessage", channel="CASK")
    } == {question["ts"]}


def test_a_direct_message_is_answered(bed: SlackBed) -> None:
    dm = {
        "type": "message",
        "channel_type": "im",
        "user": "U0ASKER",
        "text": "How do I reset my password?",
        "ts": new_ts(),
        "channel": "D0DM",
    }
    bed.event(dm)
    (answer,) = _wait_answer(bed, "D0DM")
    assert answer.blocks[0]["type"] == "section"
    assert _sources(answer)


def test_feedback_buttons_are_stored_on_the_turn(bed: SlackBed) -> None:
    root = _mention("C4FEED")
    bed.event(root)
    (answer,) = _wait_answer(bed, "C4FEED")
    down = _buttons(answer)["elements"][1]
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": "U0ASKER"},
        "api_app_id": "A0APP",
        "channel": {"id": "C4FEED"},
        "container": {"type": "message", "channel_id": "C4FEED"},
        "message": {"ts": "1700000000.000001", "thread_ts": root["ts"]},
        "response_url": f"{bed.slack.origin}/response/feedback",
        "trigger_id": "trigger",
        "actions": [
            {
                "action_id": down["action_id"],
                "block_id": "assistant_feedback",
                "value": down["value"],
                "type": "button",
            }
        ],
    }
    assert bed.action(payload).status_code == 200
    bed.slack.wait_for(lambda slack: slack.calls("chat.postEphemeral", channel="C4FEED"))
    turn_id = json.loads(down["value"])["turn"]
    with bed.core.database.session() as session:
        ratings = session.scalars(
            select(FeedbackRow.rating).where(FeedbackRow.turn_id == turn_id)
        ).all()
    assert list(ratings) == [-1]


def test_talk_to_a_person_tags_the_group_and_records_the_handoff(bed: SlackBed) -> None:
    root = _mention("C5HAND")
    bed.event(root)
    (answer,) = _wait_answer(bed, "C5HAND")
    handoff = _buttons(answer)["elements"][2]
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": "U0ASKER"},
        "api_app_id": "A0APP",
        "channel": {"id": "C5HAND"},
        "container": {"type": "message", "channel_id": "C5HAND"},
        "message": {"ts": "1700000000.000002", "thread_ts": root["ts"]},
        "response_url": f"{bed.slack.origin}/response/handoff",
        "trigger_id": "trigger",
        "actions": [
            {
                "action_id": "assistant_handoff",
                "block_id": "assistant_feedback",
                "value": handoff["value"],
                "type": "button",
            }
        ],
    }
    assert bed.action(payload).status_code == 200
    bed.slack.wait_for(
        lambda slack: any(
            "<!subteam^S0HELP>" in str(c.params.get("text"))
            for c in slack.calls("chat.postMessage", channel="C5HAND")
        )
    )
    tag = bed.slack.calls("chat.postMessage", channel="C5HAND")[-1]
    assert tag.params["thread_ts"] == root["ts"]
    assert "<@U0LEAD>" in tag.params["text"] and "<@U0ASKER>" in tag.params["text"]
    with bed.core.database.session() as session:
        row = session.get(SlackThreadRow, (TEAM, "C5HAND", root["ts"]))
        assert row is not None and row.handoff_by == "U0ASKER" and row.handoff_at is not None
        conversation_id, assistant = row.conversation_id, row.assistant
    # The same queue as the widget's: the owner sees it with the thread's transcript.
    (handoff,) = HandoffStore(bed.core.database).list(assistant)
    assert handoff.channel == "slack" and handoff.status == "open"
    assert handoff.conversation_id == conversation_id
    assert handoff.transcript and handoff.transcript[0].question


def test_a_retried_event_is_answered_once(bed: SlackBed) -> None:
    event = _mention("C6RETRY")
    event_id = new_event_id()
    assert bed.event(event, event_id=event_id).status_code == 200
    retry = bed.event(
        event,
        event_id=event_id,
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert retry.status_code == 200
    _wait_answer(bed, "C6RETRY")
    time.sleep(1.0)
    assert len(bed.slack.calls("reactions.add", channel="C6RETRY")) == 1
    assert len(bed.slack.calls("chat.postMessage", channel="C6RETRY")) == 1


def test_a_bad_signature_is_refused(bed: SlackBed) -> None:
    response = bed.event(_mention("C7SIG"), secret="not-the-signing-secret")
    assert response.status_code == 401
    time.sleep(0.5)
    assert bed.slack.calls(channel="C7SIG") == []


def test_a_stale_timestamp_is_refused(bed: SlackBed) -> None:
    response = bed.event(_mention("C7OLD"), timestamp=int(time.time()) - 6 * 60)
    assert response.status_code == 401
    time.sleep(0.5)
    assert bed.slack.calls(channel="C7OLD") == []


def test_its_own_and_other_bots_messages_are_ignored(bed: SlackBed) -> None:
    channel = "CASK"
    before = len(bed.slack.calls(channel=channel))
    bot_messages = [
        {
            "type": "message",
            "channel_type": "channel",
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "text": QUESTION,
            "ts": new_ts(),
            "channel": channel,
        },
        {
            "type": "message",
            "channel_type": "channel",
            "subtype": "bot_message",
            "bot_id": "B0OTHER",
            "text": QUESTION,
            "ts": new_ts(),
            "channel": channel,
        },
        {
            "type": "message",
            "channel_type": "channel",
            "user": "U0OTHERBOT",
            "bot_id": "B0OTHER",
            "text": QUESTION,
            "ts": new_ts(),
            "channel": channel,
        },
    ]
    for message in bot_messages:
        assert bed.event(message).status_code == 200
    time.sleep(1.5)
    assert len(bed.slack.calls(channel=channel)) == before


def test_slacks_rate_limit_is_honoured(bed: SlackBed) -> None:
    bed.slack.fail(
        "chat.postMessage",
        429,
        {"Retry-After": "1"},
        when=lambda params: params.get("channel") == "C8RATE",
    )
    bed.event(_mention("C8RATE"))
    _wait_answer(bed, "C8RATE")
    posts = bed.slack.calls("chat.postMessage", channel="C8RATE")
    assert [post.status for post in posts[:2]] == [429, 200]
    assert posts[1].at - posts[0].at >= 1.0


def test_a_provider_failure_posts_a_short_apology(bed: SlackBed) -> None:
    bed.openai.script(Drop(("Refunds take ",)))
    bed.event(_mention("CDOWN", "How do refunds work?"))
    (answer,) = _wait_answer(bed, "CDOWN")
    shown = answer.blocks[0]["text"]["text"]
    assert shown.startswith("Refunds take") and UNFINISHED in shown
    assert "Traceback" not in _text(answer) and "ProviderUnavailableError" not in _text(answer)


def test_a_deleted_conversation_leaves_its_thread_until_the_bot_is_mentioned_again(
    bed: SlackBed,
) -> None:
    channel = "C9GONE"
    root = _mention(channel)
    bed.event(root)
    _wait_answer(bed, channel)
    key = ThreadKey(TEAM, channel, root["ts"])
    threads = ThreadStore(bed.core.database)
    first = threads.conversation(key)
    assert first is not None
    bed.core.delete_conversation(first, kb="harbor")
    assert threads.conversation(key) is None
    follow_up = {
        "type": "message",
        "channel_type": "channel",
        "user": "U0ASKER",
        "text": "and how much does it cost?",
        "ts": new_ts(),
        "thread_ts": root["ts"],
        "channel": channel,
    }
    bed.event(follow_up)
    time.sleep(1.0)
    assert len(_finished(bed.slack, channel)) == 1
    bed.event(_mention(channel, thread_ts=root["ts"]))
    second = _wait_answer(bed, channel, count=2)[-1]
    assert APOLOGY not in _text(second)
    renewed = threads.conversation(key)
    assert renewed not in (None, first)


def test_a_private_channel_answers_ephemerally(bed: SlackBed) -> None:
    bed.event(_mention("CPRIV"))
    (answer,) = _wait_answer(bed, "CPRIV")
    assert answer.method == "chat.postEphemeral" and answer.params["user"] == "U0ASKER"
    assert bed.slack.calls("chat.postMessage", channel="CPRIV") == []


def test_the_slash_command_answers_privately_and_helps(bed: SlackBed) -> None:
    help_reply = bed.command("help", channel="C10CMD")
    assert help_reply.status_code == 200
    bed.slack.wait_for(lambda slack: any(c.method.startswith("/response/") for c in slack.calls()))
    helped = [c for c in bed.slack.calls() if c.method.startswith("/response/")]
    assert "/assistant" in helped[0].params["text"]
    assert helped[0].params["response_type"] == "ephemeral"
    reply = bed.command(QUESTION, channel="C10CMD")
    assert reply.status_code == 200
    bed.slack.wait_for(
        lambda slack: any(c.method.startswith("/response/") and c.blocks for c in slack.calls())
    )
    answer = next(c for c in bed.slack.calls() if c.method.startswith("/response/") and c.blocks)
    assert answer.params["response_type"] == "ephemeral"
    assert "Slack" in answer.blocks[0]["text"]["text"]
    assert bed.slack.calls("chat.postMessage", channel="C10CMD") == []
