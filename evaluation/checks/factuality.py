"""Module-specific factuality (seed 000 §1.4): a claim about a lead must come from a field of that
lead, and a number must match the data.

An ``EvaluationSubject`` gives, per item key, the ``facts`` the item may cite (the lead's fields,
a report's computed figures). Each module type is checked the way its claims are made:

* **emails / reply** (customer-facing prose): the greeting's name, a title ("as VP of Sales"), a
  company ("your team at Globex", "Globex's pipeline"), an industry, an event (funding round,
  acquisition, hiring, launch) and every number with a unit (employees, %, $, x) must be in the
  item's facts — or in the tenant's own approved copy (the messaging pack's value proposition and
  templates), which is the sender's claim about itself, not about the lead. A template placeholder
  left in the text is an invented value too.
* **scores**: each reason that cites a field (``{"field": …, "value": …}``) must name a field the
  lead has, with the value it has; numbers in free-text reasons must be in the facts.
* **report**: every figure in the report's text must be one of the figures it was computed from.

Findings on customer-facing text are high (the output never passes with an invented claim); on
internal text medium.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from evaluation.checks.base import INTERNAL_TEXT_FIELDS, Finding, item_key, quote, texts_of
from evaluation.checks.messaging import VoiceRules
from evaluation.dimensions import Dimension, Severity

FIRST_NAME_FIELDS = ("first_name", "firstname", "given_name")
FULL_NAME_FIELDS = ("name", "full_name", "contact_name")
COMPANY_FIELDS = ("company", "company_name", "organization", "organisation", "account", "account_name")
TITLE_FIELDS = ("title", "job_title", "role", "position")
INDUSTRY_FIELDS = ("industry", "company_industry", "vertical", "sector")
GENERIC_GREETINGS = {"there", "team", "all", "everyone", "folks", "friend", "sir", "madam"}

# events a prospecting email likes to "congratulate" on; each needs a fact field of its kind
EVENTS: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    (
        "funding round",
        re.compile(
            r"\bseries\s+[a-f]\b|\bseed\s+round\b|\bfunding\s+round\b|\braised\s+\$?\d|\bfundrais\w*|\bIPO\b"
            r"|\bwent\s+public\b|\bnew\s+funding\b",
            re.IGNORECASE,
        ),
        ("funding", "round", "raised", "investment"),
    ),
    (
        "acquisition",
        re.compile(r"\bacquired\b|\bacquisition\b|\bmerger\b|\bmerged\s+with\b", re.IGNORECASE),
        ("acquisition", "acquired", "merger"),
    ),
    (
        "hiring or role change",
        re.compile(
            r"\b(are|is|you're)\s+hiring\b|\bnew\s+role\b|\brecently\s+(joined|promoted|started)\b"
            r"|\bcongrat\w*\s+on\s+(the\s+|your\s+)?(new\s+)?(role|promotion|position)\b",
            re.IGNORECASE,
        ),
        ("hiring", "job", "started", "promotion", "role_change", "tenure"),
    ),
    (
        "launch or expansion",
        re.compile(
            r"\b(just\s+|recently\s+)?launched\b|\bnew\s+product\b|\bexpan(ded|ding|sion)\s+(in)?to\b"
            r"|\bnew\s+office\b",
            re.IGNORECASE,
        ),
        ("launch", "product", "expansion", "office"),
    ),
)
EVENT_FACT_KEYS = ("news", "event", "events", "trigger", "triggers", "signal", "signals", "recent")

INDUSTRIES: tuple[tuple[str, ...], ...] = (
    ("saas", "software", "b2b software", "software as a service"),
    ("fintech", "financial technology", "payments"),
    ("banking", "bank", "financial services"),
    ("insurance", "insurtech"),
    ("healthcare", "health care", "healthtech", "medical", "hospital"),
    ("biotech", "biotechnology", "life sciences", "pharma", "pharmaceutical"),
    ("e-commerce", "ecommerce", "online retail", "dtc", "direct-to-consumer"),
    ("retail",),
    ("manufacturing", "industrial"),
    ("logistics", "supply chain", "transportation", "shipping", "freight"),
    ("real estate", "proptech", "property"),
    ("edtech", "education", "higher education", "schools"),
    ("cybersecurity", "security", "infosec"),
    ("automotive", "mobility"),
    ("telecom", "telecommunications"),
    ("media", "publishing", "entertainment"),
    ("hospitality", "travel", "hotels"),
    ("legal", "legaltech", "law firm"),
    ("construction",),
    ("energy", "utilities", "oil and gas", "renewables", "cleantech"),
    ("nonprofit", "non-profit", "charity"),
    ("government", "public sector"),
    ("consulting", "professional services", "agency", "agencies", "marketing agency"),
    ("gaming", "games"),
    ("hr tech", "hrtech", "human resources", "recruiting", "staffing"),
    ("martech", "marketing technology", "adtech", "advertising"),
)
_INDUSTRY_INDEX = {term: group[0] for group in INDUSTRIES for term in group}
_INDUSTRY_RE = re.compile(
    r"\b(" + "|".join(re.escape(t) for t in sorted(_INDUSTRY_INDEX, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)

TITLE_SYNONYMS = {
    "ceo": ("ceo", "chief executive"),
    "cto": ("cto", "chief technology", "chief technical"),
    "cfo": ("cfo", "chief financial"),
    "coo": ("coo", "chief operating"),
    "cmo": ("cmo", "chief marketing"),
    "cro": ("cro", "chief revenue"),
    "cio": ("cio", "chief information officer"),
    "ciso": ("ciso", "chief information security"),
    "vp": ("vp", "vice president", "svp", "evp"),
    "head": ("head of", "head"),
    "director": ("director",),
    "founder": ("founder", "co-founder", "cofounder"),
    "president": ("president",),
    "manager": ("manager",),
    "owner": ("owner",),
    "partner": ("partner",),
}
_TITLE_CLAIM = re.compile(
    r"\b(?:as|you're|you are|being)\s+(?:the|a|an|our)?\s*(?P<title>"
    r"(?:chief\s+\w+(?:\s+\w+)?\s+officer|c[etfomr]o|cio|ciso|s?e?vp|vice\s+president|head\s+of|director|"
    r"co-?founder|founder|president|manager|owner|partner)\b[\w ,&/-]{0,40}?)"
    r"(?=\s+at\b|\s+of\s+[A-Z]|[.,;:!?\n]|$)",
    re.IGNORECASE,
)
_CAP = r"[A-Z][\w&.+-]*(?:\s+(?:&\s+)?[A-Z][\w&.+-]*){0,3}"
_COMPANY_CLAIMS = (
    re.compile(
        r"\b(?:team|role|work|folks|colleagues|everyone|people|you|growth|things)\s+(?:at|over at)\s+(?P<c>"
        + _CAP
        + ")"
    ),
    re.compile(
        r"(?P<c>"
        + _CAP
        + r")['\u2019]s\s+(?:team|growth|pipeline|sales|customers|product|platform|marketing|"
        r"revenue|expansion|website|mission|roadmap|outbound|funnel)\b"
    ),
)
_PLACEHOLDER = re.compile(
    r"\{\{?\s*[A-Za-z_][\w.]*\s*\}\}?|\[\s*(?:first[\s_]?name|last[\s_]?name|name|company|company[\s_]?name|"
    r"title|industry|pain[\s_]?point|sender[\s_]?name)\s*\]|<\s*(?:first_name|company|name)\s*>",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening))\s+(?P<name>[A-Z][\w'\u2019-]+)",
    re.IGNORECASE,
)
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_UNIT_CLAIMS = (
    ("percentage", re.compile(r"(?P<n>" + _NUMBER + r")\s?(?:%|percent\b|per\s+cent\b)", re.IGNORECASE)),
    (
        "amount",
        re.compile(
            r"(?:\$|USD\s?|€|EUR\s?|£)\s?(?P<n>"
            + _NUMBER
            + r")\s?(?P<s>k|mm|m|bn|b|thousand|million|billion)?\b",
            re.IGNORECASE,
        ),
    ),
    (
        "count",
        re.compile(
            r"(?P<n>" + _NUMBER + r")\s?(?P<s>k|m)?\+?\s+(?:employees|people|staff|reps|engineers|developers|"
            r"customers|clients|users|members|locations|offices|stores|sellers|agents|seats|accounts|leads)\b"
            r"|\bteam\s+of\s+(?P<n2>" + _NUMBER + r")\b",
            re.IGNORECASE,
        ),
    ),
    ("multiple", re.compile(r"\b(?P<n>" + _NUMBER + r")\s?[x\u00d7]\b(?!\w)", re.IGNORECASE)),
)
_ANY_NUMBER = re.compile(r"(?<![\w.])(?P<n>" + _NUMBER + r")(?P<p>%)?(?![\w])")
_RANGE = re.compile(r"(?P<a>" + _NUMBER + r")\s?(?:-|\u2013|to)\s?(?P<b>" + _NUMBER + r")")
_SUFFIXED = re.compile(
    r"(?P<n>" + _NUMBER + r")\s?(?P<s>k|mm|m|bn|b|thousand|million|billion)\b", re.IGNORECASE
)


def _num(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass
class FactIndex:
    """What one item's facts support: their text, their numbers and ranges, by field."""

    facts: dict[str, Any]
    text: str = ""
    numbers: list[float] = field(default_factory=list)
    ranges: list[tuple[float, float]] = field(default_factory=list)

    @classmethod
    def of(cls, facts: dict[str, Any] | None, approved_text: str = "") -> FactIndex:
        facts = dict(facts or {})
        index = cls(facts=facts)
        parts = []
        for value in _flatten(facts.values()):
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, int | float):
                if math.isfinite(value):
                    index.numbers.append(float(value))
                parts.append(str(value))
                continue
            parts.append(str(value))
        index.text = "\n".join(parts)
        index._numbers_from(index.text + "\n" + approved_text)
        return index

    def _numbers_from(self, text: str) -> None:
        for match in _RANGE.finditer(text):
            low, high = sorted((_num(match.group("a")), _num(match.group("b"))))
            self.ranges.append((low, high))
        for match in _SUFFIXED.finditer(text):
            self.numbers.append(_num(match.group("n")) * _SCALE[match.group("s").lower()])
        for match in _ANY_NUMBER.finditer(text):
            self.numbers.append(_num(match.group("n")))

    def supports_number(self, value: float, *, rounded: bool = False) -> bool:
        tolerance = 0.05 if rounded else 0.005
        for known in self.numbers:
            if known == value or (known and abs(known - value) / abs(known) <= tolerance):
                return True
        return any(low <= value <= high for low, high in self.ranges)

    def field(self, names: tuple[str, ...]) -> str:
        for name in names:
            value = self.facts.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    def has_any(self, words: Iterable[str]) -> bool:
        for key, value in self.facts.items():
            if any(w in key.lower() for w in words) and value not in (None, "", [], {}, False):
                return True
        return False

    def mentions(self, phrase: str) -> bool:
        return phrase.strip().lower() in self.text.lower()


