"""Spam phrasing: words and habits that mail filters score against us and readers distrust.
Low severity each: one alone rarely matters, several together pull risk_flags below the bar."""

from __future__ import annotations

import re
from typing import Any

from evaluation.checks.base import Finding, find_phrase, item_key, texts_of
from evaluation.dimensions import Dimension, Severity

SPAM_PHRASES: tuple[str, ...] = (
    "act now",
    "limited time",
    "100% free",
    "risk-free",  # find_phrase matches "risk free" too
    "no obligation",
    "click here",
    "buy now",
    "order now",
    "winner",
    "you have been selected",
    "cash bonus",
    "double your",
    "earn money",
    "make money fast",
    "urgent",
    "once in a lifetime",
    "special promotion",
    "this is not spam",
    "$$$",
    "100% guaranteed",
    "best price",
)
_SHOUT = re.compile(r"\b[A-Z]{4,}\b")
_BANGS = re.compile(r"!{2,}")
# acronyms that are not shouting
_ALLOWED_CAPS = {
    "SaaS",
    "CRM",
    "B2B",
    "B2C",
    "HTTP",
    "GDPR",
    "CCPA",
    "HIPAA",
    "SOC2",
    "ROI",
    "API",
    "USD",
    "EUR",
}


def spam_findings(items: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for index, item in enumerate(items):
        key = item_key(item, index)
        for name, text in texts_of(item):
            seen: set[str] = set()
            for phrase in SPAM_PHRASES:
                found = find_phrase(phrase, text)
                if found and found.lower() not in seen:  # one word, one finding
                    seen.add(found.lower())
                    findings.append(
                        Finding(
                            Severity.LOW,
                            Dimension.RISK_FLAGS,
                            f"The {name} uses spam phrasing: “{found}”.",
                            item=key,
                            suggestion=f"Drop “{found}”; say it plainly.",
                            check="spam",
                            flag="spam_words",
                        )
                    )
            if _BANGS.search(text):
                findings.append(
                    Finding(
                        Severity.LOW,
                        Dimension.RISK_FLAGS,
                        f"The {name} uses repeated exclamation marks.",
                        item=key,
                        suggestion="Use at most one exclamation mark.",
                        check="spam",
                        flag="spam_words",
                    )
                )
            shouted = [w for w in _SHOUT.findall(text) if w.upper() not in {a.upper() for a in _ALLOWED_CAPS}]
            if len(shouted) >= 2 or (name == "subject" and shouted):
                findings.append(
                    Finding(
                        Severity.LOW,
                        Dimension.RISK_FLAGS,
                        f"The {name} shouts in capitals ({', '.join(shouted[:3])}).",
                        item=key,
                        suggestion="Write in sentence case.",
                        check="spam",
                        flag="spam_words",
                    )
                )
    return findings
