"""OpenAI-compatible endpoints as configurations of ``OpenAIProvider``.

Each preset names an endpoint that speaks the Chat Completions wire protocol: its base URL (which
the preset's own base-URL variable overrides), the variable that holds its API key (``None`` for
local servers that need none), and the model used when none is configured. Base URLs and default
models come from each vendor's documentation, cited next to the entry.

>>> PRESETS["deepseek"].key_variable
'DEEPSEEK_API_KEY'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PRESETS", "Preset", "TokenLimitParameter"]

TokenLimitParameter = Literal["max_completion_tokens", "max_tokens"]
"""The request field that caps the answer's length.

OpenAI replaced ``max_tokens`` with ``max_completion_tokens``; most compatible servers only know
``max_tokens``.
"""


@dataclass(frozen=True, slots=True)
class Preset:
    """An OpenAI-compatible endpoint: where it is, which key it needs, which model it defaults to.

    ``default_model`` is ``None`` where the server answers with whatever model its operator loaded,
    so no name can be guessed; the model must then be configured.
    """

    name: str
    base_url: str
    key_variable: str | None
    base_url_variable: str
    default_model: str | None
    token_limit_parameter: TokenLimitParameter = "max_tokens"


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        # docs.x.ai, "Integrations" (OpenAI SDK with base_url https://api.x.ai/v1) and the
        # quickstart "The Hitchhiker's Guide to Grok", whose examples use the model "grok-4".
        Preset("xai", "https://api.x.ai/v1", "XAI_API_KEY", "XAI_BASE_URL", "grok-4"),
        # api-docs.deepseek.com, "Your First API Call": base_url https://api.deepseek.com; models
        # deepseek-v4-flash / deepseek-v4-pro, with deepseek-chat deprecated on 2026-07-24.
        Preset(
            "deepseek",
            "https://api.deepseek.com",
            "DEEPSEEK_API_KEY",
            "DEEPSEEK_BASE_URL",
            "deepseek-v4-flash",
        ),
        # Alibaba Cloud Model Studio, "OpenAI Chat compatibility" (DashScope compatible mode):
        # Beijing endpoint below; the Singapore one is
        # https://dashscope-intl.aliyuncs.com/compatible-mode/v1 (set DASHSCOPE_BASE_URL). Its API
        # reference gives qwen-plus as the example text model.
        Preset(
            "qwen",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            "DASHSCOPE_API_KEY",
            "DASHSCOPE_BASE_URL",
            "qwen-plus",
        ),
        # docs.bigmodel.cn, "OpenAI API 兼容" and the model overview (GLM-4.7: general chat and
        # reasoning). ZHIPUAI_API_KEY / ZHIPUAI_BASE_URL are the variables Zhipu's own Python SDK
        # reads. The international platform is https://api.z.ai/api/paas/v4.
        Preset(
            "glm",
            "https://open.bigmodel.cn/api/paas/v4",
            "ZHIPUAI_API_KEY",
            "ZHIPUAI_BASE_URL",
            "glm-4.7",
        ),
        # openrouter.ai/docs quickstart ("Using the OpenAI SDK"): base_url
        # https://openrouter.ai/api/v1, models named vendor/model; this is the OpenAI default model
        # under OpenRouter's naming.
        Preset(
            "openrouter",
            "https://openrouter.ai/api/v1",
            "OPENROUTER_API_KEY",
            "OPENROUTER_BASE_URL",
            "openai/gpt-4o-mini",
        ),
        # docs.ollama.com, "OpenAI compatibility": http://localhost:11434/v1, the key is required by
        # the client but ignored; its example model is gpt-oss:20b (pull it, or set the model).
        Preset("ollama", "http://127.0.0.1:11434/v1", None, "OLLAMA_BASE_URL", "gpt-oss:20b"),
        # docs.vllm.ai, "OpenAI-Compatible Server": http://localhost:8000/v1; the model is the one
        # `vllm serve` was started with, and a key only if it was started with --api-key.
        Preset("vllm", "http://127.0.0.1:8000/v1", None, "VLLM_BASE_URL", None),
        # lmstudio.ai/docs, "OpenAI Compatible Endpoints": http://localhost:1234/v1; the model is
        # the identifier of a model loaded in LM Studio.
        Preset("lmstudio", "http://127.0.0.1:1234/v1", None, "LMSTUDIO_BASE_URL", None),
    )
}
"""The OpenAI-compatible presets by name."""
