"""Personal data in text a customer will read: phone numbers, payment card numbers, IBANs and US
social security numbers.

Card numbers and IBANs are matched only when their checksum holds (Luhn, ISO 7064 mod 97), so an
order number or a long figure is not mistaken for one; an SSN is matched by its dashed shape with
the ranges the SSA never issues left out. A card, IBAN or SSN in outreach has no legitimate use:
critical, the release is blocked. A phone number may be the sender's own: medium, and any PII
sends the output to a person (the contract's ``pii_present`` trigger).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evaluation.checks.base import Finding, item_key, texts_of
from evaluation.dimensions import Dimension, Severity

_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_FOUR_GROUPS = re.compile(r"\d{4}(?:[ -]\d{4}){2,}(?:[ -]\d{1,4})?")
_SSN = re.compile(r"(?<!\d)(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?!\d)")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?!\w)"
)


@dataclass(frozen=True)
class PiiHit:
    kind: str  # phone, card, iban, ssn
    item: str
    field: str
    masked: str


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    value = candidate.replace(" ", "").upper()
    if not 15 <= len(value) <= 34:
        return False
    rearranged = value[4:] + value[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def mask(value: str) -> str:
    """Never store the personal data we found: enough to find it in the text, not to use it."""
    compact = re.sub(r"\s", "", value)
    return f"{'•' * max(0, len(compact) - 4)}{compact[-4:]}"


def pii_hits(text: str) -> list[tuple[str, str]]:
    """(kind, matched text) of each piece of personal data in ``text``; a span matched as a card,
    IBAN or SSN is not counted again as a phone number, nor is a figure shaped like one whose
    checksum fails (an order or invoice number in 4-digit groups is neither a card nor a phone)."""
    hits: list[tuple[str, str]] = []
    taken: list[tuple[int, int]] = []
    for match in _IBAN.finditer(text):
        if iban_ok(match.group(0)):
            hits.append(("iban", match.group(0)))
        taken.append(match.span())
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if _overlaps(match.span(), taken) or not 13 <= len(digits) <= 19:
            continue
        if luhn_ok(digits):
            hits.append(("card", match.group(0)))
            taken.append(match.span())
        elif len(digits) >= 16 or _FOUR_GROUPS.fullmatch(match.group(0)):
            taken.append(match.span())  # a card-shaped figure, not a phone number
    for match in _SSN.finditer(text):
        if not _overlaps(match.span(), taken):
            hits.append(("ssn", match.group(0)))
            taken.append(match.span())
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if 7 <= len(digits) <= 15 and not _overlaps(match.span(), taken):
            hits.append(("phone", match.group(0)))
    return hits


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


_LABEL = {
    "phone": "a phone number",
    "card": "a payment card number",
    "iban": "an IBAN",
    "ssn": "a social security number",
}


def pii_findings(items: list[dict[str, Any]]) -> tuple[list[Finding], list[PiiHit]]:
    findings: list[Finding] = []
    hits: list[PiiHit] = []
    for index, item in enumerate(items):
        key = item_key(item, index)
        for name, text in texts_of(item):
            for kind, value in pii_hits(text):
                hits.append(PiiHit(kind=kind, item=key, field=name, masked=mask(value)))
                severity = Severity.MEDIUM if kind == "phone" else Severity.CRITICAL
                findings.append(
                    Finding(
                        severity,
                        Dimension.RISK_FLAGS,
                        f"The {name} contains {_LABEL[kind]} ({mask(value)}).",
                        item=key,
                        suggestion=f"Remove {_LABEL[kind]} from the {name}.",
                        check="pii",
                        flag="pii",
                    )
                )
    return findings, hits
