"""The deterministic checks, run in one place. Each returns ``Finding`` values; ``run_checks``
runs the ones that apply to the subject and returns them with the side results the release
policy reads (AI-washing, PII).

Which checks apply, and why:
* always: schema validity, required values filled, item count, context efficiency, factuality
  (every module type makes claims about its data);
* customer-facing text only: forbidden claims, brand voice, AI-washing, spam words, PII — an
  internal report may quote a lead's phone number or say "AI-powered" to RevOps without harm;
* emails only: CAN-SPAM.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evaluation.checks.ai_washing import AiWashingResult, ai_washing_check
from evaluation.checks.base import Finding
from evaluation.checks.canspam import canspam_findings
from evaluation.checks.completeness import count_findings, efficiency_findings
from evaluation.checks.factuality import factuality_findings
from evaluation.checks.messaging import VoiceRules, brand_voice_findings, forbidden_claim_findings
from evaluation.checks.pii import PiiHit, pii_findings
from evaluation.checks.schema import empty_required_findings, schema_findings
from evaluation.checks.spam import spam_findings

__all__ = ["CheckReport", "Finding", "VoiceRules", "run_checks"]

EMAIL_KINDS = ("emails",)


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    ai_washing: AiWashingResult = field(default_factory=AiWashingResult)
    pii: list[PiiHit] = field(default_factory=list)


def run_checks(
    *,
    subject: Any,
    output: Any,
    output_schema: dict[str, Any],
    rules: VoiceRules,
    tokens_used: int,
    token_budget: int,
) -> CheckReport:
    report = CheckReport()
    findings = report.findings
    findings += schema_findings(output, output_schema)
    findings += empty_required_findings(output, output_schema)
    findings += count_findings(len(subject.items), subject.expected_count)
    findings += efficiency_findings(tokens_used, token_budget)
    findings += factuality_findings(
        subject.kind,
        subject.items,
        subject.facts or {},
        rules,
        customer_facing=subject.is_customer_facing,
    )
    if subject.is_customer_facing:
        findings += forbidden_claim_findings(subject.items, rules)
        findings += brand_voice_findings(subject.items, rules)
        washing, report.ai_washing = ai_washing_check(subject.items)
        findings += washing
        findings += spam_findings(subject.items)
        pii, report.pii = pii_findings(subject.items)
        findings += pii
        if subject.kind in EMAIL_KINDS:
            findings += canspam_findings(subject.items, rules)
    return report
