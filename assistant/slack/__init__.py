"""The Slack bot: a thin surface over the in-process ``Assistant``, like the HTTP API.

It answers mentions, direct messages, follow-ups in its own threads (the thread is the
conversation) and, where a channel asks for it, every question; it streams the answer into one
message, cites its sources, takes 👍/👎 and "Talk to a person". Slack reaches it by HTTP
events (``/slack/events`` on ``assistant serve``) or by Socket Mode (``assistant slack``).
"""

from assistant.slack.app import create_bolt_app, slack_web_client
from assistant.slack.config import ChannelConfig, ChannelRules, SlackConfig
from assistant.slack.handlers import SlackHandlers, looks_like_question
from assistant.slack.mrkdwn import answer_blocks, split_text, to_mrkdwn
from assistant.slack.store import ThreadKey, ThreadStore, request_handoff
from assistant.slack.transports import (
    SLACK_EVENTS_PATH,
    mount_slack,
    run_socket_mode,
    slack_http_enabled,
)

__all__ = [
    "SLACK_EVENTS_PATH",
    "ChannelConfig",
    "ChannelRules",
    "SlackConfig",
    "SlackHandlers",
    "ThreadKey",
    "ThreadStore",
    "answer_blocks",
    "create_bolt_app",
    "looks_like_question",
    "mount_slack",
    "request_handoff",
    "run_socket_mode",
    "slack_http_enabled",
    "slack_web_client",
    "split_text",
    "to_mrkdwn",
]
