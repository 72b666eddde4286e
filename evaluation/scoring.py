"""From findings to numbers: each dimension's deterministic score and reasons, and SRAC.

A dimension's score is the mean over items of (1 minus the penalties of that item's findings), less
the penalties of findings about the output as a whole, floored at 0. Averaging over items keeps
one weak email among twenty from sinking the run's score; it does not let that email through,
because a finding of ``FAIL_SEVERITY`` or worse fails the evaluation whatever the score (see
``services``), and a critical one blocks it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from evaluation.checks.base import Finding, item_key, texts_of
from evaluation.checks.completeness import coverage, efficiency_score
from evaluation.checks.factuality import COMPANY_FIELDS, FIRST_NAME_FIELDS, INDUSTRY_FIELDS, TITLE_FIELDS
from evaluation.dimensions import (
    LABELS,
    PENALTY,
    SRAC_CRITERIA,
    SRAC_MAX,
    SRAC_MIN,
    WEIGHTS,
    Dimension,
    clamp,
    weighted,
)

MAX_REASONS = 5
# findings whose dimension score is measured directly, not by penalties
_MEASURED = {"context_efficiency"}


@dataclass(frozen=True)
class DimensionScore:
    score: float
    reasons: tuple[str, ...]


def dimension_scores(
    findings: list[Finding], subject: Any, *, tokens_used: int, token_budget: int
) -> dict[str, DimensionScore]:
    keys = [item_key(item, i) for i, item in enumerate(subject.items)]
    known = set(keys)
    item_penalty: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    whole_penalty: dict[str, float] = defaultdict(float)
    by_dimension: dict[str, list[Finding]] = defaultdict(list)
    for finding in findings:
        by_dimension[finding.dimension].append(finding)
        if finding.check in _MEASURED or (finding.check == "completeness" and not finding.item):
            continue  # measured below (token share, coverage), not counted twice
        if finding.item in known:
            item_penalty[finding.dimension][finding.item] += PENALTY[finding.severity]
        else:
            whole_penalty[finding.dimension] += PENALTY[finding.severity]

    scores: dict[str, DimensionScore] = {}
    for name in WEIGHTS:
        items = [max(0.0, 1 - item_penalty[name][k]) for k in keys]
        base = sum(items) / len(items) if items else 1.0
        score = base - whole_penalty[name]
        reasons = [f.message for f in _worst_first(by_dimension[name])[:MAX_REASONS]]
        if name == Dimension.COMPLETENESS:
            share = coverage(len(keys), subject.expected_count)
            score *= share
        if name == Dimension.CONTEXT_EFFICIENCY:
            score, why = efficiency_score(tokens_used, token_budget)
            reasons = [why, *reasons]
        if len(by_dimension[name]) > MAX_REASONS:
            reasons.append(f"…and {len(by_dimension[name]) - MAX_REASONS} more.")
        if not reasons:
            reasons = [_clean(name, subject)]
        scores[name] = DimensionScore(score=round(clamp(score), 4), reasons=tuple(reasons))
    return scores


def _clean(name: str, subject: Any) -> str:
    if not subject.is_customer_facing and name == Dimension.BRAND_VOICE:
        return "Not customer-facing: the brand-voice checks do not apply."
    return f"{LABELS[name]}: no problem found by the checks."


def _worst_first(findings: list[Finding]) -> list[Finding]:
    from evaluation.dimensions import SEVERITY_ORDER

    return sorted(findings, key=lambda f: -SEVERITY_ORDER[f.severity])


# --- SRAC -----------------------------------------------------------------------------------------

_CTA = re.compile(
    r"\?|\b(reply|call|chat|meet|meeting|demo|book|schedule|calendar|worth a|open to|interested|"
    r"let me know|talk)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+")


def srac_deterministic(
    subject: Any, findings: list[Finding], scores: dict[str, DimensionScore]
) -> dict[str, int]:
    """SRAC from what the checks saw, each criterion an integer from 1 to 5.

    For customer-facing prose: specific = how many of the lead's own fields the text uses;
    relevant = the item's factuality; actionable = a question or a next step; clear = brand-voice
    findings and sentence length. For internal outputs (scores, reports) SRAC, an outreach rubric,
    mirrors the weighted score, so it never contradicts it.
    """
    if not subject.is_customer_facing or not subject.items:
        overall = weighted({name: s.score for name, s in scores.items()})
        value = _scale(overall)
        return dict.fromkeys(SRAC_CRITERIA, value)
    per_item: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(subject.items):
        key = item_key(item, index)
        text = "\n".join(t for _, t in texts_of(item))
        mine = [f for f in findings if f.item == key]
        facts = (subject.facts or {}).get(key) or {}
        cited = 0
        for names in (FIRST_NAME_FIELDS, COMPANY_FIELDS, TITLE_FIELDS, INDUSTRY_FIELDS):
            value = next((facts[n] for n in names if isinstance(facts.get(n), str) and len(facts[n]) > 1), "")
            if value and value.lower() in text.lower():
                cited += 1
        placeholder = any("placeholder" in f.message for f in mine)
        per_item["specific"].append(1 if placeholder else 5 if cited >= 2 else 4 if cited == 1 else 2)
        factual = 1 - sum(PENALTY[f.severity] for f in mine if f.dimension == Dimension.FACTUALITY)
        per_item["relevant"].append(_scale(factual))
        per_item["actionable"].append(5 if _CTA.search(text) else 2)
        voice = [f for f in mine if f.dimension == Dimension.BRAND_VOICE]
        body = str(item.get("body") or item.get("text") or item.get("reply") or item.get("draft") or "")
        sentences = [s for s in _SENTENCE.findall(body) if s.strip()]
        long_sentences = sum(1 for s in sentences if len(s.split()) > 25)
        per_item["clear"].append(max(SRAC_MIN, SRAC_MAX - len(voice) - long_sentences))
    # the weakest item sets each criterion: SRAC is a bar every email must clear
    return {name: min(values) for name, values in per_item.items()}


def _scale(score: float) -> int:
    return round(SRAC_MIN + (SRAC_MAX - SRAC_MIN) * clamp(score))


def srac_mean(criteria: dict[str, int | float]) -> float:
    return round(sum(float(criteria[name]) for name in SRAC_CRITERIA) / len(SRAC_CRITERIA), 3)
