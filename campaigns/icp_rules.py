"""How a lead is scored against the tenant's ICP: the weights, the tier thresholds, the exclusions
and the reasons, written once in Python (``lead_score``: the icp-scoring skill) and once in SQL
(``score_select_sql``: the batched re-scoring in ``campaigns.scoring``). Both read the same
``IcpRules`` and the same constants below, and ``campaigns/tests/test_scoring.py`` compares their
answers lead by lead, so the two cannot drift apart unnoticed.

No database access here: the skill imports this module and must not reach a write path.

The rules, in words:

- An excluded lead (its email domain or company domain is, or is a subdomain of, a competitor's
  or an existing customer's domain on the ICP) scores 0, tier D, with the exclusion as its only
  reason: the approval gates refuse outreach to it anyway (``approvals.gates.exclusion_gate``).
- Otherwise each dimension the ICP specifies earns its weight when the lead matches it: company
  size within the ICP's range (always specified: the range has defaults), industry, title,
  seniority and geography (each only when the ICP lists values). The score is the earned share of
  the specified weights, 0 to 100 with two decimals (half up); a dimension the ICP leaves empty
  neither helps nor hurts.
- Values are compared by a *key*: ASCII letters lower-cased, every run of ASCII punctuation and
  white space turned into one space, ends trimmed ("E-Commerce" and "e commerce" are the same key;
  "É" and "é" are not, because PostgreSQL's ``lower`` follows the database's locale and Python's
  does not, and the two must agree byte for byte). Industry, seniority and country match when the
  keys are equal; a title matches when an ICP title's key appears in it as whole words ("VP Sales"
  matches "Regional VP Sales, EMEA"; "CTO" does not match "Director"). A value whose key is empty
  is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# The weight of each dimension, out of 100. Named constants in one place until the ICP form has
# its own weights (then ``IcpRules.weights`` comes from the row and nothing else changes).
WEIGHT_COMPANY_SIZE = 30
WEIGHT_INDUSTRY = 25
WEIGHT_TITLE = 20
WEIGHT_SENIORITY = 15
WEIGHT_GEOGRAPHY = 10
WEIGHTS: dict[str, int] = {
    "company_size": WEIGHT_COMPANY_SIZE,
    "industry": WEIGHT_INDUSTRY,
    "title": WEIGHT_TITLE,
    "seniority": WEIGHT_SENIORITY,
    "geography": WEIGHT_GEOGRAPHY,
}

# Lowest score of each tier (inclusive); below the last one a lead is tier D. The same bands as
# the synthetic generator's (campaigns.services) and seed 000 §8.1's MQL → SQL at 80.
TIER_A_MIN = 80
TIER_B_MIN = 60
TIER_C_MIN = 40
TIER_THRESHOLDS: tuple[tuple[str, int], ...] = (("A", TIER_A_MIN), ("B", TIER_B_MIN), ("C", TIER_C_MIN))
TIER_EXCLUDED = "D"
TIER_BELOW = "D"

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ASCII_LOWER = str.maketrans(_UPPER, _LOWER)
# ASCII control characters, punctuation and space (the same class in Python's re and PostgreSQL's
# regular expressions: code-point ranges, no locale). NUL cannot occur in PostgreSQL text.
_SEPARATORS = r"[\x01-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+"
_SEPARATORS_RE = re.compile(_SEPARATORS)


def value_key(value: Any) -> str:
    """The form two values are compared in (see the module's docstring)."""
    return _SEPARATORS_RE.sub(" ", str(value or "").translate(_ASCII_LOWER)).strip(" ")


def domain_key(value: Any) -> str:
    """A domain as the exclusions compare it: ASCII lower case, no surrounding spaces, no trailing
    dot, no leading ``www.`` (ICP domains are already canonical: ``IcpDefinition.clean``)."""
    return str(value or "").translate(_ASCII_LOWER).strip(" ").rstrip(".").removeprefix("www.")


def email_domain(email: Any) -> str:
    """What follows the last ``@`` (emails are stored canonical and lower-case)."""
    text = str(email or "")
    return text.rsplit("@", 1)[1] if "@" in text else ""


def _distinct(values: Any, key) -> tuple[tuple[str, str], ...]:
    """(key, original) pairs in ICP order, first spelling of a key kept, empty keys dropped."""
    seen: dict[str, str] = {}
    for raw in values or ():
        original = str(raw).strip(" ")
        k = key(original)
        if k and k not in seen:
            seen[k] = original
    return tuple(seen.items())


@dataclass(frozen=True)
class IcpRules:
    """The parts of an ICP the scoring reads, made canonical once."""

    size_min: int
    size_max: int
    industries: tuple[tuple[str, str], ...] = ()  # (key, as written on the ICP)
    titles: tuple[tuple[str, str], ...] = ()
    seniorities: tuple[tuple[str, str], ...] = ()
    geographies: tuple[tuple[str, str], ...] = ()
    competitor_domains: tuple[str, ...] = ()
    customer_domains: tuple[str, ...] = ()
    weights: tuple[tuple[str, int], ...] = tuple(WEIGHTS.items())

    @classmethod
    def of(cls, icp: Any) -> IcpRules:
        """From an ``IcpDefinition`` (or anything with its fields)."""
        size_min, size_max = int(icp.company_size_min), int(icp.company_size_max)

        def domains(values: Any) -> tuple[str, ...]:
            return tuple(dict.fromkeys(d for d in (domain_key(v) for v in values or ()) if d))

        return cls(
            size_min=min(size_min, size_max),
            size_max=max(size_min, size_max),
            industries=_distinct(icp.industries, value_key),
            titles=_distinct(icp.titles, value_key),
            seniorities=_distinct(icp.seniorities, value_key),
            geographies=_distinct(icp.geographies, value_key),
            competitor_domains=domains(icp.competitor_domains),
            customer_domains=domains(icp.customer_domains),
        )

    def weight(self, dimension: str) -> int:
        return dict(self.weights)[dimension]

    def specified(self) -> tuple[str, ...]:
        """The dimensions this ICP specifies, in the order reasons are given."""
        lists = {
            "industry": self.industries,
            "title": self.titles,
            "seniority": self.seniorities,
            "geography": self.geographies,
        }
        return ("company_size", *(name for name, values in lists.items() if values))

    def specified_weight(self) -> int:
        return sum(self.weight(name) for name in self.specified())


@dataclass(frozen=True)
class LeadScore:
    score: Decimal  # 0.00 to 100.00
    tier: str
    reasons: tuple[str, ...]
    excluded: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": float(self.score),
            "tier": self.tier,
            "reasons": list(self.reasons),
            "excluded": self.excluded,
        }


