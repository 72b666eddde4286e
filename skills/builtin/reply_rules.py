"""How a prospect's reply is classified: deterministic rules, in one place, read by the
reply-handler skill and by the Instantly webhook (which suppresses an unsubscribe at once, before
any run starts).

Categories, in the order they are tested (the first that matches wins, so "not interested,
please remove me" is an unsubscribe, and "I'm out until Monday, then interested" is out of office):

1. ``unsubscribe``: the person asks to stop (remove me, unsubscribe, stop emailing, opt out…).
2. ``out_of_office``: an auto-reply or a note that the person is away, with the return date
   when the text names one.
3. ``wrong_person``: not the right contact, or no longer at the company; a referral address in the
   text is returned (never contacted automatically: a new person has no legal basis yet).
4. ``not_now``: the timing is wrong (next quarter, in a few months, after the budget cycle…),
   with the date to follow up.
5. ``objection``: a reason against, with its type (price, competitor, no_need, authority, trust).
6. ``interested``: asks for a call, a demo, more information or pricing.
7. ``unclear``: none of these: a person reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from mh1.addresses import AddressInvalid, email_normalize


class Category:
    UNSUBSCRIBE = "unsubscribe"
    OUT_OF_OFFICE = "out_of_office"
    WRONG_PERSON = "wrong_person"
    NOT_NOW = "not_now"
    OBJECTION = "objection"
    INTERESTED = "interested"
    UNCLEAR = "unclear"

    ALL = (UNSUBSCRIBE, OUT_OF_OFFICE, WRONG_PERSON, NOT_NOW, OBJECTION, INTERESTED, UNCLEAR)


OBJECTION_TYPES = ("price", "competitor", "no_need", "authority", "trust")
# A "not now" without a date is followed up after this many days (a quarter).
NOT_NOW_DEFAULT_DAYS = 90
# An out-of-office without a return date is followed up after this many days.
OUT_OF_OFFICE_DEFAULT_DAYS = 7


def _any(*phrases: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(phrases) + r")\b", re.IGNORECASE)


UNSUBSCRIBE = _any(
    r"unsubscribe",
    r"opt(?:ed)?[- ]?out",
    r"remove (?:me|us|my (?:email|address))",
    r"take me off",
    r"stop (?:emailing|contacting|sending|writing)",
    r"do not (?:contact|email)",
    r"don'?t (?:contact|email) (?:me|us)",
    r"no more emails",
    r"leave me alone",
)
OUT_OF_OFFICE = _any(
    r"out of (?:the )?office",
    r"ooo",
    r"on (?:annual |parental |maternity |paternity |sick )?leave",
    r"on vacation",
    r"on holiday",
    r"away from (?:the office|my desk|email)",
    r"limited access to (?:my )?email",
    r"auto(?:matic)?[- ]?reply",
)
WRONG_PERSON = _any(
    r"wrong person",
    r"not the (?:right|correct|best) (?:person|contact)",
    r"no longer (?:with|at|works? (?:at|for))",
    r"(?:has|have) left the company",
    r"left (?:the company|[A-Z][\w&]+ in)",
    r"not my (?:area|department|responsibility)",
    r"(?:reach out to|contact|speak (?:to|with)|talk to) my colleague",
)
NOT_NOW = _any(
    r"not (?:right )?now",
    r"not at (?:this|the moment)",
    r"bad time",
    r"maybe later",
    r"(?:next|following) (?:quarter|year|month)",
    r"in (?:a few|a couple of|\d+|two|three|six) (?:weeks|months)",
    r"(?:after|once) (?:the )?(?:budget|planning|holidays|new year|q[1-4])",
    r"circle back",
    r"reach out (?:again )?(?:in|next|later)",
    r"not a priority (?:right now|at the moment|this quarter)",
)
OBJECTIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "price",
        _any(r"too expensive", r"no budget", r"(?:can'?t|cannot) afford", r"price is too", r"costs? too"),
    ),
    (
        "competitor",
        _any(
            r"already (?:use|using|have|work with|working with)",
            r"happy with (?:our|the) current",
            r"we (?:use|have) (?:a |an )?(?:other|another|existing) (?:tool|vendor|provider|solution)",
            r"signed with",
        ),
    ),
    (
        "no_need",
        _any(
            r"(?:don'?t|do not) need",
            r"no need",
            r"not (?:relevant|a fit|interested)",
            r"not something we need",
            r"we'?re good",
        ),
    ),
    (
        "authority",
        _any(
            r"not my (?:decision|call)",
            r"(?:my )?(?:boss|manager|ceo|cfo) decides",
            r"need (?:to ask|approval)",
        ),
    ),
    (
        "trust",
        _any(r"never heard of", r"how did you get my", r"is this (?:spam|a scam)", r"sounds like spam"),
    ),
)
INTERESTED = _any(
    r"interested",
    r"(?:let'?s|happy to|would love to|keen to|glad to) (?:talk|chat|meet|connect|hop on)",
    r"book (?:a|some) (?:call|time|meeting|demo)",
    r"(?:set up|schedule) (?:a )?(?:call|meeting|demo)",
    r"send (?:me |us )?(?:more|some) (?:info|information|details)",
    r"tell me more",
    r"sounds (?:good|great|interesting)",
    r"what (?:does it|would it) cost",
    r"pricing",
    r"how does (?:it|this) work",
    r"(?:are you|you) free",
    r"calendar link",
)
# What is quoted below the reply ("On Mon, … wrote:", "> …", "-----Original Message-----") is ours.
_QUOTED = re.compile(
    r"^(?:>.*|On .{4,200}wrote:\s*|-{2,}\s*Original Message\s*-{2,}.*|From: .*)$",
    re.IGNORECASE | re.MULTILINE,
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_MONTHS = {
    name: n
    for n, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_RETURN = r"(?:back|return(?:ing)?|in the office|available|reachable)(?: (?:on|from|by|after))?|until|till"
_ISO_DATE = re.compile(rf"(?:{_RETURN})\s+(\d{{4}})-(\d{{2}})-(\d{{2}})", re.IGNORECASE)
_MONTH_DAY = re.compile(
    rf"(?:{_RETURN})\s+(?:\w+day,?\s+)?(?:the\s+)?({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?",
    re.IGNORECASE,
)
_DAY_MONTH = re.compile(
    rf"(?:{_RETURN})\s+(?:\w+day,?\s+)?(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+({_MONTH})\.?(?:,?\s+(\d{{4}}))?",
    re.IGNORECASE,
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY = re.compile(rf"(?:{_RETURN})\s+(?:on\s+|next\s+)?({'|'.join(_WEEKDAYS)})\b", re.IGNORECASE)
_IN_MONTHS = re.compile(r"\bin (a few|a couple of|\d+|two|three|six) (weeks|months)\b", re.IGNORECASE)
_WORDS = {"a few": 3, "a couple of": 2, "two": 2, "three": 3, "six": 6}


@dataclass(frozen=True)
class ReplyClass:
    category: str
    objection_type: str = ""
    return_date: date | None = None
    follow_up_on: date | None = None
    referral_email: str = ""
    reasons: tuple[str, ...] = field(default_factory=tuple)


def reply_text_clean(text: str) -> str:
    """The reply without the quoted thread below it (our own email would match our own words)."""
    match = _QUOTED.search(text or "")
    return (text[: match.start()] if match else text or "").strip()


def _future(day: date, received: date) -> date:
    """A date without a year is the next one on or after the day the reply came."""
    return day if day >= received else day.replace(year=day.year + 1)


def return_date_parse(text: str, received: date) -> date | None:
    """The day the person says they are back, when the text names one."""
    try:
        if m := _ISO_DATE.search(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _MONTH_DAY.search(text):
            day = date(int(m[3] or received.year), _MONTHS[m[1].lower()], int(m[2]))
            return day if m[3] else _future(day, received)
        if m := _DAY_MONTH.search(text):
            day = date(int(m[3] or received.year), _MONTHS[m[2].lower()], int(m[1]))
            return day if m[3] else _future(day, received)
    except ValueError:  # "back on February 30": no such day
        return None
    if m := _WEEKDAY.search(text):
        ahead = (_WEEKDAYS.index(m[1].lower()) - received.weekday()) % 7 or 7
        return received + timedelta(days=ahead)
    return None


def _not_now_follow_up(text: str, received: date) -> date:
    if m := _IN_MONTHS.search(text):
        count = _WORDS.get(m[1].lower()) or int(m[1])
        return received + timedelta(days=count * (7 if m[2].lower() == "weeks" else 30))
    if re.search(r"next year", text, re.IGNORECASE):
        return date(received.year + 1, 1, 15)
    return received + timedelta(days=NOT_NOW_DEFAULT_DAYS)


def _referral(text: str, sender: str) -> str:
    for raw in _EMAIL.findall(text):
        try:
            address = email_normalize(raw)
        except AddressInvalid:
            continue
        if address != sender:
            return address
    return ""


def reply_classify(
    text: str, *, subject: str = "", received: datetime | date, sender: str = "", auto_reply: bool = False
) -> ReplyClass:
    """Classify one reply (``sender`` canonical; ``auto_reply`` when the vendor flagged it so)."""
    received_day = received.date() if isinstance(received, datetime) else received
    body = reply_text_clean(text)
    whole = f"{subject}\n{body}"
    if m := UNSUBSCRIBE.search(whole):
        return ReplyClass(Category.UNSUBSCRIBE, reasons=(f"asks to stop: “{m[0]}”",))
    ooo = OUT_OF_OFFICE.search(whole)
    if ooo or auto_reply:
        back = return_date_parse(whole, received_day)
        reasons = [f"away: “{ooo[0]}”" if ooo else "the vendor flagged it an auto-reply"]
        reasons.append(f"back on {back.isoformat()}" if back else "no return date given")
        follow = (back or received_day + timedelta(days=OUT_OF_OFFICE_DEFAULT_DAYS)) + timedelta(days=1)
        return ReplyClass(
            Category.OUT_OF_OFFICE, return_date=back, follow_up_on=follow, reasons=tuple(reasons)
        )
    if m := WRONG_PERSON.search(whole):
        referral = _referral(body, sender)
        reasons = [f"not the contact: “{m[0]}”"]
        if referral:
            reasons.append(f"refers to {referral}")
        return ReplyClass(Category.WRONG_PERSON, referral_email=referral, reasons=tuple(reasons))
    if m := NOT_NOW.search(whole):
        follow = _not_now_follow_up(whole, received_day)
        return ReplyClass(
            Category.NOT_NOW,
            follow_up_on=follow,
            reasons=(f"timing: “{m[0]}”", f"follow up on {follow.isoformat()}"),
        )
    for kind, pattern in OBJECTIONS:
        if m := pattern.search(whole):
            return ReplyClass(Category.OBJECTION, objection_type=kind, reasons=(f"{kind}: “{m[0]}”",))
    if m := INTERESTED.search(whole):
        return ReplyClass(Category.INTERESTED, reasons=(f"interest: “{m[0]}”",))
    return ReplyClass(Category.UNCLEAR, reasons=("no rule matched: a person reads it",))
