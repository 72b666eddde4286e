"""A skill's contract: what it takes and returns, how long it may run, what data it needs, how it
fails, when a person must look, what it may propose and what it may cost.

Contracts are plain frozen dataclasses declared beside each skill; ``SkillContract.problems()``
lists what is missing or inconsistent, and the registry refuses to load a skill that has any.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

MODES = ("suggest", "preview", "execute")
ON_INSUFFICIENT = ("warn", "refuse")
TIMEOUT_ACTIONS = ("abort_return_partial",)


class FailureMode:
    """The four ways a run can go wrong, each with the output the contract promises instead."""

    PARTIAL_SUCCESS = "partial_success"  # → the last good step's output
    DATA_UNAVAILABLE = "data_unavailable"  # → the last output for the same inputs, if < 24 h old
    QUALITY_BELOW_THRESHOLD = "quality_below_threshold"  # → the raw output, flagged UNVALIDATED
    COMPLETE_FAILURE = "complete_failure"  # → an error report, no actions

    ALL = (PARTIAL_SUCCESS, DATA_UNAVAILABLE, QUALITY_BELOW_THRESHOLD, COMPLETE_FAILURE)
    FALLBACKS = {
        PARTIAL_SUCCESS: "last_good_step",
        DATA_UNAVAILABLE: "cached_output_24h",
        QUALITY_BELOW_THRESHOLD: "raw_output_unvalidated",
        COMPLETE_FAILURE: "error_report",
    }


@dataclass(frozen=True)
class Sla:
    expected_seconds: int
    max_seconds: int
    p95_target_seconds: int
    timeout_action: str = "abort_return_partial"


@dataclass(frozen=True)
class DataRequirements:
    min_records: int
    # field → the share (0 to 1) of records that must have it
    required_coverage: dict[str, float] = field(default_factory=dict)
    on_insufficient: str = "refuse"


@dataclass(frozen=True)
class ReviewTriggers:
    """Any of these sends the output to a person whatever its score (seed 000 §2)."""

    budget_impact_usd: Decimal = Decimal("1000")
    min_score: float = 0.7
    first_run_for_tenant: bool = True
    pii_present: bool = True


@dataclass(frozen=True)
class CostTarget:
    target_usd: Decimal
    max_usd: Decimal


@dataclass(frozen=True)
class LlmBudget:
    """The worst case one run can ask of a model: what the budget reserves before it starts."""

    max_calls: int  # per attempt; retries multiply it
    max_input_tokens: int  # per call
    max_output_tokens: int  # per call (sent as max_tokens)
    model: str = ""  # empty: the provider's default


@dataclass(frozen=True)
class SkillContract:
    slug: str
    name: str
    description: str
    version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    modes: tuple[str, ...]
    default_mode: str
    sla: Sla
    retry_budget: int
    data: DataRequirements
    failure_modes: dict[str, str]
    review_triggers: ReviewTriggers
    action_kinds: tuple[str, ...]
    cost: CostTarget
    llm: LlmBudget

    def problems(self) -> list[str]:
        """Everything that keeps this contract from loading; empty when it is complete."""
        out: list[str] = []
        if not self.slug or not self.name or not self.description or not self.version:
            out.append("slug, name, description and version are required")
        for label, schema in (("input_schema", self.input_schema), ("output_schema", self.output_schema)):
            if not isinstance(schema, dict) or schema.get("type") != "object":
                out.append(f"{label} must be a JSON schema of type object")
                continue
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                out.append(f"{label} is not a valid JSON schema: {exc.message}")
        if not self.modes or set(self.modes) - set(MODES):
            out.append(f"modes must be a non-empty subset of {MODES}")
        if self.default_mode not in self.modes:
            out.append("default_mode must be one of the modes")
        sla = self.sla
        if not 0 < sla.expected_seconds <= sla.p95_target_seconds <= sla.max_seconds:
            out.append("SLA needs 0 < expected ≤ P95 target ≤ maximum seconds")
        if sla.timeout_action not in TIMEOUT_ACTIONS:
            out.append(f"SLA timeout_action must be one of {TIMEOUT_ACTIONS}")
        if not 0 <= self.retry_budget <= 5:
            out.append("retry_budget must be 0 to 5")
        if self.data.min_records < 0 or self.data.on_insufficient not in ON_INSUFFICIENT:
            out.append(f"data requirements need min_records ≥ 0 and on_insufficient in {ON_INSUFFICIENT}")
        if any(not 0 <= share <= 1 for share in self.data.required_coverage.values()):
            out.append("required field coverage is a share between 0 and 1")
        missing = [mode for mode in FailureMode.ALL if mode not in self.failure_modes]
        if missing:
            out.append(f"failure modes without a fallback: {', '.join(missing)}")
        if not 0 < self.cost.target_usd <= self.cost.max_usd:
            out.append("cost needs 0 < target ≤ maximum USD per run")
        if self.llm.max_calls < 0 or self.llm.max_input_tokens < 0 or self.llm.max_output_tokens < 0:
            out.append("LLM budget figures cannot be negative")
        if "execute" in self.modes and not self.action_kinds:
            out.append("a skill that executes must name the action kinds it may propose")
        from approvals import registry

        unknown = [k for k in self.action_kinds if k not in {kind.name for kind in registry.all_kinds()}]
        if unknown:
            out.append(f"unknown action kinds: {', '.join(unknown)}")
        return out

    def worst_case_tokens(self) -> tuple[int, int]:
        """(input, output) tokens of the worst case: every call of every attempt at its maximum."""
        attempts = 1 + self.retry_budget
        calls = self.llm.max_calls * attempts
        return calls * self.llm.max_input_tokens, calls * self.llm.max_output_tokens

    def as_dict(self) -> dict[str, Any]:
        """The contract as the admin and the API show it."""
        data = asdict(self)
        data["modes"] = list(self.modes)
        data["action_kinds"] = list(self.action_kinds)
        return _plain(data)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
