"""Escalation notices: Django email to the level's contact, and Slack when a webhook is set.

A notice is best effort: the escalation is committed before it is sent, and a mail server or
Slack that fails is logged, never raised into the sweep that escalated (the sweep's other steps,
e.g. releasing deferred sends, must still run).
"""

from __future__ import annotations

import logging
import smtplib

import httpx
from django.core.mail import send_mail
from django.db import connection

from approvals.models import ActionRequest, EscalationPolicy

logger = logging.getLogger(__name__)

LEVEL_NAMES = {1: "L1 handler", 2: "L2 team lead", 3: "L3 manager", 4: "L4 executive"}
SLACK_TIMEOUT_SECONDS = 5


def notify_escalation(request: ActionRequest, level: int) -> None:
    policy = EscalationPolicy.get_solo()
    subject = f"[MH1 {connection.schema_name}] Action #{request.pk} escalated to {LEVEL_NAMES[level]}"
    body = (
        f"{request.get_kind_display()} for {request.target or '—'} (impact {request.impact_level}) "
        f"has waited since {request.created_at:%Y-%m-%d %H:%M} UTC without a decision.\n"
        f"Deadline: {request.deadline:%Y-%m-%d %H:%M} UTC."
    )
    recipients = [c for c in {policy.contact_for(level)} if c]
    if request.assigned_to and request.assigned_to.email:
        recipients.append(request.assigned_to.email)
    notice_send(
        subject=subject,
        body=body,
        recipients=recipients,
        policy=policy,
        what=f"escalation notice for #{request.pk} (L{level})",
    )


def escalation_contacts(policy: EscalationPolicy | None = None) -> list[str]:
    """Every contact of the escalation ladder (L2 team lead, L3 manager, L4 executive) that is set."""
    policy = policy or EscalationPolicy.get_solo()
    return sorted({c for c in (policy.contact_for(level) for level in (2, 3, 4)) if c})


def notice_send(
    *, subject: str, body: str, recipients: list[str], policy: EscalationPolicy | None = None, what: str = ""
) -> None:
    """Email ``recipients`` and post to the policy's Slack webhook when set; best effort (a
    failure is logged, never raised). Other apps' notices (e.g. budget alerts) go through here."""
    policy = policy or EscalationPolicy.get_solo()
    what = what or subject
    if recipients:
        try:
            send_mail(subject, body, None, sorted(set(recipients)), fail_silently=False)
        except (smtplib.SMTPException, OSError) as exc:
            logger.warning("Email %s failed: %s: %s", what, exc.__class__.__name__, exc)
    if policy.slack_webhook_url:
        try:
            httpx.post(
                policy.slack_webhook_url, json={"text": f"*{subject}*\n{body}"}, timeout=SLACK_TIMEOUT_SECONDS
            ).raise_for_status()
        except httpx.HTTPError as exc:
            # Not the error text: httpx puts the URL, a secret, into it.
            status = getattr(getattr(exc, "response", None), "status_code", None)
            logger.warning(
                "Slack %s failed: %s%s",
                what,
                exc.__class__.__name__,
                f" (HTTP {status})" if status else "",
            )
