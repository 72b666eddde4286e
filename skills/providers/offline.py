"""The deterministic offline provider: the default wherever no model key is configured.

It returns the skill's own rule-based answer (``LlmRequest.offline_answer``) serialised as JSON,
or, for a request without one, a stable digest of the prompt. Token counts are computed the way a
tokenizer roughly would (4 characters a token), so budgets and prices behave as with a real model.
"""

from __future__ import annotations

import hashlib
import json

from skills.providers.base import LlmRequest, LlmResponse

OFFLINE_MODEL = "offline-deterministic"
CHARS_PER_TOKEN = 4


def _tokens(text: str) -> int:
    return max(1, (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


class OfflineProvider:
    name = "offline"
    default_model = OFFLINE_MODEL

    def complete(self, request: LlmRequest) -> LlmResponse:
        if request.offline_answer is not None:
            text = json.dumps(request.offline_answer(), sort_keys=True, default=str)
        else:
            digest = hashlib.sha256(f"{request.system}\n{request.prompt}".encode()).hexdigest()
            text = json.dumps({"digest": digest})
        # never more than was asked for: a real model stops at max_tokens too
        output_tokens = min(_tokens(text), request.max_tokens)
        return LlmResponse(
            text=text,
            model=OFFLINE_MODEL,
            provider=self.name,
            input_tokens=_tokens(request.system) + _tokens(request.prompt),
            output_tokens=output_tokens,
        )
