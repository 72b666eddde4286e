"""Which LLM provider a tenant's skill runs use: the first of Anthropic, OpenAI with a key in the
tenant's credentials, else the deterministic offline provider (here, in CI and in the demo)."""

from __future__ import annotations

from skills.providers.base import LlmProvider, LlmRequest, LlmResponse
from skills.providers.offline import OFFLINE_MODEL, OfflineProvider

__all__ = ["OFFLINE_MODEL", "LlmProvider", "LlmRequest", "LlmResponse", "OfflineProvider", "provider_for"]

PROVIDER_SYSTEMS = ("anthropic", "openai")
MODEL_PREFIXES = {"anthropic": ("claude",), "openai": ("gpt", "o1", "o3", "o4")}


def provider_for(model: str = "") -> LlmProvider:
    """The provider for the current tenant (call inside its schema context).

    ``model`` names a model; the provider that serves it is used when the tenant has its key.
    Without a key for any provider, the offline one answers.
    """
    from connectors.models import Credential
    from skills.providers.vendors import AnthropicProvider, OpenAIProvider

    classes = {"anthropic": AnthropicProvider, "openai": OpenAIProvider}
    preferred = [system for system in PROVIDER_SYSTEMS if model.startswith(MODEL_PREFIXES[system])]
    credentials = {c.system: c for c in Credential.objects.filter(system__in=PROVIDER_SYSTEMS)}
    for system in dict.fromkeys([*preferred, *PROVIDER_SYSTEMS]):
        credential = credentials.get(system)
        secret = (credential.secret or {}) if credential is not None else {}
        key = secret.get("api_key") or secret.get("token")
        if key:
            return classes[system](
                api_key=key, base_url=credential.base_url, timeout=credential.timeout_seconds
            )
    return OfflineProvider()