def tier_tag(tier: str) -> str:
    """The CRM tag of a tier (A → tier_1 … D → tier_4), as the field maps' tier transform writes."""
    return f"tier_{'ABCD'.index(tier) + 1}"


def tier_of(score_cents: int) -> str:
    for tier, minimum in TIER_THRESHOLDS:
        if score_cents >= minimum * 100:
            return tier
    return TIER_BELOW


def _score_cents(earned: int, specified: int) -> int:
    # 100 * earned / specified, in hundredths, rounded half up: integer arithmetic, as in SQL
    return (20000 * earned + specified) // (2 * specified)


def _is_under(domain: str, excluded: tuple[str, ...]) -> bool:
    return bool(domain) and any(domain == x or domain.endswith(f".{x}") for x in excluded)


def exclusion_reason(lead: Mapping[str, Any], rules: IcpRules) -> str | None:
    domains = (email_domain(lead.get("email")), domain_key(lead.get("company_domain")))
    for label, excluded in (
        ("a competitor's", rules.competitor_domains),
        ("an existing customer's", rules.customer_domains),
    ):
        for domain in domains:
            if _is_under(domain, excluded):
                return f"excluded: {domain} is {label} domain"
    return None


def lead_score(lead: Mapping[str, Any], rules: IcpRules) -> LeadScore:
    """Score one lead (a mapping of the Lead's fields) against ``rules``."""
    excluded = exclusion_reason(lead, rules)
    if excluded:
        return LeadScore(score=Decimal("0.00"), tier=TIER_EXCLUDED, reasons=(excluded,), excluded=True)
    earned = 0
    reasons: list[str] = []

    size = lead.get("company_size")
    if size is None:
        reasons.append("company size unknown")
    elif size < rules.size_min:
        reasons.append(f"company size {size} below {rules.size_min}")
    elif size > rules.size_max:
        reasons.append(f"company size {size} above {rules.size_max}")
    else:
        earned += rules.weight("company_size")
        reasons.append(f"company size {size} within {rules.size_min} to {rules.size_max}")

    for dimension, field, label, values in (
        ("industry", "industry", "industry", rules.industries),
        ("title", "title", "title", rules.titles),
        ("seniority", "seniority", "seniority", rules.seniorities),
        ("geography", "country", "country", rules.geographies),
    ):
        if not values:
            continue
        shown = str(lead.get(field) or "").strip(" ")
        key = value_key(shown)
        if not key:
            reasons.append(f"{label} unknown")
            continue
        if dimension == "title":
            padded = f" {key} "
            match = next((original for k, original in values if f" {k} " in padded), None)
            if match is not None:
                earned += rules.weight(dimension)
                reasons.append(f"{label} {shown} matches {match}")
                continue
        elif any(key == k for k, _ in values):
            earned += rules.weight(dimension)
            reasons.append(f"{label} {shown} matches")
            continue
        reasons.append(f"{label} {shown} not in ICP")

    cents = _score_cents(earned, rules.specified_weight())
    return LeadScore(score=Decimal(cents) / 100, tier=tier_of(cents), reasons=tuple(reasons))


