"""The options every answer provider takes, in one validated model.

``ProviderOptions`` is built once, from ``Settings`` (the vendor's key and base URL) and the
assistant's own answering config (model, temperature, output limit), and handed to whichever
adapter serves the request. Unknown fields are refused, so a misspelt option fails where it is
written; the key is a ``SecretStr``, so neither ``repr`` nor a validation error shows it.

>>> options = ProviderOptions(api_key="sk-example", model="gpt-4o-mini", max_retries=0)
>>> options
ProviderOptions(api_key=SecretStr('**********'), base_url=None, model='gpt-4o-mini', \
temperature=None, max_output_tokens=None, timeout_seconds=60.0, connect_timeout_seconds=5.0, \
max_retries=0)
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from assistant.errors import ConfigError

__all__ = ["ProviderOptions", "check_limits"]


def check_limits(
    *,
    max_output_tokens: int | None,
    timeout_seconds: float,
    connect_timeout_seconds: float,
    max_retries: int,
) -> None:
    """Refuse limits no request could be made with, naming the value (``ConfigError``)."""
    if max_output_tokens is not None and max_output_tokens < 1:
        raise ConfigError(f"max_output_tokens must be at least 1, got {max_output_tokens}")
    if timeout_seconds <= 0 or connect_timeout_seconds <= 0:
        raise ConfigError(
            f"timeouts must be positive, got timeout_seconds={timeout_seconds} and "
            f"connect_timeout_seconds={connect_timeout_seconds}"
        )
    if max_retries < 0:
        raise ConfigError(f"max_retries must be 0 or more, got {max_retries}")


class ProviderOptions(BaseModel):
    """Credentials, endpoint, model and limits of one provider.

    ``api_key`` ``None`` means no key was configured: adapters that need one raise
    ``ProviderAuthError`` naming the variable to set. ``base_url`` and ``model`` ``None`` mean
    the adapter's defaults. ``timeout_seconds`` bounds each wait for the next piece of the
    stream (not the whole answer), ``connect_timeout_seconds`` the connection, and
    ``max_retries`` how often a 429, 5xx or timeout is retried by the vendor SDK.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 5.0
    max_retries: int = 2

    @model_validator(mode="after")
    def _limits_are_usable(self) -> Self:
        check_limits(
            max_output_tokens=self.max_output_tokens,
            timeout_seconds=self.timeout_seconds,
            connect_timeout_seconds=self.connect_timeout_seconds,
            max_retries=self.max_retries,
        )
        return self

    def key(self) -> str | None:
        """The key's value, for the vendor SDK alone; ``None`` when unset or empty."""
        return self.api_key.get_secret_value() or None if self.api_key is not None else None
