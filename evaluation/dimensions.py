"""The evaluation's scale, written once: the six dimensions and their weights, the pass bar, the
SRAC rubric and the severities.

Seed 000 §1.1 and §1.2 found three copies of the dimensions (code, prompt, schema) with different
counts and weights; each drifted from the others. Here the judge's prompt, its response schema,
the deterministic checks, the weighted score, the admin and the release policy all read this
module, and ``evaluation/tests/test_dimensions.py`` fails when any other file restates a weight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Dimension(StrEnum):
    SCHEMA_VALIDITY = "schema_validity"
    FACTUALITY = "factuality"
    COMPLETENESS = "completeness"
    BRAND_VOICE = "brand_voice"
    RISK_FLAGS = "risk_flags"
    CONTEXT_EFFICIENCY = "context_efficiency"


# The weights of seed 000 §1.2 ("use evaluator.py as source of truth"). They sum to 1, so the
# weighted score stays on the dimensions' own 0 to 1 scale.
WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        Dimension.SCHEMA_VALIDITY: 0.18,
        Dimension.FACTUALITY: 0.23,
        Dimension.COMPLETENESS: 0.18,
        Dimension.BRAND_VOICE: 0.13,
        Dimension.RISK_FLAGS: 0.18,
        Dimension.CONTEXT_EFFICIENCY: 0.10,
    }
)

LABELS: Mapping[str, str] = MappingProxyType(
    {
        Dimension.SCHEMA_VALIDITY: "Schema validity",
        Dimension.FACTUALITY: "Factuality",
        Dimension.COMPLETENESS: "Completeness",
        Dimension.BRAND_VOICE: "Brand voice",
        Dimension.RISK_FLAGS: "Risk flags",
        Dimension.CONTEXT_EFFICIENCY: "Context efficiency",
    }
)

# What the LLM judge scores. Schema validity and context efficiency are facts a program measures
# exactly (a validator, a token count): a model's opinion of them adds noise, never information.
JUDGED_DIMENSIONS: tuple[str, ...] = (
    Dimension.FACTUALITY,
    Dimension.COMPLETENESS,
    Dimension.BRAND_VOICE,
    Dimension.RISK_FLAGS,
)

SCORE_MIN = 0.0
SCORE_MAX = 1.0
# The weighted score (its lower bound, see services) must reach this to pass (seed 000 §1.3).
PASS_THRESHOLD = 0.8
# Below this the release policy sends the output to a person whatever else holds (seed 000 §1.3).
REVIEW_THRESHOLD = 0.7


class Severity(StrEnum):
    """How bad one finding is. ``critical`` blocks the release outright; ``high`` means the output
    does not pass whatever its score (a reader must never see it as it is)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_ORDER: Mapping[str, int] = MappingProxyType(
    {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}
)
# What one finding takes off its dimension's score (1 minus the sum, floored at 0). A critical finding
# empties the dimension; a handful of low ones leave it passable.
PENALTY: Mapping[str, float] = MappingProxyType(
    {Severity.LOW: 0.1, Severity.MEDIUM: 0.25, Severity.HIGH: 0.5, Severity.CRITICAL: 1.0}
)
# Findings at or above this severity keep an output from passing, whatever its weighted score.
FAIL_SEVERITY = Severity.HIGH


class AiWashing(StrEnum):
    """Severities of the AI-washing check (seed 000 §1.3: none/low/medium/high, 0 warnings)."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


AI_WASHING_ORDER: Mapping[str, int] = MappingProxyType(
    {AiWashing.NONE: 0, AiWashing.LOW: 1, AiWashing.MEDIUM: 2, AiWashing.HIGH: 3}
)


# SRAC: the seed names the scale (1 to 5, pass ≥ 3.5) but not the letters. We read it as the four
# questions a reader of outreach asks, each scored 1 to 5; the SRAC score is their mean.
SRAC_CRITERIA: Mapping[str, str] = MappingProxyType(
    {
        "specific": "Specific: written for this recipient, citing their own data, not a template.",
        "relevant": "Relevant: every claim is about this recipient and supported by their data.",
        "actionable": "Actionable: one clear next step (a question, a reply, a call).",
        "clear": "Clear: short, plain sentences in the brand's voice, nothing to decode.",
    }
)
SRAC_MIN = 1
SRAC_MAX = 5
SRAC_PASS = 3.5

# The rubric the judge is given and every evaluation records (version and hash), so a score can be
# replayed against the exact text it was produced with. Change the text → change the version.
RUBRIC_VERSION = "2025.1"


def rubric_text() -> str:
    """The judge's rubric, generated from the constants above (never a second copy of them)."""
    lines = [
        f"MH1 evaluation rubric v{RUBRIC_VERSION}.",
        "Score each dimension from 0 (unusable) to 1 (flawless), with a one-sentence reason that",
        "quotes the text you judged. Be strict: a claim the recipient's data does not support is",
        "a factuality error, however plausible it sounds.",
        "Dimensions (weight):",
    ]
    descriptions = {
        Dimension.FACTUALITY: "every name, title, industry, number and event in the text is in the "
        "item's facts; nothing is invented",
        Dimension.COMPLETENESS: "every item asked for is there, with every required part filled",
        Dimension.BRAND_VOICE: "uses the brand's words, avoids the words it avoids, stays within "
        "the length rules, sounds like a person",
        Dimension.RISK_FLAGS: "no forbidden claim, no personal data, no spam phrasing, no "
        "overstated AI claims, nothing legally risky",
    }
    for name in JUDGED_DIMENSIONS:
        lines.append(f"- {name} ({WEIGHTS[name]:.2f}): {descriptions[name]}")
    lines.append(f"SRAC: score each criterion as an integer {SRAC_MIN}-{SRAC_MAX}:")
    lines.extend(f"- {text}" for text in SRAC_CRITERIA.values())
    lines.append(
        "List each problem as an issue (severity low/medium/high, dimension, message, item key, "
        "suggestion). Answer with JSON only, fitting the schema you are given."
    )
    return "\n".join(lines)


def rubric_hash() -> str:
    return hashlib.sha256(rubric_text().encode()).hexdigest()


def weighted(scores: Mapping[str, float]) -> float:
    """The weighted score of one set of dimension scores (every dimension must be present)."""
    missing = set(WEIGHTS) - set(scores)
    if missing:
        raise ValueError(f"scores missing for {', '.join(sorted(missing))}")
    return round(sum(WEIGHTS[name] * clamp(scores[name]) for name in WEIGHTS), 6)


def clamp(score: float) -> float:
    return min(SCORE_MAX, max(SCORE_MIN, float(score)))