def _flatten(values: Iterable[Any]) -> Iterable[Any]:
    for value in values:
        if isinstance(value, dict):
            yield from _flatten(value.values())
        elif isinstance(value, list | tuple):
            yield from _flatten(value)
        else:
            yield value


def factuality_findings(
    kind: str,
    items: list[dict[str, Any]],
    facts: dict[str, dict[str, Any]],
    rules: VoiceRules,
    *,
    customer_facing: bool,
) -> list[Finding]:
    """Dispatch by module type; see the module docstring for what each checks."""
    approved_text = rules.approved_text
    findings: list[Finding] = []
    for index, item in enumerate(items):
        key = item_key(item, index)
        item_facts = facts.get(key)
        if item_facts is None:
            item_facts = facts.get("*")
        if kind == "scores":
            findings += _score_findings(key, item, item_facts)
        elif kind == "report":
            findings += _report_findings(key, item, item_facts)
        else:
            findings += _prose_findings(
                key, item, item_facts, rules, approved_text=approved_text, customer_facing=customer_facing
            )
    return findings


def _f(severity: str, message: str, key: str, suggestion: str) -> Finding:
    return Finding(
        severity, Dimension.FACTUALITY, message, item=key, suggestion=suggestion, check="factuality", flag=""
    )


def _prose_findings(
    key: str,
    item: dict[str, Any],
    item_facts: dict[str, Any] | None,
    rules: VoiceRules,
    *,
    approved_text: str,
    customer_facing: bool,
) -> list[Finding]:
    out: list[Finding] = []
    texts = dict(texts_of(item))
    if not texts:
        return out
    known = FactIndex.of(item_facts, approved_text)
    has_facts = item_facts is not None
    strong = Severity.HIGH if customer_facing else Severity.MEDIUM
    # without any data for the item nothing it claims can be verified: still an issue, a lesser one
    unsupported = strong if has_facts else Severity.MEDIUM
    whose = "the lead's data" if has_facts else "no lead data was given, so it"
    approved = approved_text.lower()
    own_names = {n.lower() for n in (rules.company_name, rules.sender_name) if n}

    for name, text in texts.items():
        for match in _PLACEHOLDER.finditer(text):
            out.append(
                _f(
                    strong,
                    f"The {name} still has the template placeholder “{match.group(0)}”.",
                    key,
                    f"Fill “{match.group(0)}” from the lead's fields, or rephrase without it.",
                )
            )

        # numbers with a unit: employees, %, $, x
        for what, pattern in _UNIT_CLAIMS:
            for match in pattern.finditer(text):
                raw = match.group("n") or (match.groupdict().get("n2") or "")
                if not raw:
                    continue
                value = _num(raw)
                suffix = (match.groupdict().get("s") or "").lower()
                if suffix:
                    value *= _SCALE[suffix]
                if known.supports_number(value, rounded=bool(suffix)):
                    continue
                said = match.group(0).strip()
                out.append(
                    _f(
                        unsupported,
                        f"The {name} says “{said}” but {whose} has no {what} of {raw}{suffix}."
                        if has_facts
                        else f"The {name} says “{said}” but {whose} cannot be checked.",
                        key,
                        f"Remove “{said}” or use the figure from the lead's data.",
                    )
                )

        # events: funding, acquisition, hiring, launch
        for label, pattern, fact_words in EVENTS:
            for match in pattern.finditer(text):
                said = match.group(0).strip()
                if known.mentions(said) or said.lower() in approved:
                    continue
                # "Series B" names a fact of its own; "raised" is supported by any funding field
                specific = label == "funding round" and re.match(r"series", said, re.IGNORECASE)
                if not specific and known.has_any(fact_words + EVENT_FACT_KEYS):
                    continue
                out.append(
                    _f(
                        unsupported,
                        f"The {name} says “{said}” but {whose} has no {label}."
                        if has_facts
                        else f"The {name} says “{said}” but {whose} cannot be checked.",
                        key,
                        f"Remove the mention of “{said}”: nothing in the lead's data says so.",
                    )
                )
                break  # one finding per event kind and field is enough to act on

        # the greeting's name
        greeting = _GREETING.match(text) if name in ("body", "text", "reply", "draft", "message") else None
        if greeting:
            said = greeting.group("name").strip("\u2019'")
            first = known.field(FIRST_NAME_FIELDS) or known.field(FULL_NAME_FIELDS).split(" ")[0]
            fallback = str((rules.extra or {}).get("fallback_first_name") or "")
            if said.lower() not in GENERIC_GREETINGS and said.lower() != fallback.lower():
                if not first:
                    out.append(
                        _f(
                            unsupported,
                            f"The {name} greets “{said}” but {whose} has no first name.",
                            key,
                            "Greet without a name, or with the lead's first name.",
                        )
                    )
                elif said.lower() != first.lower():
                    out.append(
                        _f(
                            strong,
                            f"The {name} greets “{said}” but the lead's first name is “{first}”.",
                            key,
                            f"Greet the lead as {first}.",
                        )
                    )

        # a title claimed for the reader
        fact_title = known.field(TITLE_FIELDS).lower()
        for match in _TITLE_CLAIM.finditer(text):
            said = match.group("title").strip(" ,")
            family = _title_family(said)
            if family is None:
                continue
            if not fact_title:
                out.append(
                    _f(
                        unsupported,
                        f"The {name} calls the reader “{said}” but {whose} has no title.",
                        key,
                        "Drop the title, or use the lead's title field.",
                    )
                )
            elif not any(s in fact_title for s in TITLE_SYNONYMS[family]):
                out.append(
                    _f(
                        strong,
                        f"The {name} calls the reader “{said}” but the lead's title is "
                        f"“{known.field(TITLE_FIELDS)}”.",
                        key,
                        f"Use the lead's title: {known.field(TITLE_FIELDS)}.",
                    )
                )

        # a company named as the reader's
        fact_company = known.field(COMPANY_FIELDS).lower()
        for pattern in _COMPANY_CLAIMS:
            for match in pattern.finditer(text):
                said = match.group("c").strip(" .")
                low = said.lower()
                if low in own_names or (low and low in approved):
                    continue
                if fact_company and (low in fact_company or fact_company in low):
                    continue
                out.append(
                    _f(
                        strong if fact_company else unsupported,
                        f"The {name} names “{said}” as the reader's company but the lead's company is "
                        f"“{known.field(COMPANY_FIELDS)}”."
                        if fact_company
                        else f"The {name} names “{said}” as the reader's company but {whose} has no company.",
                        key,
                        "Use the lead's company name from its data.",
                    )
                )

        # industries
        fact_industry = known.field(INDUSTRY_FIELDS).lower()
        fact_groups = {_INDUSTRY_INDEX[m.group(1).lower()] for m in _INDUSTRY_RE.finditer(fact_industry)}
        for match in _INDUSTRY_RE.finditer(text):
            said = match.group(1)
            group = _INDUSTRY_INDEX[said.lower()]
            if said.lower() in approved or group in fact_groups:
                continue
            if fact_industry and said.lower() in fact_industry:
                continue
            out.append(
                _f(
                    unsupported if not fact_industry else strong,
                    f"The {name} says “{said}” but the lead's industry is “{known.field(INDUSTRY_FIELDS)}”."
                    if fact_industry
                    else f"The {name} says “{said}” but {whose} has no industry.",
                    key,
                    "Name the lead's own industry, or none.",
                )
            )
    return _dedupe(out)


