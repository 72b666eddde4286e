"""The tenant's messaging pack applied to customer-facing text: forbidden claims, the brand's
words and the words it avoids, the length rule.

Checks take ``VoiceRules`` (plain values), not the model, so they are pure and a replay can run
them against the pack version an evaluation recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from evaluation.checks.base import Finding, find_phrase, item_key, quote, texts_of
from evaluation.dimensions import Dimension, Severity


@dataclass(frozen=True)
class VoiceRules:
    """What the active messaging pack says about copy (empty when the tenant has none)."""

    version: int | None = None
    company_name: str = ""
    sender_name: str = ""
    postal_address: str = ""
    forbidden_claims: tuple[str, ...] = ()
    brand_words: tuple[str, ...] = ()
    avoid_words: tuple[str, ...] = ()
    max_words: int | None = None
    # the tenant's own approved copy (value proposition, templates, pain points): what it says
    # about itself is its claim, not a claim about the lead, and factuality lets it stand
    approved_text: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_pack(cls, pack: Any) -> VoiceRules:
        if pack is None:
            return cls()
        rules = pack.personalisation_rules or {}
        max_words = rules.get("max_words")
        return cls(
            version=pack.version,
            company_name=pack.company_name or "",
            sender_name=pack.sender_name or "",
            postal_address=pack.postal_address or "",
            forbidden_claims=tuple(c for c in pack.forbidden_claims or () if c.strip()),
            brand_words=tuple(w for w in pack.brand_words or () if w.strip()),
            avoid_words=tuple(w for w in pack.avoid_words or () if w.strip()),
            max_words=int(max_words) if isinstance(max_words, int | float) and max_words > 0 else None,
            approved_text=_approved_text(pack),
            extra={"fallback_first_name": str(rules.get("fallback_first_name") or "")},
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "company_name": self.company_name,
            "sender_name": self.sender_name,
            "postal_address": self.postal_address,
            "forbidden_claims": list(self.forbidden_claims),
            "brand_words": list(self.brand_words),
            "avoid_words": list(self.avoid_words),
            "max_words": self.max_words,
            "approved_text": self.approved_text,
        }


def _approved_text(pack: Any) -> str:
    parts: list[str] = [pack.value_proposition or ""]

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(pack.tier_templates or {})
    walk((pack.personalisation_rules or {}).get("pain_points") or {})
    return "\n".join(p for p in parts if p)


def forbidden_claim_findings(items: list[dict[str, Any]], rules: VoiceRules) -> list[Finding]:
    """A forbidden claim is one the tenant has told us never to make (a guarantee, a customer it
    may not name): high, so the output never passes with it, and refinement is told to drop it."""
    findings = []
    for index, item in enumerate(items):
        key = item_key(item, index)
        for name, text in texts_of(item):
            for claim in rules.forbidden_claims:
                found = find_phrase(claim, text)
                if found:
                    findings.append(
                        Finding(
                            Severity.HIGH,
                            Dimension.RISK_FLAGS,
                            f"The {name} makes a forbidden claim: “{found}” (messaging pack "
                            f"v{rules.version}).",
                            item=key,
                            suggestion=f"Remove “{found}” from the {name}: the messaging pack forbids it.",
                            check="forbidden_claims",
                            flag="forbidden_claim",
                        )
                    )
    return findings


def brand_voice_findings(items: list[dict[str, Any]], rules: VoiceRules) -> list[Finding]:
    findings = []
    for index, item in enumerate(items):
        key = item_key(item, index)
        texts = dict(texts_of(item))
        if not texts:
            continue
        for name, text in texts.items():
            for word in rules.avoid_words:
                found = find_phrase(word, text)
                if found:
                    findings.append(
                        Finding(
                            Severity.MEDIUM,
                            Dimension.BRAND_VOICE,
                            f"The {name} uses “{found}”, a word the brand avoids.",
                            item=key,
                            suggestion=f"Rephrase without “{found}”.",
                            check="brand_voice",
                        )
                    )
        whole = "\n".join(texts.values())
        if rules.brand_words and not any(find_phrase(w, whole) for w in rules.brand_words):
            findings.append(
                Finding(
                    Severity.LOW,
                    Dimension.BRAND_VOICE,
                    "The text uses none of the brand's words ("
                    + ", ".join(quote(w, 30) for w in rules.brand_words[:5])
                    + ").",
                    item=key,
                    suggestion="Work one of the brand's words in where it reads naturally.",
                    check="brand_voice",
                )
            )
        body = texts.get("body") or texts.get("text") or texts.get("reply") or texts.get("draft") or ""
        words = len(re.findall(r"\b\w[\w'\u2019-]*\b", _without_footer(body, rules)))
        if rules.max_words and words > rules.max_words:
            findings.append(
                Finding(
                    Severity.LOW if words <= rules.max_words * 1.25 else Severity.MEDIUM,
                    Dimension.BRAND_VOICE,
                    f"The body has {words} words; the messaging pack allows {rules.max_words}.",
                    item=key,
                    suggestion=f"Shorten the body to at most {rules.max_words} words.",
                    check="brand_voice",
                )
            )
    return findings


def _without_footer(body: str, rules: VoiceRules) -> str:
    """The body a reader reads: the postal-address footer is not the message."""
    if rules.postal_address:
        return body.replace(rules.postal_address, " ")
    return body
