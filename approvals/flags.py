"""Risk flags in the words an account executive reads: the stored flag slugs (impact assessment
and evaluation) as sentences, and the gates that would stop the action now beside them, so a
suppressed or excluded recipient never shows as "no risk flags"."""

from __future__ import annotations

from dataclasses import dataclass

from approvals.impact import CRITICAL_BUDGET_USD, HIGH_BUDGET_USD
from approvals.models import ActionRequest

# slug → plain words; ``{what}`` is the kind's noun ("email", "CRM write", …)
FLAG_WORDS: dict[str, str] = {
    "first_run_for_tenant": "first {what} this tenant sends",
    "c_level_target": "C-level recipient",
    "pii_present": "personal data in the content (phone, address or identifiers)",
    "pii": "personal data in the content (phone, address or identifiers)",
    "budget_high": f"budget impact of ${HIGH_BUDGET_USD:,} or more",
    "budget_critical": f"budget impact of ${CRITICAL_BUDGET_USD:,} or more",
    "many_recipients": "many recipients at once",
    "ai_washing": "AI-washing wording (claims the evaluator flags)",
    "can_spam": "CAN-SPAM element missing (postal address or unsubscribe)",
    "forbidden_claim": "a claim the messaging pack forbids",
    "spam_words": "words that spam filters penalise",
}

# what each kind's effect is called in a sentence
KIND_NOUNS: dict[str, str] = {
    "email.send": "email",
    "crm.upsert_contact": "CRM contact write",
    "crm.add_tag": "CRM tag",
    "enrichment.lookup": "enrichment",
    "campaign.pause": "campaign pause",
}


@dataclass(frozen=True)
class Flag:
    text: str
    blocking: bool = False  # a gate that would stop the action now


def flag_words(flag: str, kind: str) -> str:
    """One stored flag in words (an unknown slug is shown as itself, made readable)."""
    what = KIND_NOUNS.get(kind, "action of this kind")
    words = FLAG_WORDS.get(flag)
    return words.format(what=what) if words else flag.replace("_", " ")


def flags_of(request: ActionRequest, gates_now: list | None = None) -> list[Flag]:
    """The request's flags in words, the closed gates first (they stop it whatever is decided)."""
    flags = [Flag(text=gate.reason, blocking=True) for gate in gates_now or ()]
    flags += [Flag(text=flag_words(str(flag), request.kind)) for flag in request.risk_flags or ()]
    return flags
