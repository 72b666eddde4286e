"""The LLM judge: the rubric of ``dimensions`` asked of the tenant's model through
``skills.providers``, N times.

Why N times, and why the lowest: a model's judgement of the same text varies between samples. A
borderline output judged once may pass on a lucky sample; judged N times, its *worst* judgement
must still pass. We use the minimum of the N weighted scores as the lower bound rather than
mean - spread/2: with N ≤ 7 samples the minimum is the one bound that is always a score a judge
actually gave, it never sits below every sample (mean - spread/2 does when two low samples meet
one high one), and it is monotone — one more low sample can only lower it. The spread (max - min)
is stored beside it, so a noisy judge shows as noisy.

The judge may only lower a dimension below what the deterministic checks measured, never lift it
(``combine``): a program that found an invented "Series B" is not overruled by a model that liked
the email. The offline provider answers with the deterministic result itself (spread 0), so runs
without a model key — here, in CI, in the demo — are scored by the checks alone; being
deterministic, it is asked once.

Samples are drawn at ``JUDGE_TEMPERATURE`` > 0 on purpose: at 0 a model returns its single most
likely judgement N times, which hides exactly the instability the N runs are there to measure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from evaluation.checks.base import CUSTOMER_TEXT_FIELDS, INTERNAL_TEXT_FIELDS, Finding
from evaluation.checks.messaging import VoiceRules
from evaluation.dimensions import JUDGED_DIMENSIONS, SRAC_CRITERIA, SRAC_MAX, SRAC_MIN, Severity, rubric_text
from evaluation.scoring import DimensionScore

JUDGE_PURPOSE = "evaluation.judge"
JUDGE_MAX_TOKENS = 1200  # six short reasons, four integers and a few issues fit in well under this
JUDGE_TEMPERATURE = 0.7
# The judge sees at most this many items of one output: a 200-email run is judged on its first 40
# (the deterministic checks still read every item), keeping one call within a model's context.
MAX_JUDGED_ITEMS = 40
MAX_TEXT_CHARS = 4000  # per text field; longer fields are cut (and the prompt says so)
# Seed-level severity scale for the judge: it may not declare "critical" (which blocks a release
# outright); only a deterministic check can.
JUDGE_SEVERITIES = (Severity.LOW, Severity.MEDIUM, Severity.HIGH)


def response_schema() -> dict[str, Any]:
    """The JSON the judge must answer with, built from the dimensions and SRAC criteria."""
    return {
        "type": "object",
        "required": ["dimensions", "srac"],
        "additionalProperties": False,
        "properties": {
            "dimensions": {
                "type": "object",
                "required": list(JUDGED_DIMENSIONS),
                "additionalProperties": False,
                "properties": {
                    name: {
                        "type": "object",
                        "required": ["score", "reason"],
                        "additionalProperties": False,
                        "properties": {
                            "score": {"type": "number", "minimum": 0, "maximum": 1},
                            "reason": {"type": "string", "maxLength": 500},
                        },
                    }
                    for name in JUDGED_DIMENSIONS
                },
            },
            "srac": {
                "type": "object",
                "required": list(SRAC_CRITERIA),
                "additionalProperties": False,
                "properties": {
                    name: {"type": "integer", "minimum": SRAC_MIN, "maximum": SRAC_MAX}
                    for name in SRAC_CRITERIA
                },
            },
            "issues": {
                "type": "array",
                "maxItems": 20,
                "items": {
                    "type": "object",
                    "required": ["severity", "dimension", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "severity": {"enum": [str(s) for s in JUDGE_SEVERITIES]},
                        "dimension": {"enum": list(JUDGED_DIMENSIONS)},
                        "message": {"type": "string", "maxLength": 500},
                        "item": {"type": "string", "maxLength": 200},
                        "suggestion": {"type": "string", "maxLength": 500},
                    },
                },
            },
            "suggestions": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 500}},
        },
    }


def judge_prompt(subject: Any, rules: VoiceRules) -> str:
    """What the judge reads: the items' texts, each item's facts and the tenant's rules, as
    canonical JSON (sorted keys), so the same inputs always give the same prompt and hash."""
    fields = (
        CUSTOMER_TEXT_FIELDS if subject.is_customer_facing else CUSTOMER_TEXT_FIELDS + INTERNAL_TEXT_FIELDS
    )
    items = []
    for index, item in enumerate(subject.items[:MAX_JUDGED_ITEMS]):
        key = str(item.get("key", index))
        shown: dict[str, Any] = {"key": key}
        for name in dict.fromkeys(fields):
            value = item.get(name)
            if isinstance(value, str):
                shown[name] = value[:MAX_TEXT_CHARS]
            elif isinstance(value, list):
                shown[name] = [v[:MAX_TEXT_CHARS] if isinstance(v, str) else v for v in value][:50]
        for extra in ("score", "tier"):
            if extra in item:
                shown[extra] = item[extra]
        shown["facts"] = (subject.facts or {}).get(key, (subject.facts or {}).get("*"))
        items.append(shown)
    document = {
        "task": "Judge this output against the rubric.",
        "kind": subject.kind,
        "customer_facing": subject.is_customer_facing,
        "items_expected": subject.expected_count,
        "items_produced": len(subject.items),
        "items_shown": len(items),
        "items": items,
        "messaging_pack": {
            "version": rules.version,
            "company_name": rules.company_name,
            "value_proposition_and_templates": rules.approved_text[:MAX_TEXT_CHARS],
            "forbidden_claims": list(rules.forbidden_claims),
            "brand_words": list(rules.brand_words),
            "avoid_words": list(rules.avoid_words),
            "max_words": rules.max_words,
            "postal_address": rules.postal_address,
        },
    }
    return json.dumps(document, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class JudgeRun:
    """One judgement: a score and reason per judged dimension, SRAC, the issues it listed."""

    scores: dict[str, float]
    reasons: dict[str, str]
    srac: dict[str, int]
    issues: tuple[Finding, ...] = ()
    suggestions: tuple[str, ...] = ()


@dataclass
class JudgeResult:
    provider: str = ""
    model: str = ""
    prompt: str = ""
    prompt_hash: str = ""
    requested: int = 0
    runs: list[JudgeRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0


def offline_answer(deterministic: dict[str, DimensionScore], srac: dict[str, int]) -> dict[str, Any]:
    """The judgement the checks themselves make: what the offline provider returns."""
    return {
        "dimensions": {
            name: {"score": deterministic[name].score, "reason": deterministic[name].reasons[0][:500]}
            for name in JUDGED_DIMENSIONS
        },
        "srac": dict(srac),
        "issues": [],
        "suggestions": [],
    }


def judge(
    *,
    subject: Any,
    rules: VoiceRules,
    deterministic: dict[str, DimensionScore],
    srac: dict[str, int],
    runs: int,
    provider: Any,
    model: str = "",
) -> JudgeResult:
    """Ask the judge ``runs`` times (once if the provider is deterministic). A failed call or an
    answer that does not fit the schema is recorded in ``errors`` and the others still count."""
    from skills.errors import ProviderError
    from skills.providers import LlmRequest, OfflineProvider

    schema = response_schema()
    answer = offline_answer(deterministic, srac)
    request = LlmRequest(
        purpose=JUDGE_PURPOSE,
        system=rubric_text(),
        prompt=judge_prompt(subject, rules),
        max_tokens=JUDGE_MAX_TOKENS,
        model=model,
        temperature=JUDGE_TEMPERATURE,
        response_schema=schema,
        offline_answer=lambda: answer,
    )
    result = JudgeResult(
        provider=getattr(provider, "name", type(provider).__name__),
        model=model or getattr(provider, "default_model", ""),
        prompt=request.prompt,
        prompt_hash=request.prompt_hash(),
        requested=1 if isinstance(provider, OfflineProvider) else runs,
    )
    for attempt in range(1, result.requested + 1):
        try:
            response = provider.complete(request)
            value = response.json(schema)
        except ProviderError as exc:
            result.errors.append(f"judge run {attempt}: {exc.message or exc}")
            continue
        result.model = response.model or result.model
        result.input_tokens += response.input_tokens + response.cached_input_tokens
        result.output_tokens += response.output_tokens
        result.runs.append(_parse(value))
    return result


def _parse(value: dict[str, Any]) -> JudgeRun:
    dims = value["dimensions"]
    issues = tuple(
        Finding(
            issue["severity"],
            issue["dimension"],
            f"Judge: {issue['message']}",
            item=str(issue.get("item") or ""),
            suggestion=str(issue.get("suggestion") or ""),
            check="judge",
        )
        for issue in value.get("issues") or []
    )
    return JudgeRun(
        scores={name: float(dims[name]["score"]) for name in JUDGED_DIMENSIONS},
        reasons={name: str(dims[name]["reason"]) for name in JUDGED_DIMENSIONS},
        srac={name: int(value["srac"][name]) for name in SRAC_CRITERIA},
        issues=issues,
        suggestions=tuple(str(s) for s in value.get("suggestions") or []),
    )