def _title_family(title: str) -> str | None:
    low = title.lower()
    for family, words in TITLE_SYNONYMS.items():
        if family in ("head", "manager", "owner", "partner", "president", "director", "founder"):
            continue
        if any(re.search(rf"\b{re.escape(w)}\b", low) for w in words):
            return family
    for family in ("founder", "president", "director", "head", "manager", "owner", "partner"):
        if any(re.search(rf"\b{re.escape(w)}\b", low) for w in TITLE_SYNONYMS[family]):
            return family
    return None


def _score_findings(key: str, item: dict[str, Any], item_facts: dict[str, Any] | None) -> list[Finding]:
    out: list[Finding] = []
    reasons = item.get("reasons") or item.get("citations") or []
    if not isinstance(reasons, list):
        reasons = [reasons]
    known = FactIndex.of(item_facts)
    for reason in reasons:
        if isinstance(reason, dict) and reason.get("field"):
            name = str(reason["field"])
            if item_facts is None or name not in item_facts:
                out.append(
                    _f(
                        Severity.HIGH,
                        f"A reason cites the lead's “{name}”, which its data does not have.",
                        key,
                        f"Cite only fields the lead has; drop the reason on “{name}”.",
                    )
                )
                continue
            if "value" in reason and not _same(reason["value"], item_facts[name]):
                out.append(
                    _f(
                        Severity.HIGH,
                        f"A reason says {name} is “{quote(str(reason['value']), 40)}” but the lead's "
                        f"{name} is “{quote(str(item_facts[name]), 40)}”.",
                        key,
                        f"Use the lead's {name} as it is.",
                    )
                )
            text = str(reason.get("reason") or reason.get("text") or "")
        else:
            text = str(reason)
        for match in _ANY_NUMBER.finditer(text):
            value = _num(match.group("n"))
            if not known.supports_number(value):
                out.append(
                    _f(
                        Severity.MEDIUM,
                        f"A reason says “{quote(text, 60)}” but {match.group(0)} is not in the lead's data.",
                        key,
                        "Quote figures from the lead's data only.",
                    )
                )
    return _dedupe(out)


def _report_findings(key: str, item: dict[str, Any], item_facts: dict[str, Any] | None) -> list[Finding]:
    if item_facts is None:
        return []  # a report without its figures given cannot be checked; completeness says so
    out: list[Finding] = []
    known = FactIndex.of(item_facts)
    for name, text in texts_of(item, INTERNAL_TEXT_FIELDS):
        for match in _ANY_NUMBER.finditer(text):
            value = _num(match.group("n"))
            if known.supports_number(value) or (match.group("p") and known.supports_number(value / 100)):
                continue
            out.append(
                _f(
                    Severity.MEDIUM,
                    f"The report's {name} says {match.group(0)}, which is not one of the figures it was "
                    "computed from.",
                    key,
                    f"Use the computed figure instead of {match.group(0)}.",
                )
            )
    return _dedupe(out)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-6)
    return str(a).strip().lower() == str(b).strip().lower()


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for finding in findings:
        marker = (finding.item, finding.message)
        if marker not in seen:
            seen.add(marker)
            out.append(finding)
    return out
