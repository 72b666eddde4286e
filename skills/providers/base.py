"""The one interface every LLM provider speaks: a request in, text and real token counts out.

A skill or the evaluation's judge builds an ``LlmRequest``; ``providers.provider_for()`` picks the
provider the tenant has a key for, or the deterministic offline one. Nothing else in the code base
imports a vendor SDK.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from skills.errors import ProviderOutputInvalid


@dataclass(frozen=True)
class LlmRequest:
    """One completion asked of a model.

    ``offline_answer`` is the skill's own deterministic answer (rules and templates): the offline
    provider returns it, so every skill runs end to end without a model; a real provider is asked
    with the prompt and may do better. ``response_schema`` is the JSON schema the answer must meet.
    """

    purpose: str  # e.g. "campaign-crafter.draft", "evaluation.judge"
    system: str
    prompt: str
    max_tokens: int
    model: str = ""  # empty: the provider's default
    temperature: float = 0.0
    response_schema: dict[str, Any] | None = None
    offline_answer: Callable[[], Any] | None = field(default=None, compare=False, repr=False)

    def prompt_hash(self) -> str:
        """What identifies this prompt for replay: system, prompt and schema, not the model."""
        blob = json.dumps([self.system, self.prompt, self.response_schema], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class LlmResponse:
    """What came back, with the token counts the vendor reported (never estimated when it did)."""

    text: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    streamed: bool = False

    def json(self, schema: dict[str, Any] | None = None) -> Any:
        """The answer parsed as JSON and checked against ``schema``; ProviderOutputInvalid if not."""
        from jsonschema import Draft202012Validator

        text = self.text.strip()
        if text.startswith("```"):
            text = text.strip("`").removeprefix("json").strip()
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ProviderOutputInvalid(f"The {self.provider} answer is not JSON: {exc}") from exc
        if schema is not None:
            errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
            if errors:
                where = "/".join(str(p) for p in errors[0].path) or "(root)"
                message = errors[0].message
                raise ProviderOutputInvalid(
                    f"The {self.provider} answer does not fit the output schema at {where}: {message}"
                )
        return value


class LlmProvider(Protocol):
    name: str
    default_model: str

    def complete(self, request: LlmRequest) -> LlmResponse: ...
