"""Where and how the bot answers: workspace defaults from ``Settings``, per-channel overrides.

>>> config = SlackConfig(channels={"C1": ChannelConfig(answer="questions")})
>>> config.for_channel("C1").answer, config.for_channel("C2").answer
('questions', 'mentions')
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.errors import ConfigError
from assistant.settings import Settings

__all__ = ["ChannelConfig", "ChannelRules", "SlackConfig"]

AnswerMode = Literal["mentions", "questions"]


class ChannelConfig(BaseModel):
    """One channel's overrides; a field left unset keeps the workspace's value."""

    model_config = ConfigDict(extra="forbid")

    assistant: str | None = None
    answer: AnswerMode | None = None
    ephemeral: bool | None = None
    allowed_users: tuple[str, ...] | None = None


class ChannelRules(BaseModel):
    """The rules in force in one channel, overrides applied."""

    model_config = ConfigDict(frozen=True)

    assistant: str
    answer: AnswerMode
    ephemeral: bool
    allowed_users: tuple[str, ...]

    def allows(self, user: str | None) -> bool:
        """Whether ``user`` may ask here (everyone when no list is set)."""
        return not self.allowed_users or (user is not None and user in self.allowed_users)


class SlackConfig(BaseModel):
    """The bot's configuration for one workspace."""

    model_config = ConfigDict(frozen=True)

    assistant: str = "default"
    answer: AnswerMode = "mentions"
    ephemeral: bool = False
    allowed_users: tuple[str, ...] = ()
    handoff: tuple[str, ...] = ()
    """User ids (``U…``/``W…``) and user-group ids (``S…``) tagged by "Talk to a person"."""
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackConfig:
        """Read the ``ASSISTANT_SLACK_*`` settings.

        Raises:
            ConfigError: ``ASSISTANT_SLACK_CHANNELS`` is not a JSON object of channel settings.
        """
        channels: dict[str, ChannelConfig] = {}
        if settings.slack_channels.strip():
            try:
                raw = json.loads(settings.slack_channels)
                if not isinstance(raw, dict):
                    raise ValueError("not an object")
                channels = {str(k): ChannelConfig.model_validate(v) for k, v in raw.items()}
            except (ValueError, ValidationError) as exc:
                raise ConfigError(
                    "ASSISTANT_SLACK_CHANNELS must be a JSON object by channel id, e.g. "
                    '{"C0123": {"assistant": "docs", "answer": "questions"}}; '
                    f"it could not be read: {exc}"
                ) from None
        return cls(
            assistant=settings.slack_assistant,
            answer=settings.slack_answer,
            ephemeral=settings.slack_ephemeral,
            allowed_users=settings.slack_allowed_users,
            handoff=settings.slack_handoff,
            channels=channels,
        )

    def for_channel(self, channel: str) -> ChannelRules:
        """The rules in ``channel``: its overrides over the workspace's defaults."""
        override = self.channels.get(channel, ChannelConfig())
        return ChannelRules(
            assistant=override.assistant or self.assistant,
            answer=override.answer or self.answer,
            ephemeral=self.ephemeral if override.ephemeral is None else override.ephemeral,
            allowed_users=(
                self.allowed_users if override.allowed_users is None else override.allowed_users
            ),
        )

    def handoff_mentions(self) -> str:
        """The configured people and groups as Slack mentions (``<!subteam^S1> <@U1>``)."""
        return " ".join(
            f"<!subteam^{target}>" if target.startswith("S") else f"<@{target}>"
            for target in self.handoff
        )
