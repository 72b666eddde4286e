"""Refusals and failures of skills and their runs; each a DomainError the admin and API show."""

from __future__ import annotations

from mh1.errors import DomainError


class SkillError(DomainError):
    code = "skill_error"


class UnknownSkill(SkillError):
    code = "unknown_skill"
    status_code = 404


class ContractInvalid(SkillError):
    """A skill's contract is incomplete or inconsistent: the skill does not load."""

    code = "contract_invalid"


class InputsInvalid(SkillError):
    """The inputs fail the skill's input schema: refused before anything is reserved."""

    code = "inputs_invalid"

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


class InsufficientData(SkillError):
    """Below the contract's minimum records or field coverage, and the contract says refuse."""

    code = "insufficient_data"


class RunRefused(SkillError):
    """The run may not start now (kill switch, mode not supported, budget): it costs nothing."""

    code = "run_refused"
    status_code = 409


class ProviderError(SkillError):
    """The LLM provider failed (network, vendor error): a failed attempt within the retry budget."""

    code = "provider_error"
    status_code = 502


class ProviderOutputInvalid(ProviderError):
    """The provider answered, but not with JSON valid for the schema asked for."""

    code = "provider_output_invalid"


class ProviderNotConfigured(SkillError):
    code = "provider_not_configured"
