"""Completeness (items produced against the items asked for) and context efficiency (tokens
used against the contract's worst case)."""

from __future__ import annotations

from evaluation.checks.base import Finding
from evaluation.dimensions import Dimension, Severity


def coverage(produced: int, expected: int | None) -> float:
    """The share of the items asked for that were produced (1 when nothing was asked)."""
    if not expected:
        return 1.0
    return min(produced, expected) / expected


def count_findings(produced: int, expected: int | None) -> list[Finding]:
    if expected is None:
        return []
    if produced < expected:
        share = coverage(produced, expected)
        # the coverage itself sets the dimension's score (see scoring); the severity says how
        # much of the work is missing, so a half-done run never passes
        severity = Severity.LOW if share >= 0.95 else Severity.MEDIUM if share >= 0.8 else Severity.HIGH
        return [
            Finding(
                severity,
                Dimension.COMPLETENESS,
                f"{produced} of {expected} items were produced ({share:.0%}).",
                suggestion=f"Produce the missing {expected - produced} item(s).",
                check="completeness",
            )
        ]
    if produced > expected:
        return [
            Finding(
                Severity.LOW,
                Dimension.COMPLETENESS,
                f"{produced} items were produced where {expected} were asked for.",
                suggestion=f"Return exactly {expected} item(s), one per input.",
                check="completeness",
            )
        ]
    return []


# A run that needs more than this share of its worst case is close to being cut off mid-way.
EFFICIENT_SHARE = 0.5


def efficiency_score(tokens_used: int, token_budget: int) -> tuple[float, str]:
    """1 up to half the budget, falling linearly to 0.5 at the whole budget, 0 above it.

    The budget is the contract's worst case (every call of every attempt at its maximum), so
    using half of it is normal and using all of it means the run retried or padded its prompts.
    """
    if token_budget <= 0:
        return 1.0, "No token budget was given (nothing to measure against)."
    share = tokens_used / token_budget
    if share <= EFFICIENT_SHARE:
        score = 1.0
    elif share <= 1:
        score = 1.0 - (share - EFFICIENT_SHARE)
    else:
        score = 0.0
    return round(score, 4), f"{tokens_used} of {token_budget} budgeted tokens ({share:.0%})."


def efficiency_findings(tokens_used: int, token_budget: int) -> list[Finding]:
    if token_budget <= 0:
        return []
    share = tokens_used / token_budget
    if share > 1:
        return [
            Finding(
                Severity.HIGH,
                Dimension.CONTEXT_EFFICIENCY,
                f"The run used {tokens_used} tokens, more than its budget of {token_budget}.",
                suggestion="Send less context per call (only the fields the step needs).",
                check="context_efficiency",
            )
        ]
    if share > 0.8:
        return [
            Finding(
                Severity.LOW,
                Dimension.CONTEXT_EFFICIENCY,
                f"The run used {share:.0%} of its token budget.",
                suggestion="Trim the prompts: only the fields the step needs.",
                check="context_efficiency",
            )
        ]
    return []
