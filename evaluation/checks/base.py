"""What a check returns, and the text helpers every check shares (so "word boundary" and "case
insensitive" mean the same thing in each of them)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from evaluation.dimensions import WEIGHTS, Severity

# The fields of an item a recipient reads. Everything else (to, key, ids, scores) is metadata.
CUSTOMER_TEXT_FIELDS = ("subject", "body", "text", "reply", "draft", "message")
# The fields of an internal item (a report, a score's reasons) whose text is still checked for
# unsupported numbers and claims.
INTERNAL_TEXT_FIELDS = ("summary", "text", "body", "recommendation", "reason", "reasons", "explanation")


@dataclass(frozen=True)
class Finding:
    """One problem a check found: where (item key, empty for the whole output), how bad, which
    dimension it lowers, what is wrong in words a person can act on, and how to fix it."""

    severity: str
    dimension: str
    message: str
    item: str = ""
    suggestion: str = ""
    check: str = ""  # which check found it (schema, pii, ai_washing…) or "judge"
    flag: str = ""  # the risk flag it raises on the request (pii, can_spam…), if any

    def __post_init__(self) -> None:
        if self.severity not in Severity.__members__.values():
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.dimension not in WEIGHTS:
            raise ValueError(f"unknown dimension {self.dimension!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def item_key(item: dict[str, Any], index: int) -> str:
    return str(item.get("key", index))


def texts_of(item: dict[str, Any], fields: Iterable[str] = CUSTOMER_TEXT_FIELDS) -> Iterator[tuple[str, str]]:
    """(field, text) of each text field the item has; lists of strings are joined by line."""
    for name in fields:
        value = item.get(name)
        if isinstance(value, str) and value.strip():
            yield name, value
        elif isinstance(value, list):
            joined = "\n".join(v for v in value if isinstance(v, str))
            if joined.strip():
                yield name, joined


@lru_cache(maxsize=4096)
def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """A case-insensitive, word-bounded match of ``phrase``: "AI" does not match "said", and a
    phrase's inner spaces and hyphens match any run of spaces or a hyphen ("AI-powered" matches
    "AI powered"). ``\\b`` only stands where the phrase starts or ends with a word character, so
    "$$$" or "!!!" still match."""
    parts = [re.escape(p) for p in re.split(r"[\s\-]+", phrase.strip()) if p]
    body = r"[\s\-]+".join(parts)
    start = r"\b" if re.match(r"\w", phrase.strip()) else ""
    end = r"\b" if re.search(r"\w$", phrase.strip()) else ""
    return re.compile(start + body + end, re.IGNORECASE)


def find_phrase(phrase: str, text: str) -> str | None:
    """The text's own spelling of ``phrase`` where it occurs, or None."""
    if not phrase or not phrase.strip():
        return None
    match = phrase_pattern(phrase).search(text)
    return match.group(0) if match else None


def quote(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