# --- the same rules in SQL -----------------------------------------------------------------------
#
# The lead's keys are stored on its row: ``Lead.industry_key`` … ``Lead.company_domain_key`` are
# PostgreSQL generated columns whose expressions are the three functions below, computed once when
# the lead is written (the boundary), not on every re-scoring. Changing one of them needs a
# migration that alters the columns (``campaigns/tests/test_scoring.py`` keeps Python and SQL equal).


def value_key_sql(expression: str) -> str:
    """SQL for ``value_key`` of ``expression`` (a column or a Django ``Func`` placeholder)."""
    lowered = f"translate({expression}, '{_UPPER}', '{_LOWER}')"
    return f"btrim(regexp_replace({lowered}, '{_SEPARATORS}', ' ', 'g'), ' ')"


def domain_key_sql(expression: str) -> str:
    """SQL for ``domain_key`` of ``expression``."""
    lowered = f"translate({expression}, '{_UPPER}', '{_LOWER}')"
    return f"regexp_replace(rtrim(btrim({lowered}, ' '), '.'), '^www\\.', '')"


def email_domain_sql(expression: str) -> str:
    """SQL for ``email_domain`` of ``expression``."""
    return f"coalesce(substring({expression} from '@([^@]*)$'), '')"


def _label_count(domain: str) -> int:
    return domain.count(".") + 1


def _last_labels_regex(count: int) -> str:
    # the last ``count`` dot-separated labels of a domain (NULL when it has fewer): a domain is
    # "under" an excluded domain of ``count`` labels exactly when these equal it
    return "(?:^|\\.)([^.]*" + "(?:\\.[^.]*)" * (count - 1) + ")$"


def _excluded_sql(column: str, which: str, counts: tuple[int, ...]) -> str:
    """True when ``column`` is, or is under, one of the ``which`` domains: one comparison per
    label count the list holds, each a hashed ``= ANY`` (constant time in the list's length)."""
    if not counts:
        return "FALSE"
    tests = " OR ".join(
        f"substring({column} from %({which}_re_{n})s) = ANY(%({which}_{n})s::text[])" for n in counts
    )
    return f"({column} <> '' AND ({tests}))"


