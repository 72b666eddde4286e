"""Anthropic and OpenAI through their official SDKs; keys from the tenant's encrypted credentials.

Token counts are the vendor's (``usage``), split the same way for both: ``input_tokens`` is the
uncached input, ``cached_input_tokens`` what was read from the prompt cache. The SDKs' own retries
are off: a failed attempt is counted against the skill's retry budget, not retried behind it.
"""

from __future__ import annotations

from typing import Any

from skills.errors import ProviderError
from skills.providers.base import LlmRequest, LlmResponse


class AnthropicProvider:
    name = "anthropic"
    default_model = "claude-sonnet-4-5"

    def __init__(self, *, api_key: str, base_url: str = "", timeout: float = 60, http_client: Any = None):
        import anthropic

        self._sdk = anthropic
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
        )

    def complete(self, request: LlmRequest) -> LlmResponse:
        model = request.model or self.default_model
        try:
            message = self._client.messages.create(
                model=model,
                max_tokens=request.max_tokens,
                system=request.system,
                temperature=request.temperature,
                messages=[{"role": "user", "content": request.prompt}],
            )
        except self._sdk.APIError as exc:
            raise ProviderError(f"Anthropic: {_vendor_message(exc)}") from exc
        text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
        usage = message.usage
        return LlmResponse(
            text=text,
            model=message.model or model,
            provider=self.name,
            input_tokens=int(usage.input_tokens or 0)
            + int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
            output_tokens=int(usage.output_tokens or 0),
            cached_input_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
        )


class OpenAIProvider:
    name = "openai"
    default_model = "gpt-4.1"

    def __init__(self, *, api_key: str, base_url: str = "", timeout: float = 60, http_client: Any = None):
        import openai

        self._sdk = openai
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
        )

    def complete(self, request: LlmRequest) -> LlmResponse:
        model = request.model or self.default_model
        kwargs: dict[str, Any] = {}
        if request.response_schema is not None:
            kwargs["response_format"] = {"type": "json_object"}
        try:
            completion = self._client.chat.completions.create(
                model=model,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                messages=[
                    {"role": "system", "content": request.system},
                    {"role": "user", "content": request.prompt},
                ],
                **kwargs,
            )
        except self._sdk.APIError as exc:
            raise ProviderError(f"OpenAI: {_vendor_message(exc)}") from exc
        usage = completion.usage
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        details = getattr(usage, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or 0) if details is not None else 0
        text = completion.choices[0].message.content or "" if completion.choices else ""
        return LlmResponse(
            text=text,
            model=completion.model or model,
            provider=self.name,
            input_tokens=prompt_tokens - cached,  # OpenAI counts cached tokens inside prompt_tokens
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cached_input_tokens=cached,
        )


def _vendor_message(exc: Exception) -> str:
    """The vendor's own error message, trimmed: never a whole body in a log or a page."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:300]
    return (getattr(exc, "message", "") or exc.__class__.__name__)[:300]
