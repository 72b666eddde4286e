"""CAN-SPAM elements of an email the console will send (15 U.S.C. §7704).

What is checked here, and why the unsubscribe link is not:

* **Postal address.** The sender's valid physical postal address must be in every commercial
  email. Nothing adds it later, so the body must carry the messaging pack's ``postal_address``.
  Missing → high (risk_flags): the email never passes and refinement is told to add the footer.
* **Opt-out.** The email.send executor appends our one-click unsubscribe link at send time
  (``connectors.executors._message``: the body ends "Unsubscribe: <link>" and the message has
  RFC 8058 ``List-Unsubscribe`` / ``List-Unsubscribe-Post`` headers), so the link is never the
  skill's to write and cannot be dropped by an edit of the body. What the body can do wrong is
  carry its *own* unsubscribe link or instructions: a link we did not sign does not unsubscribe
  anyone (a fake opt-out is itself a violation) and confuses the reader with two. That is flagged
  (medium). ``evaluation/tests/test_checks.py`` builds a message through the executor and fails if
  the appended link or the headers ever disappear, so this reasoning stays true.
* **Deceptive subject.** A first touch whose subject starts with "Re:" or "Fwd:" pretends to be a
  reply: medium.
"""

from __future__ import annotations

import re
from typing import Any

from evaluation.checks.base import Finding, item_key
from evaluation.checks.messaging import VoiceRules
from evaluation.dimensions import Dimension, Severity

_OWN_UNSUBSCRIBE = re.compile(
    r"(https?://\S*(unsubscribe|opt[-_]?out|optout|/u/)\S*)"
    r"|(\b(click|tap)\s+here\s+to\s+(unsubscribe|opt[\s-]?out)\b)"
    r"|(\b(unsubscribe|opt[\s-]?out)\s*(here|at|:)\s*\S+)",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^\s*(re|fwd?|aw|wg)\s*:", re.IGNORECASE)


def _normalised(text: str) -> str:
    return re.sub(r"[\s,]+", " ", text).strip().lower()


def canspam_findings(items: list[dict[str, Any]], rules: VoiceRules) -> list[Finding]:
    findings = []
    address = _normalised(rules.postal_address)
    for index, item in enumerate(items):
        key = item_key(item, index)
        body = item.get("body") or ""
        subject = item.get("subject") or ""
        if not isinstance(body, str):
            continue
        if not address:
            findings.append(
                Finding(
                    Severity.HIGH,
                    Dimension.RISK_FLAGS,
                    "No postal address is set in the active messaging pack, so this email cannot "
                    "carry one (CAN-SPAM requires it).",
                    item=key,
                    suggestion="RevOps: set the postal address in the messaging pack, then re-run.",
                    check="can_spam",
                    flag="can_spam",
                )
            )
        elif address not in _normalised(body):
            findings.append(
                Finding(
                    Severity.HIGH,
                    Dimension.RISK_FLAGS,
                    "The email does not carry the sender's postal address (CAN-SPAM).",
                    item=key,
                    suggestion=f"End the body with the postal address: {rules.postal_address}",
                    check="can_spam",
                    flag="can_spam",
                )
            )
        match = _OWN_UNSUBSCRIBE.search(body)
        if match:
            findings.append(
                Finding(
                    Severity.MEDIUM,
                    Dimension.RISK_FLAGS,
                    f"The body carries its own unsubscribe link or instruction (“{match.group(0)[:60]}”); "
                    "the console appends the working one-click link when it sends.",
                    item=key,
                    suggestion="Remove the unsubscribe text: the working link is added on sending.",
                    check="can_spam",
                    flag="can_spam",
                )
            )
        if isinstance(subject, str) and _REPLY_PREFIX.match(subject) and not item.get("is_reply"):
            findings.append(
                Finding(
                    Severity.MEDIUM,
                    Dimension.RISK_FLAGS,
                    f"The subject “{subject[:60]}” pretends to be a reply or a forward (deceptive "
                    "under CAN-SPAM).",
                    item=key,
                    suggestion="Drop the Re:/Fwd: prefix from the subject.",
                    check="can_spam",
                    flag="can_spam",
                )
            )
    return findings
