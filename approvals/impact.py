"""Impact level and risk flags of a proposed action, computed from its payload."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from approvals.registry import ActionKind

LEVELS = ("low", "medium", "high", "critical")

# Budgets above these (USD) raise the impact level.
HIGH_BUDGET_USD = Decimal("100")
CRITICAL_BUDGET_USD = Decimal("1000")
# Recipients reached by one action (a campaign pause stops mail to all of them).
HIGH_RECIPIENTS = 50
CRITICAL_RECIPIENTS = 1000

C_LEVEL = re.compile(r"\b(ceo|cfo|cto|coo|cmo|cro|ciso|chief|founder|co-founder|president|owner)\b", re.I)
PII_KEYS = {"phone", "mobilephone", "address", "street", "date_of_birth", "dob", "ssn", "birthdate"}
PHONE = re.compile(r"\+?\d[\d\s().-]{7,}\d")


@dataclass(frozen=True)
class Impact:
    level: str
    flags: list[str]


def _raise(level: str, to: str) -> str:
    return max(level, to, key=LEVELS.index)


def _walk_keys(value: Any):
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key).lower(), item
            yield from _walk_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_keys(item)


def assess(kind: ActionKind, payload: dict[str, Any], *, first_of_kind: bool) -> Impact:
    """Impact level (low … critical) and the flags that explain it."""
    level = kind.risk_class
    flags: list[str] = []

    budget = Decimal(str(payload.get("budget_usd") or 0))
    if budget >= CRITICAL_BUDGET_USD:
        level, flags = _raise(level, "critical"), [*flags, "budget_critical"]
    elif budget >= HIGH_BUDGET_USD:
        level, flags = _raise(level, "high"), [*flags, "budget_high"]

    recipients = int(payload.get("recipient_count") or (1 if kind.contacts_person else 0))
    if recipients >= CRITICAL_RECIPIENTS:
        level, flags = _raise(level, "critical"), [*flags, "many_recipients"]
    elif recipients >= HIGH_RECIPIENTS:
        level, flags = _raise(level, "high"), [*flags, "many_recipients"]

    title = " ".join(
        str(v) for k, v in _walk_keys(payload) if k in {"to_title", "title", "jobtitle", "job_title"}
    )
    if C_LEVEL.search(title):
        level, flags = _raise(level, "high"), [*flags, "c_level_target"]

    if first_of_kind:
        level, flags = _raise(level, "medium"), [*flags, "first_run_for_tenant"]

    pii = {k for k, v in _walk_keys(payload) if k in PII_KEYS and v}
    body = str(payload.get("body", ""))
    if pii or PHONE.search(body):
        flags.append("pii_present")
        level = _raise(level, "medium")

    if "c_level_target" in flags and "first_run_for_tenant" in flags:
        level = "critical"
    return Impact(level=level, flags=flags)
