"""AI-washing: claims that overstate what AI does (the FTC's "Operation AI Comply" cases, the
SEC's 2024 AI-washing actions). Seed 000 §1.3: highest severity *high* blocks the release; any
warning at all sends it to a person.

Severities, by what a reader could be misled into:
* high — a capability nobody can truthfully claim (full autonomy, no mistakes, replacing people,
  guaranteed outcomes from AI): a false claim, so blocked.
* medium — superlatives about the AI that need proof we do not have ("revolutionary AI",
  "proprietary AI", "self-learning").
* low — a label that is true of us but says nothing and invites the question "how?" ("AI-powered").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from evaluation.checks.base import Finding, find_phrase, item_key, texts_of
from evaluation.dimensions import AI_WASHING_ORDER, AiWashing, Dimension, Severity

AI_WASHING_PHRASES: Mapping[str, str] = MappingProxyType(
    {
        # high
        "fully autonomous AI": AiWashing.HIGH,
        "100% autonomous": AiWashing.HIGH,
        "100% AI": AiWashing.HIGH,
        "AI that never makes mistakes": AiWashing.HIGH,
        "never makes mistakes": AiWashing.HIGH,
        "zero human involvement": AiWashing.HIGH,
        "no humans needed": AiWashing.HIGH,
        "replaces your entire team": AiWashing.HIGH,
        "replace your entire team": AiWashing.HIGH,
        "replace your sales team": AiWashing.HIGH,
        "guaranteed results with AI": AiWashing.HIGH,
        "AI guarantees": AiWashing.HIGH,
        "human-level AI": AiWashing.HIGH,
        "sentient AI": AiWashing.HIGH,
        "AGI": AiWashing.HIGH,
        # medium
        "revolutionary AI": AiWashing.MEDIUM,
        "cutting-edge AI": AiWashing.MEDIUM,
        "state-of-the-art AI": AiWashing.MEDIUM,
        "proprietary AI": AiWashing.MEDIUM,
        "advanced AI": AiWashing.MEDIUM,
        "self-learning": AiWashing.MEDIUM,
        "thinks like a human": AiWashing.MEDIUM,
        "AI-first": AiWashing.MEDIUM,
        "next-generation AI": AiWashing.MEDIUM,
        # low
        "AI-powered": AiWashing.LOW,
        "AI-driven": AiWashing.LOW,
        "powered by AI": AiWashing.LOW,
        "driven by AI": AiWashing.LOW,
        "intelligent automation": AiWashing.LOW,
        "smart AI": AiWashing.LOW,
        "machine learning": AiWashing.LOW,
    }
)
_AS_FINDING = {AiWashing.LOW: Severity.LOW, AiWashing.MEDIUM: Severity.MEDIUM, AiWashing.HIGH: Severity.HIGH}


@dataclass(frozen=True)
class AiWashingResult:
    """Seed 000 §1.3's shape: the highest severity and the number of warnings, with each hit."""

    highest_severity: str = AiWashing.NONE
    warning_count: int = 0
    hits: tuple[dict[str, str], ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "highest_severity": str(self.highest_severity),
            "warning_count": self.warning_count,
            "hits": [dict(h) for h in self.hits],
        }


def ai_washing_check(items: list[dict[str, Any]]) -> tuple[list[Finding], AiWashingResult]:
    findings: list[Finding] = []
    hits: list[dict[str, str]] = []
    highest = AiWashing.NONE
    for index, item in enumerate(items):
        key = item_key(item, index)
        for name, text in texts_of(item):
            seen_spans: set[str] = set()
            # longest phrases first: "AI that never makes mistakes" is one hit, not two
            for phrase, severity in sorted(AI_WASHING_PHRASES.items(), key=lambda p: -len(p[0])):
                found = find_phrase(phrase, text)
                if not found or any(found.lower() in s for s in seen_spans):
                    continue
                seen_spans.add(found.lower())
                hits.append({"phrase": found, "severity": str(severity), "item": key, "field": name})
                if AI_WASHING_ORDER[severity] > AI_WASHING_ORDER[highest]:
                    highest = severity
                findings.append(
                    Finding(
                        _AS_FINDING[severity],
                        Dimension.RISK_FLAGS,
                        f"AI-washing ({severity}): the {name} says “{found}”.",
                        item=key,
                        suggestion=f"Replace “{found}” with what the product concretely does.",
                        check="ai_washing",
                        flag="ai_washing",
                    )
                )
    return findings, AiWashingResult(highest_severity=highest, warning_count=len(hits), hits=tuple(hits))
