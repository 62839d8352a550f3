"""A local server that speaks the Gemini API's streaming protocol, for provider tests.

The SDK posts to ``/{version}/models/{model}:streamGenerateContent?alt=sse``; the answer is a
``text/event-stream`` of ``data: {GenerateContentResponse}`` events separated by CRLF blank lines,
as Google sends them. Text arrives in ``candidates[0].content.parts[].text``; early chunks carry a
``usageMetadata`` without counts, and the last chunk carries the finish reason, the token counts
and a part with an empty text and a ``thoughtSignature``. Errors are Google's JSON envelope
``{"error": {"code", "message", "status", "details"}}``. The server machinery (scripted replies,
recorded requests, disconnect detection) is ``ScriptedServer``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tests.chat.fake_anthropic import RecordedRequest, Reply, ScriptedServer

__all__ = [
    "FakeGemini",
    "RecordedRequest",
    "Reply",
    "gemini_answer",
    "gemini_chunk",
    "gemini_error",
    "gemini_event",
]

_MODEL_VERSION = "gemini-3.8-flash"
_RESPONSE_ID = "tTCwacuEBMvnitYP06qsgQY"


class FakeGemini(ScriptedServer):
    """A fake Gemini API; by default every request gets a short answer."""

    def __init__(self, script: Sequence[Reply] | None = None) -> None:
        super().__init__(script or (Reply(frames=gemini_answer(["Hello", " world"])),))

    @property
    def api_base_url(self) -> str:
        """The base URL to give the SDK (it appends ``{version}/models/…``)."""
        return self.base_url + "/"


def gemini_event(data: Mapping[str, Any]) -> bytes:
    """One server-sent event as the Gemini API writes it."""
    return f"data: {json.dumps(data)}\r\n\r\n".encode()


def gemini_chunk(
    parts: Sequence[Mapping[str, Any]],
    *,
    finish_reason: str | None = None,
    usage: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``GenerateContentResponse`` with a single candidate made of ``parts``."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [dict(p) for p in parts]}}
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
        candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": dict(usage) if usage is not None else {"trafficType": "ON_DEMAND"},
        "modelVersion": _MODEL_VERSION,
        "responseId": _RESPONSE_ID,
    }


def gemini_answer(
    pieces: Sequence[str],
    *,
    prompt_tokens: int = 31,
    candidate_tokens: int = 9,
    thought_tokens: int = 4,
    finish_reason: str = "STOP",
) -> tuple[bytes, ...]:
    """The full event stream of one answer whose text chunks are ``pieces``."""
    frames = [gemini_event(gemini_chunk([{"text": piece}])) for piece in pieces]
    final_usage = {
        "promptTokenCount": prompt_tokens,
        "candidatesTokenCount": candidate_tokens,
        "thoughtsTokenCount": thought_tokens,
        "totalTokenCount": prompt_tokens + candidate_tokens + thought_tokens,
        "trafficType": "ON_DEMAND",
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }
    last = gemini_chunk(
        [{"text": "", "thoughtSignature": "AY89a18iOcFus5wr5bW5xN6zZ4aU"}],
        finish_reason=finish_reason,
        usage=final_usage,
    )
    frames.append(gemini_event(last))
    return tuple(frames)


def gemini_error(
    code: int,
    status: str,
    message: str,
    *,
    reason: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Reply:
    """An error status with Google's error envelope; ``reason`` adds a ``google.rpc.ErrorInfo``."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
    return Reply(status=code, body={"error": error}, headers=tuple(headers))