def _domain_groups(domains: tuple[str, ...]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for domain in domains:
        groups.setdefault(_label_count(domain), []).append(domain)
    return dict(sorted(groups.items()))


def score_select_sql(where: str, rules: IcpRules) -> str:
    """A SELECT of ``id, score, tier, reasons`` for the leads ``l`` that ``where`` picks, scored
    by ``rules`` (its values in ``score_params(rules)``) exactly as ``lead_score`` scores them.
    The statement's shape depends on the rules (one branch per ICP title, one comparison per
    label count of the excluded domains); every value is a placeholder."""
    dims = []
    for dimension, field, label in (
        ("industry", "industry", "industry"),
        ("title", "title", "title"),
        ("seniority", "seniority", "seniority"),
        ("geography", "country", "country"),
    ):
        if dimension == "title":
            # the first ICP title (in ICP order) whose key is in the lead's title as whole words
            branches = " ".join(
                f"WHEN strpos(' ' || l.title_key || ' ', %(title_key_{i})s) > 0 THEN %(title_name_{i})s"
                for i in range(len(rules.titles))
            )
            match = f"(CASE {branches} END)" if branches else "NULL::text"
        else:
            match = f"(CASE WHEN l.{field}_key = ANY(%({dimension}_keys)s::text[]) THEN '' END)"
        dims.append(
            f"""
      CROSS JOIN LATERAL (SELECT {match} AS m) AS m_{dimension}
      CROSS JOIN LATERAL (SELECT
        CASE WHEN cardinality(%({dimension}_keys)s::text[]) = 0 THEN NULL
             WHEN l.{field}_key = '' THEN '{label} unknown'
             WHEN m_{dimension}.m IS NOT NULL
               THEN '{label} ' || btrim(l.{field}, ' ') || ' matches'
                    || CASE WHEN m_{dimension}.m = '' THEN '' ELSE ' ' || m_{dimension}.m END
             ELSE '{label} ' || btrim(l.{field}, ' ') || ' not in ICP' END AS reason,
        CASE WHEN cardinality(%({dimension}_keys)s::text[]) > 0 AND l.{field}_key <> ''
               AND m_{dimension}.m IS NOT NULL THEN %(w_{dimension})s ELSE 0 END AS points
      ) AS d_{dimension}"""
        )
    tiers = " ".join(f"WHEN c.cents >= {minimum * 100} THEN '{tier}'" for tier, minimum in TIER_THRESHOLDS)
    competitor = tuple(_domain_groups(rules.competitor_domains))
    customer = tuple(_domain_groups(rules.customer_domains))
    # only our own fragments are formatted in; every value is a placeholder
    return f"""
    SELECT l.id,
      CASE WHEN x.reason IS NOT NULL THEN 0::numeric(5,2) ELSE (c.cents::numeric / 100)::numeric(5,2) END
        AS score,
      CASE WHEN x.reason IS NOT NULL THEN '{TIER_EXCLUDED}' {tiers} ELSE '{TIER_BELOW}' END AS tier,
      CASE WHEN x.reason IS NOT NULL THEN ARRAY[x.reason]
           ELSE array_remove(ARRAY[d_size.reason, d_industry.reason, d_title.reason,
                                   d_seniority.reason, d_geography.reason], NULL) END AS reasons
    FROM campaigns_lead AS l
      CROSS JOIN LATERAL (SELECT CASE
        WHEN {_excluded_sql("l.email_domain", "competitor", competitor)}
          THEN 'excluded: ' || l.email_domain || ' is a competitor''s domain'
        WHEN {_excluded_sql("l.company_domain_key", "competitor", competitor)}
          THEN 'excluded: ' || l.company_domain_key || ' is a competitor''s domain'
        WHEN {_excluded_sql("l.email_domain", "customer", customer)}
          THEN 'excluded: ' || l.email_domain || ' is an existing customer''s domain'
        WHEN {_excluded_sql("l.company_domain_key", "customer", customer)}
          THEN 'excluded: ' || l.company_domain_key || ' is an existing customer''s domain'
      END AS reason) AS x
      CROSS JOIN LATERAL (SELECT
        CASE WHEN l.company_size IS NULL THEN 'company size unknown'
             WHEN l.company_size < %(size_min)s
               THEN 'company size ' || l.company_size || ' below ' || %(size_min)s
             WHEN l.company_size > %(size_max)s
               THEN 'company size ' || l.company_size || ' above ' || %(size_max)s
             ELSE 'company size ' || l.company_size || ' within ' || %(size_min)s || ' to ' || %(size_max)s
        END AS reason,
        CASE WHEN l.company_size BETWEEN %(size_min)s AND %(size_max)s THEN %(w_company_size)s ELSE 0 END
          AS points
      ) AS d_size{"".join(dims)}
      CROSS JOIN LATERAL (SELECT (20000 * (d_size.points + d_industry.points + d_title.points
          + d_seniority.points + d_geography.points) + %(specified)s) / (2 * %(specified)s) AS cents) AS c
    WHERE {where}"""  # noqa: S608


def score_params(rules: IcpRules) -> dict[str, Any]:
    """The parameters ``score_select_sql(where, rules)`` reads."""
    params: dict[str, Any] = {
        "size_min": rules.size_min,
        "size_max": rules.size_max,
        "industry_keys": [k for k, _ in rules.industries],
        "title_keys": [k for k, _ in rules.titles],
        "seniority_keys": [k for k, _ in rules.seniorities],
        "geography_keys": [k for k, _ in rules.geographies],
        "specified": rules.specified_weight(),
        **{f"w_{name}": weight for name, weight in rules.weights},
    }
    for i, (key, original) in enumerate(rules.titles):
        params[f"title_key_{i}"] = f" {key} "
        params[f"title_name_{i}"] = original
    for which, domains in (("competitor", rules.competitor_domains), ("customer", rules.customer_domains)):
        for count, group in _domain_groups(domains).items():
            params[f"{which}_re_{count}"] = _last_labels_regex(count)
            params[f"{which}_{count}"] = group
    return params
